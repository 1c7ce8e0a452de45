"""`attn train`: train a model (a GPT by default) on a synthetic task, a text file, your own
pairs or images; a run directory per run, continued with --resume."""

import os

from commands import CliError
from commands.args import non_negative_int, path_arg, positive_float, positive_int
from commands.run_lookup import ModelFamilies, run_base


def add_args(p):
    data = p.add_mutually_exclusive_group()
    data.add_argument("--task", choices=("reverse", "copy", "sort", "add", "glyphs"),
                      help="synthetic task (default: the model family's: reverse; glyphs "
                           "for --model vit)")
    data.add_argument("--text", metavar="FILE", type=path_arg,
                      help="train a character model on a UTF-8 file (a regular file of at "
                           "most 64 MiB)")
    data.add_argument("--pairs", metavar="FILE.tsv", type=path_arg,
                      help="train on your own source<TAB>target lines (UTF-8, one pair a "
                           "line; seq2seq-gru, seq2seq-transformer or gpt)")
    data.add_argument("--images", metavar="PATH", type=path_arg,
                      help="train --model vit on your images: a folder with one sub-folder "
                           "per class (PGM, PNG, .npy) or an .npz (images, labels, classes)")
    p.add_argument("--model", choices=ModelFamilies(),
                   help="model family (default: gpt)")
    p.add_argument("--config", choices=("tiny", "small"), help="model size (default: tiny)")
    p.add_argument("--device", metavar="NAME",
                   help="where to train: cpu, cuda, ... (default cpu; with --resume the "
                        "checkpoint's)")
    p.add_argument("--steps", type=positive_int, metavar="N",
                   help="total optimisation steps (default: the model family's; 600 for gpt)")
    p.add_argument("--seed", type=non_negative_int, metavar="N",
                   help="seed of init, batches and dropout (default 0)")
    p.add_argument("--out", metavar="DIR", type=path_arg,
                   help="checkpoint directory (default: a fresh runs/<task>, runs/<task>-2, "
                        "...; with --resume the newest of them)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out with its saved settings; of "
                        "those only --steps, --batch-size, --lr, --eval-every, "
                        "--eval-examples, --ckpt-every and --device may change")
    p.add_argument("--batch-size", type=positive_int, metavar="N",
                   help="examples per step (default: the model family's; 32 for gpt)")
    p.add_argument("--lr", type=positive_float, metavar="LR",
                   help="peak learning rate (default: the model family's; 3e-3 for gpt)")
    p.add_argument("--eval-every", type=non_negative_int, metavar="N",
                   help="evaluate every N steps, 0 for only at the end (default 100)")
    p.add_argument("--eval-examples", type=positive_int, metavar="N",
                   help="held-out problems in the final exact-match test (default 1000)")
    p.add_argument("--ckpt-every", type=non_negative_int, metavar="N",
                   help="save a checkpoint every N steps, 0 for only at the end (default 500)")
    p.add_argument("--digits", type=positive_int, metavar="N",
                   help="digits per addend for --task add (3)")
    p.add_argument("--min-len", type=positive_int, metavar="N",
                   help="shortest input of reverse/copy/sort")
    p.add_argument("--max-len", type=positive_int, metavar="N",
                   help="longest input of reverse/copy/sort")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar and no per-evaluation lines: only the final result "
                        "line and the checkpoint directory (what a script reads)")
    p.epilog = """examples:
  attn train                                 # the tiny GPT on reverse, into runs/reverse
  attn train --task add --steps 3000         # 3-digit addition
  attn train --model vit --task glyphs       # a ViT on the glyph images
  attn train --text book.txt --steps 2000    # a character model of a text file
  attn train --resume --steps 1200           # continue the newest runs/reverse"""


_TRAIN_FLAGS = {"task": "task", "text": "text", "pairs": "pairs", "images": "images",
                "model": "model", "config": "config",
                "device": "device", "steps": "steps", "seed": "seed",
                "batch_size": "batch_size", "lr": "lr", "eval_every": "eval_every",
                "eval_examples": "final_eval_examples", "ckpt_every": "ckpt_every"}


def _given_train_settings(args):
    """TrainConfig fields the user set explicitly on the command line."""
    given = {field: getattr(args, flag) for flag, field in _TRAIN_FLAGS.items()
             if getattr(args, flag) is not None}
    for flag in ("task", "text", "pairs", "images"):  # one data source replaces the others
        if getattr(args, flag) is not None:
            given.update({k: None for k in ("text", "pairs", "images") if k != flag})
    options = {k: getattr(args, k) for k in ("digits", "min_len", "max_len")
               if getattr(args, k) is not None}
    if options:
        given["task_options"] = options
    if "final_eval_examples" in given:
        given["eval_examples"] = min(200, given["final_eval_examples"])
    return given


def _default_out(args):
    own = args.pairs or args.images
    if own:  # runs/<file or folder name>, with -<model> unless it is the usual one
        name = os.path.splitext(os.path.basename(os.path.normpath(own)))[0] or "data"
        usual = "vit" if args.images else "gpt"
        return run_base(name, None if args.model == usual else args.model)
    if args.text:
        return run_base(os.path.splitext(os.path.basename(args.text))[0] or "text", args.model)
    from engine.training.config import family_defaults
    return run_base(args.task or family_defaults(args.model or "gpt")["task"], args.model)


def train_config_from_args(args):
    """The TrainConfig a `train` command line asks for (saved settings + flags on --resume).

    Without --out a new run gets a fresh directory (runs/reverse, then runs/reverse-2, ...)
    and --resume continues the newest; an explicit --out holding a checkpoint needs --resume.
    """
    from engine.training import TrainConfig, rundir
    from engine.training.run import resume_config
    given = _given_train_settings(args)
    out = args.out
    if not args.resume:
        if out is None:
            out = rundir.fresh(_default_out(args))
        elif rundir.holds_checkpoint(out):
            raise CliError(f"'{out}' already holds a checkpoint: pass --resume to continue "
                           f"it, or choose another --out")
        return apply_steps_cap(TrainConfig(**given, out_dir=out))
    if out is None:
        out = rundir.newest(_default_out(args)) or _default_out(args)
    return apply_steps_cap(resume_config(out, given))


STEPS_CAP = "ATTN_STEPS_CAP"


def apply_steps_cap(cfg):
    """Cap cfg.steps at N steps past where the run starts when the environment sets
    ATTN_STEPS_CAP=N. Only CI sets it, to run every documented `attn` example quickly
    (scripts/run_examples.py); a user never needs it. Returns cfg."""
    value = os.environ.get(STEPS_CAP, "").strip()
    if not value:
        return cfg
    if not value.isdigit() or int(value) < 1:
        raise CliError(f"{STEPS_CAP}={value!r}: use a positive number of steps, or unset it")
    start = 0
    if cfg.resume:
        from engine.training.checkpoint import load
        start = int(load(cfg.out_dir).train_state["step"])
    cfg.steps = min(cfg.steps, start + int(value))
    return cfg


def _rescue(error):
    """After a SaveError, save the run (kept in memory) in a fresh temporary directory
    instead; raise one CliError saying where, or that this failed too."""
    import tempfile

    from engine.training import run as runs
    try:
        where = tempfile.mkdtemp(prefix="attn-rescue-")
        runs.save(error.run, where)
    except OSError as e:
        raise CliError(f"{error}; saving it in a temporary directory failed too "
                       f"({e.strerror or e}): the run is lost") from None
    raise CliError(f"{error}; saved it instead in '{where}' (continue with --resume --out "
                   f"{where})") from None


def run(args):
    from engine.training import SaveError, train
    cfg = train_config_from_args(args)
    if args.out is None:  # say where this run goes, first
        print(f"run directory: {cfg.out_dir}", flush=True)
    if not args.quiet and cfg.device == "cpu":
        from commands.info import first_compile_note
        note = first_compile_note()
        if note:
            print(note, flush=True)
    try:
        history = train(cfg, progress="quiet" if args.quiet else True)
    except SaveError as e:
        _rescue(e)
    final = history["final"] or {}
    if not args.quiet:
        print(f"sample from it: attn sample --ckpt {cfg.out_dir}")
    return 0 if final else 1
