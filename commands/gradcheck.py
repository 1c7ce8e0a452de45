"""`attn gradcheck [OP ...]`: every op's and layer's analytic gradient against float64 finite
differences (the table in gradcheck_cases.py), on a chosen backend and device, as a pass/fail
table."""

import contextlib
import sys

from commands import CliError
from commands.args import non_negative_int

EXAMPLE = """examples:
  attn gradcheck                          # every op and layer, the default backend (numba)
  attn gradcheck softmax attention GRU    # just these
  attn gradcheck --backend numpy          # the numpy reference kernels
  attn gradcheck --device strict          # on array-api-strict arrays (pip install
                                          # array-api-strict)
  NUMBA_ENABLE_CUDASIM=1 attn gradcheck softmax --device cuda   # the cuda kernels on the
                                          # simulator (slow: name an op or two); on a GPU
                                          # leave the variable out
  attn gradcheck --list                   # the names"""


def add_args(p):
    p.add_argument("ops", nargs="*", metavar="OP",
                   help="ops or layers to check (default: all; --list names them)")
    p.add_argument("--backend", choices=("numpy", "numba"),
                   help="CPU kernels: numba (default) or the numpy reference")
    p.add_argument("--device", choices=("cpu", "strict", "cuda"), default="cpu",
                   help="where the tensors live (default cpu; strict: the test device; cuda: "
                        "a GPU, or Numba's CUDA simulator with NUMBA_ENABLE_CUDASIM=1)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the random inputs (default 0)")
    p.add_argument("--list", action="store_true", help="list the ops and layers and exit")
    p.epilog = EXAMPLE


def run(args):
    import ops
    from commands import gradcheck_cases
    names = gradcheck_cases.op_names()
    if args.list:
        print(" ".join(names))
        return 0
    unknown = [n for n in args.ops if n not in names]
    if unknown:
        raise CliError(f"unknown op {unknown[0]!r}; known: {' '.join(names)}")
    if args.device != "cpu" and args.backend:
        raise CliError(f"--backend picks the CPU kernels; the {args.device} device has its own")
    _load(args.device)
    chosen = set(args.ops or names)
    cases = [c for c in gradcheck_cases.CASES if c.op in chosen]
    with ops.use_backend(args.backend or ops.get_backend()), _simulator_pace(args.device):
        backend = ops.get_backend()
        results = _run(cases, args.device, args.seed)
    return _table(results, _where(args.device, backend), backend)


def _load(device):
    """Load the device, or one CliError line saying why it is not available here."""
    import ops
    try:
        ops.get_device(device)
    except (ops.DeviceError, ImportError) as e:  # cuda: no GPU and no simulator; no package
        raise CliError(f"--device {device}: {e}") from None


def _simulated():
    import numba
    return bool(numba.config.ENABLE_CUDASIM)


def _where(device, backend):
    if device == "cpu":
        return f"cpu, {backend} backend"
    if device == "cuda" and _simulated():
        return "cuda, on Numba's CUDA simulator"
    return device


@contextlib.contextmanager
def _simulator_pace(device):
    """On the CUDA simulator (a Python thread per GPU thread, polling each other), a short
    thread switch interval: tests/cuda/conftest.py measured a GPT step going from 21 s to
    5 s with it."""
    if device != "cuda" or not _simulated():
        yield
        return
    previous = sys.getswitchinterval()
    sys.setswitchinterval(5e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _run(cases, device, seed):
    """{op: [worst relative error or None, cases, failures, first failure]}, in order."""
    from rich.progress import track

    from commands import gradcheck_cases
    results = {}
    for c in track(cases, description="gradcheck", transient=True):
        worst, error = gradcheck_cases.check(c, device, seed)
        row = results.setdefault(c.op, [0.0, 0, 0, None, c.layer])
        row[1] += 1
        if error is None:
            row[0] = max(row[0], worst)
        else:
            row[2] += 1
            row[3] = row[3] or f"{c.label}: {error}"
    return results


def _table(results, where, backend):
    from rich.console import Console
    from rich.table import Table
    table = Table("op", "cases", "worst rel. error", "result", title=f"gradcheck ({where})",
                  caption="analytic gradients vs float64 central differences; layers in bold")
    for op, (worst, n, failed, first, layer) in results.items():
        verdict = "[green]pass[/]" if not failed else f"[red]FAIL[/] {first}"
        table.add_row(f"[bold]{op}[/]" if layer else op, str(n), f"{worst:.1e}", verdict)
    console = Console()
    console.print(table)
    failed = sum(r[2] for r in results.values())
    total = sum(r[1] for r in results.values())
    console.print(f"{total - failed} of {total} checks passed" +
                  ("" if not failed else f"; {failed} failed"))
    return 1 if failed else 0
