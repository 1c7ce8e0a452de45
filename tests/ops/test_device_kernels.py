"""Every registered kernel's form on a device against its numpy reference on the CPU, in
float32 and float64: results stay on the device, refuse implicit numpy conversion, and no
kernel moves data. Written once, run on each device the `device` fixture gives: "strict"
here (array-api-strict arrays; its forms are mostly the reference run on them), "cuda" from
tests/cuda/test_cuda_kernels.py (the simulator's process), at sizes that are and are not
multiples of the cuda tiles (ops/cuda/launch.py and matmul.py constants; the small_tiles
runs there shrink them), with size-1 dimensions."""

import numpy as np
import pytest

import ops

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

# Per device: the float64 tolerances (the cuda kernels sum in another order; strict runs the
# reference's own arithmetic) and the error numpy raises on one of its arrays.
FLOAT64_TOL = {"strict": {"rtol": 1e-12, "atol": 1e-12}, "cuda": {"rtol": 1e-10, "atol": 1e-12}}
FLOAT32_TOL = {"rtol": 1e-4, "atol": 1e-5}
RAW_ARRAY_ERROR = {"strict": RuntimeError, "cuda": TypeError}
# Kernels a device draws differently from the CPU (compared by their own tests there).
OWN_DRAWS = {"cuda": {"dropout_mask"}}


def tol(device, dtype):
    return FLOAT32_TOL if np.dtype(dtype) == np.float32 else FLOAT64_TOL[device]


def moved(value, device):
    """Arguments moved onto `device`: arrays (also inside tuples), nothing else."""
    if isinstance(value, np.ndarray):
        return ops.to_device(value, device)
    if isinstance(value, tuple):
        return tuple(moved(v, device) for v in value)
    return value


def _x(r, *shape):
    return r.standard_normal(shape)


def _attention(causal, tq, tk, mask=None, d=4):
    def make(r):
        m = mask(tq, tk) if mask else None
        return _x(r, 2, 3, tq, d), _x(r, 2, 3, tk, d), _x(r, 2, 3, tk, d + 1), causal, 0.5, m
    return make


def _attention_backward(*spec):
    def make(r):
        q, k, v, causal, scale, mask = _attention(*spec)(r)
        o, lse = ops.kernel("attention", backend="numpy")(q, k, v, causal, scale, mask)
        return _x(r, *o.shape), q, k, v, o, lse, causal, scale, mask
    return make


def _mask_with_a_dead_row(tq, tk, penalty=-1.0):
    """Additive (1, 1, Tq, Tk) mask: `penalty` here and there, row 1 fully masked."""
    mask = np.where(np.arange(tq * tk).reshape(1, 1, tq, tk) % 3 == 0, penalty, 0.0)
    mask[..., 1, :] = -np.inf
    return mask


def _head_mask(tq, tk, heads=3):
    """(1, H, 1, Tk): broadcast over batch and queries, one row of keys per head."""
    return np.where(np.arange(heads * tk).reshape(1, heads, 1, tk) % 4 == 1, -2.0, 0.5)


ATTENTION = [(False, 4, 4), (True, 4, 4), (True, 3, 6), (True, 6, 3), (True, 2, 0),
             (True, 9, 9), (False, 1, 1, None, 1), (False, 4, 5, _mask_with_a_dead_row),
             (True, 3, 5, _mask_with_a_dead_row), (True, 5, 7, _head_mask)]
TARGETS = [np.array([1, 0, -100, 4, 2, -100]), np.array([3, 1, 4, 1, 0, 2]), np.full(6, -100)]


def _cross_entropy_backward(targets, grad):
    def make(r):
        logits = _x(r, 6, 5) * 3
        _, lse = ops.kernel("cross_entropy", backend="numpy")(logits, targets, -100)
        return logits, targets, lse, -100, grad(r) if callable(grad) else grad
    return make


def _layer_norm_backward(*shape):
    def make(r):
        x, w, b = _x(r, *shape), _x(r, shape[-1]), _x(r, shape[-1])
        _, mean, rstd = ops.kernel("layer_norm", backend="numpy")(x, w, b, 1e-5)
        return _x(r, *shape), x, w, mean, rstd
    return make


def _adamw(*shape):
    return lambda r: (_x(r, *shape), _x(r, *shape), _x(r, *shape), np.abs(_x(r, *shape)), 1e-2,
                      0.9, 0.99, 1e-8, 0.1, 3)


def _attention_qkv_backward(causal):
    def make(r):
        qkv = _x(r, 2, 5, 12)
        y, lse = ops.kernel("attention_qkv", backend="numpy")(qkv, 2, causal, 0.5)
        return _x(r, *y.shape), qkv, y, lse, 2, causal, 0.5
    return make


def _mm(shape_a, shape_b):
    return lambda r: (_x(r, *shape_a), _x(r, *shape_b))


def _rows(*shape, scale=3.0):
    return lambda r: (_x(r, *shape) * scale,)


def _row_grads(kernel, *shape):
    return lambda r: (ops.kernel(kernel, backend="numpy")(_x(r, *shape) * 3), _x(r, *shape))


# kernel name -> functions making its arguments (numpy, float64) from a seeded generator.
# matmul sizes: the simulator's tile is 8 x 8 x 8 (small_tiles: 4 x 4 x 2).
CASES = {
    "matmul": [_mm((8, 8), (8, 16)), _mm((5, 7), (7, 9)), _mm((1, 1), (1, 1)),
               _mm((3, 5, 7), (3, 7, 9)), _mm((2, 1, 3), (2, 3, 1)), _mm((4, 3), (3, 5)),
               _mm((2, 4, 3), (2, 3, 5))],
    "matmul_nt": [_mm((8, 8), (16, 8)), _mm((5, 7), (9, 7)), _mm((6, 5, 7), (6, 9, 7)),
                  _mm((4, 3), (5, 3)), _mm((2, 4, 3), (2, 5, 3))],
    "linear": [lambda r: (_x(r, 5, 7), _x(r, 9, 7), _x(r, 9)),
               lambda r: (_x(r, 5, 7), _x(r, 9, 7), None),
               lambda r: (_x(r, 4, 3), _x(r, 5, 3), _x(r, 5)),
               lambda r: (_x(r, 4, 3), _x(r, 5, 3), None)],
    "sum_rows": [_rows(7, 3), _rows(1, 5)],
    "matmul_tn": [_mm((8, 8), (8, 16)), _mm((7, 5), (7, 9)), _mm((3, 7, 1), (3, 7, 9)),
                  _mm((3, 4), (3, 5)), _mm((2, 3, 4), (2, 3, 5))],
    "softmax": [_rows(3, 4, 8), _rows(2, 7), _rows(1, 1), _rows(2, 13),
                lambda r: (np.where(_x(r, 3, 6) > 0.5, -np.inf, _x(r, 3, 6)),), _rows(3, 4, 7)],
    "softmax_backward": [_row_grads("softmax", 3, 8), _row_grads("softmax", 2, 13),
                         _row_grads("softmax", 3, 7)],
    "log_softmax": [_rows(3, 4, 8), _rows(2, 7), _rows(1, 1), _rows(2, 13), _rows(3, 4, 7)],
    "log_softmax_backward": [_row_grads("log_softmax", 3, 8),
                             _row_grads("log_softmax", 2, 13), _row_grads("log_softmax", 3, 7)],
    "gelu": [_rows(3, 9, scale=4.0), _rows(1)],
    "gelu_backward": [lambda r: (_x(r, 3, 9) * 4, _x(r, 3, 9))],
    "layer_norm": [lambda r: (_x(r, 2, 3, 8) * 2 + 1, _x(r, 8), _x(r, 8), 1e-5),
                   lambda r: (_x(r, 5, 13), _x(r, 13), _x(r, 13), 1e-5),
                   lambda r: (_x(r, 3, 1), _x(r, 1), _x(r, 1), 1e-5)],
    "layer_norm_backward": [_layer_norm_backward(2, 3, 8), _layer_norm_backward(9, 5)],
    "attention": [_attention(*spec) for spec in ATTENTION],
    "attention_backward": [_attention_backward(*spec) for spec in ATTENTION],
    "attention_qkv": [(lambda r, c=c: (_x(r, 2, 5, 12), 2, c, 0.5)) for c in (False, True)],
    "attention_qkv_backward": [_attention_qkv_backward(c) for c in (False, True)],
    "cross_entropy": [(lambda r, t=t: (_x(r, 6, 5) * 3, t, -100)) for t in TARGETS],
    "cross_entropy_backward": [_cross_entropy_backward(t, g) for t in TARGETS
                               for g in (0.7, lambda r: np.asarray(1.3))],
    "embedding": [lambda r: (_x(r, 7, 4), np.array([[0, 3, 3], [6, 0, 1]])),
                  lambda r: (_x(r, 7, 4), np.array(2))],
    "embedding_backward": [lambda r: (np.array([[0, 3, 3], [6, 0, 3]]), _x(r, 2, 3, 4), 7)],
    "adamw_update": [_adamw(3, 5), _adamw(3, 4)],
    "sum_squares": [lambda r: ((_x(r, 3, 4), _x(r, 5), _x(r, 1)),), lambda r: ((_x(r, 2, 2),),)],
    "contiguous": [lambda r: (_x(r, 4, 3).T,), lambda r: (_x(r, 3, 4),)],
    "dropout_mask": [lambda r: ((3, 5), 0.3, "float64", np.random.default_rng(7)),
                     lambda r: ((4, 2), 0.5, "float32", np.random.default_rng(8))],
    "scatter_add": [lambda r: ((5,), np.array([0, 3, 3, 1, 3]), _x(r, 5), None),
                    lambda r: ((4, 3), np.array([[2, 2], [0, 2]]), _x(r, 2, 2, 3), "float64"),
                    lambda r: ((4, 3, 2), (np.array([1, 1, 3]), slice(None), np.array([0, 0, 1])),
                               _x(r, 3, 3), None),
                    lambda r: ((4, 3), (slice(1, 3), np.array([0, 0, -1])), _x(r, 2, 3), None),
                    lambda r: ((3, 4), (np.array([0, 2, 0]), np.array([1, 1, 1])), _x(r, 3), None)],
}


def _cast(value, dtype):
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(dtype)
    if isinstance(value, tuple):
        return tuple(_cast(v, dtype) for v in value)
    if isinstance(value, str) and value.startswith("float"):
        return dtype.name
    return value


def _arrays(result):
    return [a for item in result for a in _arrays(item)] if isinstance(result, tuple) \
        else [result]


def run_case(name, device, dtype):
    """Every case of kernel `name` on `device` in `dtype` against the numpy reference."""
    dev, dtype = ops.get_device(device), np.dtype(dtype)
    for seed, make in enumerate(CASES[name]):
        cpu_args = _cast(make(np.random.default_rng(seed)), dtype)
        dev_args = moved(_cast(make(np.random.default_rng(seed)), dtype), device)
        want = ops.kernel(name, "cpu", backend="numpy")(*cpu_args)
        ops.reset_transfer_stats()
        got = ops.kernel(name, dev)(*dev_args)
        if name != "dropout_mask":  # strict draws the mask on the host and moves it
            assert ops.transfer_stats()["to_device"]["calls"] == 0, (name, seed)  # none moved
        assert ops.transfer_stats()["to_host"]["calls"] == 0, (name, seed)
        if name == "adamw_update":  # in place: compare param, m, v
            assert want is None and got is None
            want, got = tuple(cpu_args[i] for i in (0, 2, 3)), tuple(dev_args[i] for i in (0, 2, 3))
        for w, g in zip(_arrays(want), _arrays(got), strict=True):
            assert ops.device_of(g) is dev, (name, seed, type(g))
            with pytest.raises(RAW_ARRAY_ERROR[device]):
                np.asarray(g)  # the device really is elsewhere: no silent numpy conversion
            h = ops.to_host(g)
            assert h.shape == np.shape(w) and h.dtype == np.asarray(w).dtype, \
                (name, seed, h.shape, np.shape(w), h.dtype)
            np.testing.assert_allclose(h, w, **tol(device, dtype), err_msg=f"{name} case {seed}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ops.names())
def test_every_kernel_on_the_device_matches_the_reference(device, name, dtype):
    assert name in CASES, f"kernel {name!r} has no case: add one to CASES"
    if name in OWN_DRAWS.get(device, ()):
        pytest.skip(f"the {device} form draws its own {name} (its own tests check it)")
    if device != "strict":  # strict falls back to the reference forms, run on its arrays
        assert device in ops.implementations(name), f"kernel {name!r} has no {device} form"
    run_case(name, device, dtype)
