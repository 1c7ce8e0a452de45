"""Shared fixtures: the CPU backend or device a test runs on, and a seeded random generator."""

import numpy as np
import pytest

import ops
from engine import Tensor


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
