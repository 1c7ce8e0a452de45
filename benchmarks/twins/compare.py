"""Ours beside the PyTorch twin, same rows, steps, learning rate and schedule (and, for the
ViT, batch size and patch size: the run's TrainConfig, whatever the family's defaults are):

    python -m benchmarks.twins.compare --family seq2seq-transformer --task add --steps 1000
    python -m benchmarks.twins.compare --family vit --task glyphs --steps 1000
    python -m benchmarks.twins.compare --family vit --images colour.npz --steps 1000
    python -m benchmarks.twins.compare --family seq2seq-gru --task reverse --steps 600

Prints the held-out score of each (exact match, greedy, for sequence tasks; accuracy for
images). Each side runs in this process, one after the other, on one thread.
"""

import argparse
import tempfile


def _ours(args, options):
    from engine.training import TrainConfig, train
    with tempfile.TemporaryDirectory() as out:
        data = {"images": args.images} if args.images else {"task": args.task,
                                                              "task_options": options}
        cfg = TrainConfig(**data, model=args.family, steps=args.steps, seed=args.seed,
                          final_eval_examples=args.examples, out_dir=out)
        final = train(cfg, progress=False)["final"]
    return final.get("exact_match", final.get("accuracy")), cfg


def _theirs(args, options, cfg):
    from engine.data import GlyphImages, ImageFiles, SyntheticTask
    if args.family == "vit":
        from benchmarks.twins import vit as twin
        data = ImageFiles(args.images) if args.images else GlyphImages(seed=args.seed)
        from engine.models import get_model
        patch = get_model("vit").config.from_name(cfg.config, **cfg.model_overrides).patch_size
        model = twin.train(data, steps=args.steps, seed=args.seed, lr=cfg.lr,
                           batch_size=cfg.batch_size, warmup=cfg.warmup_steps,
                           min_lr=cfg.min_lr, patch=patch)
        n = len(data.held_out(10 ** 9)[1]) if args.images else args.examples
        return twin.accuracy(model, *data.held_out(n))
    if args.family == "seq2seq-gru":
        from benchmarks.twins import seq2seq_gru as twin
    else:
        from benchmarks.twins import seq2seq_transformer as twin
    data = SyntheticTask(args.task, seed=args.seed, **options)
    model = twin.train(data, steps=args.steps, seed=args.seed, lr=cfg.lr,
                       batch_size=cfg.batch_size)
    if args.family == "seq2seq-gru" and args.task == "reverse":
        mass = twin.mirrored_mass(model, data, data.held_out(200))
        print(f"PyTorch twin: {100 * mass:.1f}% of each answer step's attention on the "
              f"mirrored source position", flush=True)
    return twin.exact_match(model, data, data.held_out(args.examples))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="seq2seq-transformer",
                   choices=("seq2seq-transformer", "seq2seq-gru", "vit"))
    p.add_argument("--task", default="add", choices=("add", "reverse", "glyphs"))
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--examples", type=int, default=1000)
    p.add_argument("--images", metavar="PATH", help="a user image set for --family vit "
                   "(every held-out image is scored)")
    args = p.parse_args(argv)
    if args.images:
        args.family, args.task = "vit", "images"
    options = {"digits": 3} if args.task == "add" else {}
    ours, cfg = _ours(args, options)
    theirs = _theirs(args, options, cfg)
    print(f"{args.family} on {args.images or args.task}, {args.steps} steps, lr {cfg.lr}, batch "
          f"{cfg.batch_size}, seed {args.seed}, "
          f"{'all' if args.images else args.examples} held out: ours "
          f"{100 * ours:.1f}%  PyTorch twin {100 * theirs:.1f}%", flush=True)


if __name__ == "__main__":
    main()
