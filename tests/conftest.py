"""Shared fixtures: the CPU backend or device a test runs on, and a seeded random generator."""

import numpy as np
import pytest

import ops
import ops.runtime
from engine import Tensor, gradcheck

# The suite runs the kernels as the CLI and the trainer do: with the process-wide tuning
# (threading layer, one BLAS thread, malloc thresholds). Importing the engine alone leaves the
# process as it was (tests/cli/test_newcomer.py).
ops.runtime.configure()


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """Run the test once on each CPU backend; yields the backend's name."""
    with ops.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed, so every test draws the same numbers each run."""
    return np.random.default_rng(1234)


class Place:
    """Where a test's tensors live: `leaf` makes a trainable tensor there, `const` a constant
    (indices, targets, masks), `host` copies an array back for numpy comparisons."""

    def __init__(self, device):
        self.device = device

    def leaf(self, array):
        return Tensor(array, device=self.device).requires_grad_()

    def const(self, array):
        return Tensor(array, device=self.device)

    @staticmethod
    def host(array):
        return ops.to_host(array.data if isinstance(array, Tensor) else array)

    def rand(self, rng, *shape, positive=False, away_from_zero=False):
        """A float64 leaf of standard normals; optionally positive (>= 0.5), or at least 0.1
        away from 0 (kinks stay far from the finite-difference step)."""
        x = rng.standard_normal(shape)
        if positive:
            x = np.abs(x) + 0.5
        elif away_from_zero:
            x = np.sign(x) * (np.abs(x) + 0.1)
        return self.leaf(x)


@pytest.fixture(params=["numpy", "numba", "strict"])
def on(request):
    """Run once on each CPU backend and once on the strict device (array-api-strict arrays on
    a non-CPU device, where any conversion to numpy raises); yields a Place."""
    if request.param == "strict":
        pytest.importorskip("array_api_strict")
        yield Place("strict")
        return
    with ops.use_backend(request.param):
        yield Place("cpu")


@pytest.fixture
def check():
    """gradcheck (float64 finite differences) that asserts every requiring input was checked."""

    def run(fn, *inputs):
        report = gradcheck(fn, *inputs)
        assert len(report.checked) == sum(isinstance(t, Tensor) and t.requires_grad
                                          for t in inputs)
        assert all(e <= 1e-5 for e in report.max_abs_error), report
        return report
    return run
