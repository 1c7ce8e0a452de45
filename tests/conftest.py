"""Shared fixtures: the CPU backend or device a test runs on, and a seeded random generator."""

import numpy as np
import pytest

import ops
import ops.runtime
from commands.gradcheck_cases import Place
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


@pytest.fixture(params=["numpy", "numba", "strict"])
def on(request, rng):
    """Run once on each CPU backend and once on the strict device (array-api-strict arrays on
    a non-CPU device, where any conversion to numpy raises); yields a Place (the builder of
    `attn gradcheck`'s inputs) drawing from the test's `rng`."""
    if request.param == "strict":
        pytest.importorskip("array_api_strict")
        yield Place("strict", rng)
        return
    with ops.use_backend(request.param):
        yield Place("cpu", rng)


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


@pytest.fixture(params=["strict"])
def device(request):
    """The device the shared equivalence suites run on against the CPU: "strict" in this
    process; tests/cuda/conftest.py gives "cuda" to the modules there that rerun a suite."""
    pytest.importorskip("array_api_strict")
    return request.param
