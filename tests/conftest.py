"""Shared fixtures: the CPU backend a test runs on, and a seeded random generator."""

import numpy as np
import pytest

import ops


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """Run the test once on each CPU backend; yields the backend's name."""
    with ops.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed, so every test draws the same numbers each run."""
    return np.random.default_rng(1234)
