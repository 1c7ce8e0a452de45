"""The Python overhead of a GPT training step: the step timed as it is, then with every kernel
replaced by a no-op that returns the outputs it recorded.

Every kernel the engine calls goes through the registry (ops.registry), so one recorded step
gives, per kernel name, the outputs of its calls in order. The replay step returns those same
arrays (no copy, no work): what is left is everything that is not a kernel, i.e. the graph
building, Function.apply, the backward walk, the optimizer's Python and the numpy glue ops
(reshapes, residual adds, ...). Values drift during the replay (the glue still computes on
replayed arrays); only the time is read.

    python benchmarks/step_overhead.py                 # tiny and small, 20 steps each
    python benchmarks/step_overhead.py --configs tiny --repeats 50
"""

import argparse
import os
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


class KernelTape:
    """Swaps the kernels of the given implementations ("cpu" and its "reference" fallback
    under the numba backend) for recording wrappers, then for replayers."""

    def __init__(self, impls):
        from ops import registry
        self.registry = registry
        self.table = registry._KERNELS  # (name, impl) -> fn
        self.keys = [key for key in self.table if key[1] in impls]
        self.original = {key: self.table[key] for key in self.keys}
        self.outputs = defaultdict(list)  # name -> outputs of its calls, in order
        self.calls = defaultdict(int)

    def record(self):
        self._swap({key: self._recorder(key[0], self.original[key]) for key in self.keys})

    def replay(self):
        self._swap({key: self._replayer(key[0]) for key in self.keys})

    def restore(self):
        self._swap(self.original)

    def _swap(self, functions):
        self.table.update(functions)
        self.registry._FOUND.clear()  # the lookup memo holds the functions it handed out

    def _recorder(self, name, fn):
        def recorded(*args, **kwargs):
            out = fn(*args, **kwargs)
            self.outputs[name].append(out)
            return out
        return recorded

    def _replayer(self, name):
        outputs = self.outputs[name]

        def replayed(*args, **kwargs):
            i = self.calls[name]
            self.calls[name] = i + 1
            return outputs[i % len(outputs)]
        return replayed

    def kernel_calls(self):
        return sum(len(v) for v in self.outputs.values())


def median_ms(step, repeats, warmup=3):
    """The step's median time in ms, measured as benchmarks/train_step.py measures it."""
    from benchmarks.train_step import _median_step
    return 1e3 * _median_step(step, repeats, warmup)


def measure(spec, repeats):
    """{"step_ms", "overhead_ms", "kernel_calls"} of one config, in this process."""
    import ops
    from benchmarks.train_step import ours_step
    step = ours_step(spec)
    real = median_ms(step, repeats)
    tape = KernelTape(ops.get_device("cpu").implementations())
    tape.record()
    try:
        step()  # one recorded step
        tape.replay()
        stubbed = median_ms(step, repeats)
    finally:
        tape.restore()
    return {"step_ms": real, "overhead_ms": stubbed, "kernel_calls": tape.kernel_calls()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,small", help="comma-separated: tiny,small")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per side")
    args = parser.parse_args(argv)
    import ops.runtime
    ops.runtime.configure()  # as attn train does
    from rich.console import Console
    from rich.table import Table
    table = Table("config", "step", "kernels replaced by no-ops", "overhead share",
                  "kernel calls", "per call", title="Python overhead of one training step "
                  f"(medians of {args.repeats})")
    for spec in args.configs.split(","):
        r = measure(spec, args.repeats)
        table.add_row(spec, f"{r['step_ms']:.2f} ms", f"{r['overhead_ms']:.2f} ms",
                      f"{r['overhead_ms'] / r['step_ms']:.0%}", str(r["kernel_calls"]),
                      f"{1e3 * r['overhead_ms'] / r['kernel_calls']:.1f} us")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
