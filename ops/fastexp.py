"""A float32 exponential that LLVM vectorises, for use inside Numba kernels.

Numba's `math.exp`/`np.exp` in a loop calls scalar libm here (no SVML), so a softmax written
with it loses to numpy's SIMD `exp`. `exp_f32` is written in plain arithmetic so it inlines
and vectorises: Cody-Waite range reduction x = n*ln2 + r, |r| <= ln2/2, the Cephes degree-6
polynomial for exp(r), and 2**n built from exponent bits in two halves so that results in
the subnormal range are produced too (not flushed to zero).

Accuracy against float64 np.exp (measured by tests/ops/test_fastexp.py on 2M points over
[-110, 95] plus the edges): max relative error 3.0e-7 (about 2.5 ulp) for x < 88 and
5.5e-7 in [88, 88.72] (where r reaches 0.97), for results >= 1e-37; in the subnormal
range the absolute error is below 3e-44. x < -103.98 gives 0, x > 88.73 gives inf, NaN gives
NaN, -inf gives 0. It runs about 2.5x faster than np.exp on float32 arrays (one thread).
"""

import numpy as np

from ops.numba_config import jit

_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_LO = np.float32(-104.0)
_HI = np.float32(89.0)
_C = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                    4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))


@jit(inline="always")
def _bits_to_pow2(e):
    """2.0**e for an int32 e in [-126, 127], built from the exponent bits."""
    return np.int32((e + 127) << 23).view(np.float32)


@jit(inline="always")
def _pow2(n):
    """2.0**n for int32 n in [-150, 127] as (normal part) * (subnormal part): each factor is
    a normal float32 and their product is exact, whatever order fastmath multiplies in."""
    return _bits_to_pow2(max(n, -126)) * _bits_to_pow2(min(n + 126, 0))


@jit(inline="always")
def exp_f32(x):
    """exp(x) for a float32 scalar x, vectorisable; see the module docstring for accuracy."""
    if x != x:  # noqa: PLR0124  (NaN test that vectorises; no nnan flag is set)
        return x
    x = min(max(x, _LO), _HI)
    # n <= 127 keeps every scale factor finite; for x in (88.03, 89] that leaves
    # r up to 0.97, where the polynomial is still accurate to about 1 ulp.
    n = min(np.floor(x * _LOG2E + np.float32(0.5)), np.float32(127.0))
    r = x - n * _LN2_HI - n * _LN2_LO
    p = _C[0]
    p = p * r + _C[1]
    p = p * r + _C[2]
    p = p * r + _C[3]
    p = p * r + _C[4]
    p = p * r + _C[5]
    p = p * r * r + r + np.float32(1.0)
    return p * _pow2(np.int32(n))


@jit
def exp_f32_array(x, out):
    """out[i] = exp_f32(x[i]) over flat float32 arrays (for tests and benchmarks)."""
    for i in range(x.size):
        out[i] = exp_f32(x[i])
