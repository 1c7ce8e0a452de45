"""Ours beside the PyTorch twin, same rows and steps: python -m benchmarks.twins.compare
[--task add] [--steps 3000] [--seed 0]. Prints held-out exact match (greedy) of each."""

import argparse
import tempfile


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="add", choices=("add", "reverse"))
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--examples", type=int, default=1000)
    args = p.parse_args(argv)
    from benchmarks.twins import seq2seq_transformer as twin
    from engine.data import SyntheticTask
    from engine.training import TrainConfig, train
    options = {"digits": 3} if args.task == "add" else {}
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(task=args.task, model="seq2seq-transformer", steps=args.steps,
                          seed=args.seed, task_options=options,
                          final_eval_examples=args.examples, out_dir=out)
        ours = train(cfg, progress=False)["final"]["exact_match"]
    data = SyntheticTask(args.task, seed=args.seed, **options)
    model = twin.train(data, steps=args.steps, seed=args.seed, lr=cfg.lr)
    theirs = twin.exact_match(model, data, data.held_out(args.examples))
    print(f"seq2seq-transformer on {args.task}, {args.steps} steps, seed {args.seed}, "
          f"{args.examples} held out: ours {100 * ours:.1f}%  PyTorch twin {100 * theirs:.1f}%")


if __name__ == "__main__":
    main()
