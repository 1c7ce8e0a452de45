"""ops.fastexp.exp_f32 against float64 np.exp: the accuracy bounds its docstring states."""

import numpy as np
import pytest

from ops.fastexp import exp_f32_array

SMALLEST_NORMAL = 2.0 ** -126


def _exp_f32(x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty_like(x)
    exp_f32_array(x, out)
    return out


@pytest.fixture(scope="module")
def grid():
    """2M evenly spaced float32 points over [-110, 95], the edges, and their results."""
    edges = [88.0, 88.72, 88.7228, 88.72283, 88.7229, 88.73, -87.33, -87.34,
             -103.27, -103.28, -103.97, -103.98, -1e-30, 0.0, 1e-30, 1.0, -1.0]
    x = np.concatenate([np.linspace(-110, 95, 2_000_001), edges]).astype(np.float32)
    return x, _exp_f32(x), np.exp(x.astype(np.float64))


def test_relative_error_below_88(grid):
    x, got, true = grid
    sel = (x < 88) & (true >= 1e-37)
    rel = np.abs(got[sel] - true[sel]) / true[sel]
    assert rel.max() <= 3.5e-7, rel.max()


def test_relative_error_up_to_overflow_edge(grid):
    x, got, true = grid
    sel = (x >= 88) & (x <= np.float32(88.72))
    assert sel.sum() > 100
    rel = np.abs(got[sel] - true[sel]) / true[sel]
    assert rel.max() <= 6e-7, rel.max()


def test_absolute_error_in_subnormal_range(grid):
    _, got, true = grid
    sel = true < SMALLEST_NORMAL
    assert sel.sum() > 1000 and np.any(got[sel] > 0)  # subnormals are produced, not flushed
    assert np.abs(got[sel] - true[sel]).max() < 3e-44


def test_overflow_and_underflow_edges():
    got = _exp_f32([88.72, 88.73, 95.0, -103.97, -103.98, -110.0])
    assert np.isfinite(got[0]) and got[0] > 3.3e38
    assert np.all(np.isposinf(got[1:3]))
    assert 0 <= got[3] <= 2.0 ** -149  # true value 7.07e-46 is half the smallest subnormal
    assert np.all(got[4:] == 0)


def test_special_values():
    got = _exp_f32([np.nan, np.inf, -np.inf, 0.0, -0.0])
    assert np.isnan(got[0])
    assert got[1] == np.inf and got[2] == 0
    assert got[3] == 1 and got[4] == 1
