"""`attn bench`: run one of the benchmark scripts of benchmarks/ (ours against numpy and
PyTorch), its flags passed through; an argparse refusal of the script is one line, exit 2."""

import argparse
import contextlib
import io
import sys

from commands import CliError

BENCH_SUITES = {"kernels": "kernels", "train-step": "train_step", "generation": "generation",
                "cold-start": "cold_start", "blas": "blas_policy"}


def add_args(p):
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


def run(args):
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
