"""The `attn` command line: subcommands (train, sample, ...) registered in one table."""

import argparse
import contextlib
import gc
import io
import os
import sys

from commands import CliError, apply_steps_cap, environment_problem
from commands import non_negative_int as _non_negative_int
from commands import path_arg as _path
from commands import positive_int as _positive_int
from commands.runs import ModelFamilies, newest_checkpoint, run_base


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage dump) and exit 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {' '.join(message.split())}\n")
        sys.exit(2)


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _non_negative_float(text):
    value = _positive_float(text) if text.strip() not in ("0", "0.0") else 0.0
    return value


# ---- attn train ------------------------------------------------------------------------------

def add_train_args(p):
    data = p.add_mutually_exclusive_group()
    data.add_argument("--task", choices=("reverse", "copy", "sort", "add", "glyphs"),
                      help="synthetic task (default: the model family's: reverse; glyphs "
                           "for --model vit)")
    data.add_argument("--text", metavar="FILE", type=_path,
                      help="train a character model on a UTF-8 file (a regular file of at "
                           "most 64 MiB)")
    data.add_argument("--pairs", metavar="FILE.tsv", type=_path,
                      help="train on your own source<TAB>target lines (UTF-8, one pair a "
                           "line; seq2seq-gru, seq2seq-transformer or gpt)")
    data.add_argument("--images", metavar="PATH", type=_path,
                      help="train --model vit on your images: a folder with one sub-folder "
                           "per class (PGM, PNG, .npy) or an .npz (images, labels, classes)")
    p.add_argument("--model", choices=ModelFamilies(),
                   help="model family (default: gpt)")
    p.add_argument("--config", choices=("tiny", "small"), help="model size (default: tiny)")
    p.add_argument("--device", metavar="NAME",
                   help="where to train: cpu, cuda, ... (default cpu; with --resume the "
                        "checkpoint's)")
    p.add_argument("--steps", type=_positive_int, metavar="N", help="total optimisation steps (default: the model family's; 600 for gpt)")
    p.add_argument("--seed", type=_non_negative_int, metavar="N",
                   help="seed of init, batches and dropout (default 0)")
    p.add_argument("--out", metavar="DIR", type=_path,
                   help="checkpoint directory (default: a fresh runs/<task>, runs/<task>-2, "
                        "...; with --resume the newest of them)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out with its saved settings; of "
                        "those only --steps, --batch-size, --lr, --eval-every, "
                        "--eval-examples, --ckpt-every and --device may change")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="examples per step (default: the model family's; 32 for gpt)")
    p.add_argument("--lr", type=_positive_float, metavar="LR", help="peak learning rate (default: the model family's; 3e-3 for gpt)")
    p.add_argument("--eval-every", type=_non_negative_int, metavar="N",
                   help="evaluate every N steps, 0 for only at the end (default 100)")
    p.add_argument("--eval-examples", type=_positive_int, metavar="N",
                   help="held-out problems in the final exact-match test (default 1000)")
    p.add_argument("--ckpt-every", type=_non_negative_int, metavar="N",
                   help="save a checkpoint every N steps, 0 for only at the end (default 500)")
    p.add_argument("--digits", type=_positive_int, metavar="N", help="digits per addend for --task add (3)")
    p.add_argument("--min-len", type=_positive_int, metavar="N", help="shortest input of reverse/copy/sort")
    p.add_argument("--max-len", type=_positive_int, metavar="N", help="longest input of reverse/copy/sort")
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


def run_train(args):
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


# ---- attn sample -----------------------------------------------------------------------------

def add_sample_args(p):
    p.add_argument("--ckpt", metavar="DIR", type=_path,
                   help="checkpoint directory (default: the newest run of --task)")
    p.add_argument("--task", metavar="NAME",
                   help="without --ckpt, sample the newest run under runs/ of this task (or "
                        "text file name) (default: the model family's task: reverse; glyphs "
                        "for --model vit)")
    p.add_argument("--model", choices=ModelFamilies(),
                   help="without --ckpt, the newest run of this model family on --task "
                        "(default: the task's usual one, gpt; vit for glyphs)")
    p.add_argument("--prompt", metavar="TEXT", help="text to continue; for tasks the problem, e.g. 31415 or "
                   "123+456 (default: held-out problems, or a newline for text)")
    p.add_argument("--temperature", type=_non_negative_float, metavar="T",
                   help="sampling temperature, 0 = greedy (default 1.0; tasks: greedy)")
    p.add_argument("--top-k", type=_positive_int, metavar="K", help="sample among the k likeliest tokens")
    p.add_argument("--tokens", "--max-new-tokens", dest="tokens", type=_positive_int,
                   metavar="N",
                   help="tokens to generate (default: the answer length, or 200 for text)")
    p.add_argument("--greedy", action="store_true", help="always take the likeliest token")
    p.add_argument("--num", type=_positive_int, metavar="N", help="samples (default 5 problems / 1 text)")
    p.add_argument("--seed", type=_non_negative_int, default=0, metavar="N",
                   help="sampling seed (default 0)")
    p.add_argument("--attention", action="store_true",
                   help="also draw what each answer token attended to in the input (tasks), or "
                        "the class token's attention over the patches (images)")
    p.add_argument("--image", metavar="FILE",
                   help="an image model: classify this .npy or PGM file (default: held-out "
                        "images)")
    p.epilog = """examples:
  attn sample                                # five held-out problems, newest runs/reverse
  attn sample --prompt 31415926 --attention  # one problem, and what the answer read
  attn sample --ckpt runs/book --prompt "The " --tokens 300 --temperature 0.8"""


def _sampling(args, is_task):
    """generate() keyword arguments; tasks decode greedily unless a temperature is given."""
    greedy = args.greedy or args.temperature == 0 or (is_task and args.temperature is None)
    temperature = 1.0 if args.temperature is None else args.temperature
    return {"greedy": greedy, "temperature": temperature, "top_k": args.top_k}


def _sample_task(args, model, task, rng):
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from engine.data import END
    from engine.models.generate import generate
    if args.prompt is not None:
        inputs = [task.parse_prompt(args.prompt)]
    else:
        inputs = task.held_out(args.num or 5)
    maps = []
    title = f"task {task.name}" + (": sums are written least significant digit first"
                                   if task.name == "add" else "")
    table = Table("prompt", "model", "expected", "", title=title)
    for inp in inputs:
        prompt, want = task.prompt(inp), np.append(task.answer(inp), END)
        out = generate(model, prompt[None, :], args.tokens or len(want), rng=rng,
                       stop_token=END, **_sampling(args, True))[0, len(prompt):]
        ends = np.flatnonzero(out == END)
        out = out[:ends[0] + 1] if len(ends) else out
        ok = len(out) == len(want) and bool(np.all(out == want))
        table.add_row(task.vocab.decode(inp) + "=", task.vocab.decode(out),
                      task.vocab.decode(want), "[green]ok[/]" if ok else "[red]wrong[/]")
        if args.attention:
            maps.append(_attention_text(model, task, prompt, out))
    Console().print(table)
    for text in maps:
        print(text)


def _attention_text(model, task, prompt, out):
    """The answer -> input attention of one decoded problem: the most focused head's map
    as a text heatmap (shade 0 to 1), and every other head's focus in one line."""
    import numpy as np

    from engine import viz
    width = task.input_width
    tokens = np.concatenate([prompt, out])
    ranked = viz.alignments(model, tokens, width)  # per head, the most focused first
    label, w, sharp = ranked[0]
    w = w[:len(out)]  # (answer tokens, input field)
    cols = [task.vocab.decode([t]) for t in prompt[:width]]
    rows = [task.vocab.decode([t]) for t in out]  # a sampled spare output id shows as ?
    others = "; then " + ", ".join(f"{name} {f:.2f}" for name, _, f in ranked[1:8]) if len(
        ranked) > 1 else ""
    title = (f"\n{task.vocab.decode(prompt)} -> {task.vocab.decode(out)}: {label}, the most "
             f"focused of {len(ranked)} head(s) (focus {sharp:.2f}, the mean of each row's "
             f"largest weight{others})\nshades 0 to 1: what each answer token attended to")
    return viz.heatmap(w, rows, cols, title=title, vmax=1.0)


def _sample_text(args, model, vocab, rng):
    from rich.console import Console
    from rich.text import Text

    from engine.models.generate import generate
    prompt = args.prompt if args.prompt is not None else (
        "\n" if "\n" in vocab.stoi else vocab.itos[0])
    if not prompt:
        raise CliError("--prompt must not be empty")
    idx = vocab.encode(prompt)[None, :]
    console = Console()
    for i in range(args.num or 1):
        out = generate(model, idx, args.tokens or 200, rng=rng, **_sampling(args, False))
        if i:
            console.rule()
        console.print(Text(prompt, style="bold") + Text(vocab.decode(out[0, idx.shape[1]:])))


def _sample_images(args, model, data):
    from rich.console import Console
    from rich.table import Table

    from engine import viz
    from engine.data import load_image
    from engine.data.images import classify
    if args.image is not None:
        images, labels = load_image(args.image, data.image_size)[None], [None]
    else:
        images, labels = data.held_out(args.num or 5)
    preds = classify(model, images)
    grid = model.config.image_size // model.config.patch_size
    maps = model.attention_maps(images) if args.attention else None
    console = Console()
    table = Table("image", "prediction", "label", "", title="glyphs")
    for i, (pred, label) in enumerate(zip(preds, labels)):
        ok = "" if label is None else ("[green]ok[/]" if pred == label else "[red]wrong[/]")
        table.add_row(viz.image(images[i]), data.classes[pred],
                      "-" if label is None else data.classes[label], ok)
        if maps is not None:
            table.add_row("class token attention, last layer\n" +
                          viz.patch_grid(maps["cls"][i], grid), "", "", "")
    console.print(table)


def run_sample(args):
    import numpy as np

    from commands import userdata
    from commands.sampling import check_sample_args
    from engine.data import GlyphImages, ImageFiles, PairsDataset, SyntheticTask
    from engine.training import load_model
    from engine.training.validate import check_examples_memory
    model, data = load_model(newest_checkpoint(args))
    check_sample_args(args, model, data)
    rng = np.random.default_rng(args.seed)
    if isinstance(data, ImageFiles | PairsDataset):
        return userdata.sample(args, model, data)
    if args.image is not None and not isinstance(data, GlyphImages):
        raise CliError(f"--image needs an image model; the checkpoint holds a "
                       f"{type(model).__name__} trained on {data.describe().get('kind')} data")
    if isinstance(data, GlyphImages):
        _sample_images(args, model, data)
    elif isinstance(data, SyntheticTask):
        check_examples_memory("--num", args.num or 5, data)
        _sample_task(args, model, data, rng)
    else:
        _sample_text(args, model, data, rng)
    return 0


# ---- the table and main ----------------------------------------------------------------------

# name: (one-line help, add_arguments(parser), run(args) -> exit status)
BENCH_SUITES = {"kernels": "kernels", "train-step": "train_step", "generation": "generation",
                "cold-start": "cold_start", "blas": "blas_policy"}


def add_bench_args(p):
    p.add_argument("suite", nargs="?", default="kernels", choices=list(BENCH_SUITES),
                   help="kernels: every kernel, ours vs the numpy reference (and torch); "
                        "train-step: one GPT training step, ours vs PyTorch eager; "
                        "generation: tokens/s with and without the KV cache; cold-start: "
                        "the first step with an empty and a warm kernel cache; blas: the "
                        "BLAS thread policy")
    p.add_argument("--device", choices=("cpu", "cuda"),
                   help="cuda: the GPU benchmarks (says so and exits 0 without a GPU)")
    p.add_argument("rest", nargs=argparse.REMAINDER,
                   help="passed to the benchmark script (e.g. --quick, --only softmax)")
    p.epilog = """examples:
  attn bench kernels --quick                 # every kernel, ours vs numpy, short
  attn bench kernels --only softmax --separate-processes
  attn bench train-step --separate-processes # the README's training-step table
  attn bench generation"""


def run_bench(args):
    import importlib
    bench_main = importlib.import_module(f"benchmarks.{BENCH_SUITES[args.suite]}").main
    if args.device and args.suite not in ("kernels", "train-step"):
        raise CliError(f"--device applies to the kernels and train-step suites, not "
                       f"{args.suite}")
    if args.device:
        args.rest = [*args.rest, "--device", args.device]
    if any(flag in args.rest for flag in ("-h", "--help")):
        return bench_main(args.rest)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return bench_main(args.rest)
    except SystemExit:  # the script's argparse refused a flag: keep its last line only
        lines = err.getvalue().strip().splitlines() or ["bad arguments"]
        err = io.StringIO()
        raise CliError(lines[-1].split("error: ", 1)[-1]) from None
    finally:
        sys.stderr.write(err.getvalue())


def _command(module):
    """(add_args, run) of a subcommand whose body lives in commands/<module>.py, imported
    only when that subcommand runs or its --help is built."""
    import importlib
    return importlib.import_module(f"commands.{module}")


SUBCOMMANDS = {
    "train": ("train a model (a GPT by default) on a synthetic task or a text file",
              add_train_args, run_train),
    "sample": ("generate from a trained checkpoint", add_sample_args, run_sample),
    "bench": ("benchmark the kernels or a training step against numpy and PyTorch",
              add_bench_args, run_bench),
    "demo": ("type an input, see a trained model's output and its attention per layer and head",
             "demo"),
    "graph": ("the symbolic view of an expression or a model's loss, with each derivative",
              "graph"),
    "gradcheck": ("check every op's and layer's gradient against finite differences",
                  "gradcheck"),
    "info": ("versions, threads, the kernel cache, CPU features and the CUDA status", "info"),
    "tutorial": ("list the step-through tutorials, or run one (attn tutorial 1)", "tutorial"),
    "runs": ("list the training runs, or show one's loss curve and evaluations", "runs"),
}


def build_parser():
    parser = _Parser(prog="attn", description="An attention engine from scratch: train a "
                     "small GPT and sample from it.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    for name, (help_text, *body) in SUBCOMMANDS.items():
        if len(body) == 1:  # a module of commands/
            module = _command(body[0])
            body = [module.add_args, module.run]
        add_args, run = body
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
        add_args(p)
        p.set_defaults(run=run)
    return parser


def _fail(args, message, status):
    """One line on stderr and the exit status; with --debug, re-raise the error being handled
    (its full traceback)."""
    handled = sys.exc_info()[1]  # _fail is called from an except block
    if getattr(args, "debug", False) and handled is not None:
        raise handled
    sys.stderr.write(f"attn {args.command}: error: {' '.join(str(message).split())}\n")
    return status


def _configure():
    """Apply ops.runtime.configure() (the CLI owns its process: threading layer, BLAS threads,
    malloc); the one line to print when an ENGINE_* variable it reads is bad, else None."""
    try:
        import ops.runtime  # reads ENGINE_VEC_BITS
        ops.get_backend()  # ENGINE_BACKEND
        ops.runtime.configure()  # ENGINE_BLAS_THREADS
    except ValueError as e:
        if not str(e).startswith("ENGINE_"):
            raise
        return str(e)
    return None


def main(argv=None):
    """Run the `attn` command line; returns the exit status (0 ok, 1 failed, 2 bad usage)."""
    problem = environment_problem(os.environ) or _configure()
    if problem:
        sys.stderr.write(f"attn: error: {problem}\n")
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error(f"choose a command: {', '.join(SUBCOMMANDS)} (attn COMMAND --help)")
    from commands.tutorial import TutorialFailed
    from engine.data import DataError
    from engine.training import ConfigError
    from engine.training.checkpoint import CheckpointError
    from ops import DeviceError
    try:
        return args.run(args)
    except (CliError, DataError, CheckpointError, ConfigError, DeviceError) as e:
        return _fail(args, e, 2)
    except MemoryError as e:  # past the estimates made before allocating
        return _fail(args, f"out of memory ({e or 'allocation failed'}); ask for a "
                     f"smaller size", 2)
    except (FloatingPointError, TutorialFailed) as e:  # NonFiniteLossError among them
        return _fail(args, e, 1)
    except KeyboardInterrupt:
        return _fail(args, "interrupted", 130)
    except BrokenPipeError:  # the reader of our output went away (attn graph ... | head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def run():
    """The `attn` program (its console script, and `python cli.py`): `main`, then an exit
    that skips the interpreter's last garbage collection. Once kernels have run, that
    collection walks Numba's whole type and compiler state and took ~0.2 s of every command's
    exit on the 2-core machine; gc.freeze leaves those objects to the process's end (files
    are closed and flushed explicitly before this: checkpoints on save, std streams by the
    interpreter). `main` alone (tests, embedding) is left as it was."""
    status = main()
    gc.freeze()
    return status


if __name__ == "__main__":
    sys.exit(run())
