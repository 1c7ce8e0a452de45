"""`attn gradcheck --device cuda` on the cuda device (the simulator, or a GPU): one or two
ops, the simulator being slow. The unavailable device is tested in tests/cli."""

import cli
import ops
from commands import gradcheck_cases
from ops import registry


def test_gradcheck_on_the_cuda_device(capsys):
    assert cli.main(["gradcheck", "softmax", "--device", "cuda"]) == 0
    out = capsys.readouterr().out
    assert "gradcheck (cuda" in out and "2 of 2 checks passed" in out
    row = next(line for line in out.splitlines() if " softmax " in line)
    worst = max(gradcheck_cases.check(c, "cuda")[0] for c in gradcheck_cases.CASES
                if c.op == "softmax")
    assert f"{worst:.1e}" in row and "pass" in row  # the table's number is the cuda check's


def test_a_broken_cuda_kernel_fails_the_table(monkeypatch, capsys):
    """The checks run the cuda kernels: a wrong cuda softmax_backward fails them (the CPU's
    is untouched)."""
    right = ops.kernel("softmax_backward", "cuda")
    monkeypatch.setitem(registry._KERNELS, ("softmax_backward", "cuda"),
                        lambda y, dy: right(y, y))  # dy replaced: a wrong gradient
    monkeypatch.setattr(registry, "_FOUND", {})
    assert cli.main(["gradcheck", "softmax", "--device", "cuda"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "0 of 2 checks passed; 2 failed" in out
