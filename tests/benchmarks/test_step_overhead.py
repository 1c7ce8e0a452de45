"""The kernel tape behind benchmarks/step_overhead.py: the replayed step makes the recorded
kernel calls and returns their outputs, and the registry is whole again afterwards."""

import numpy as np
import pytest

import ops
from benchmarks.step_overhead import KernelTape
from benchmarks.train_step import ours_step


@pytest.mark.slow
def test_replay_returns_the_recorded_outputs_and_restore_puts_the_kernels_back():
    before = {name: ops.kernel(name) for name in ("matmul", "softmax", "cross_entropy")}
    step = ours_step("tiny")
    step()  # compile and warm
    tape = KernelTape(ops.get_device("cpu").implementations())
    tape.record()
    try:
        recorded = float(step().item())
        calls = tape.kernel_calls()
        tape.replay()
        replayed = float(step().item())
        assert sum(tape.calls.values()) == calls  # one replay step: the same kernel calls
    finally:
        tape.restore()
    assert calls > 50  # a GPT step's kernels all went through the registry
    assert replayed == recorded  # the loss is the cross-entropy kernel's recorded output
    assert {name: ops.kernel(name) for name in before} == before
    assert np.isfinite(float(step().item()))  # real kernels again
