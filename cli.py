"""The `attn` command line: the table of subcommands, the parser, and main(). Each
subcommand's body is commands/<module>.py (add_args(parser), run(args) -> exit status),
imported only when that subcommand runs or shows its --help: `attn --help` imports none."""

import argparse
import gc
import importlib
import os
import sys

from commands import CliError, CommandFailed

# name: (one-line help, the module of commands/ that adds its arguments and runs it)
SUBCOMMANDS = {
    "train": ("train a model (a GPT by default) on a synthetic task or a text file", "train"),
    "sample": ("generate from a trained checkpoint", "sample"),
    "bench": ("benchmark the kernels or a training step against numpy and PyTorch", "bench"),
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


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage dump) and exit 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {' '.join(message.split())}\n")
        sys.exit(2)


class _CommandParser(_Parser):
    """The parser of one subcommand: commands/<module>.py is imported and adds its arguments
    the first time this parser parses, formats its help, or is asked to `load`."""

    module = None  # the module still to load, or None once loaded

    def load(self):
        if self.module is not None:
            module = importlib.import_module(f"commands.{self.module}")
            self.module = None
            module.add_args(self)
            self.set_defaults(run=module.run)
        return self

    def parse_known_args(self, args=None, namespace=None):
        return super(_CommandParser, self.load()).parse_known_args(args, namespace)

    def format_help(self):
        return super(_CommandParser, self.load()).format_help()

    def format_usage(self):
        return super(_CommandParser, self.load()).format_usage()


def environment_problem(environ):
    """One line saying what is wrong with an environment variable that would stop Numba from
    importing (so before anything imports it), or None."""
    value = environ.get("NUMBA_NUM_THREADS", "").strip()
    if value and (not value.isdigit() or int(value) < 1):
        return (f"NUMBA_NUM_THREADS={environ['NUMBA_NUM_THREADS']!r}: use a positive number "
                f"of threads, or unset it")
    return None


def build_parser(complete=False):
    """The `attn` parser. Each subcommand's module is imported when that subcommand is
    parsed or its help formatted; complete=True imports them all now (for tools that read
    every subcommand's arguments or epilog)."""
    parser = _Parser(prog="attn", description="An attention engine from scratch: train a "
                     "small GPT and sample from it.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=_CommandParser)
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    for name, (help_text, module) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
        p.module = module
        if complete:
            p.load()
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
    problem = environment_problem(os.environ)  # before anything imports Numba
    if problem:
        sys.stderr.write(f"attn: error: {problem}\n")
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)  # imports only the chosen command's module
    if args.command is None:
        parser.error(f"choose a command: {', '.join(SUBCOMMANDS)} (attn COMMAND --help)")
    problem = _configure()  # imports ops (and Numba): after --help has had its answer
    if problem:
        sys.stderr.write(f"attn: error: {problem}\n")
        return 2
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
    except (FloatingPointError, CommandFailed) as e:  # NonFiniteLossError among them
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
