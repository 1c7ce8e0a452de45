"""Creation functions (`engine.zeros`, `engine.arange`, `engine.randn`, ...), PyTorch-style.

Every function takes `dtype` (a name such as "float32", or a numpy dtype), `device` ("cpu"
by default, or any registered device) and `requires_grad` (float dtypes only). Deterministic
ones are made on the device by its namespace. Random ones draw on the host from a numpy
generator and are moved (one counted copy), so a seed gives the same numbers on every device:
`generator` is an `np.random.Generator`, an int seed (a fresh generator), or None (the
engine's default generator, reseeded by `engine.manual_seed`).
"""

import numpy as np

import ops
from engine import functional as F
from engine.tensor import Tensor


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    return tuple(int(n) for n in shape)


def _make(op, array, device, requires_grad):
    """Wrap a device array (made by the device's namespace) or a host array (moved)."""
    target = ops.get_device(device or "cpu")
    if ops.device_of(array) is not target:
        array = ops.to_device(array, target)
    t = Tensor(array)
    if requires_grad:
        if not target.xp.isdtype(t.dtype, "real floating"):
            raise TypeError(f"{op}: only float tensors can require grad; dtype is "
                            f"{target.dtype_name(t.dtype)}")
        t.requires_grad_()
    return t


def _dtype(dtype, device, default):
    """A dtype of `device` from a name, numpy dtype or device dtype (default: a name)."""
    target = ops.get_device(device or "cpu")
    name = default if dtype is None else ops.dtype_name(dtype, target)
    if name not in ("float32", "float64", "int64", "bool"):
        raise TypeError(f"unsupported dtype {name}: use float32, float64, int64 or bool")
    return target, target.dtype(name)


def _fill(op, shape, value, dtype, device, requires_grad, default="float32"):
    target, dt = _dtype(dtype, device, default)
    if any(n < 0 for n in shape):
        raise ValueError(f"{op}: negative dimension in shape {shape}")
    array = target.xp.full(shape, value, dtype=dt, device=target.array_device)
    return _make(op, array, device, requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    return _fill("zeros", _shape(shape), 0, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False):
    return _fill("ones", _shape(shape), 1, dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of `shape` filled with `fill_value`; the dtype follows the value (bool, int64,
    float32) unless given."""
    default = ("bool" if isinstance(fill_value, bool) else
               "int64" if isinstance(fill_value, int) else "float32")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return _fill("full", shape, fill_value, dtype, device, requires_grad, default)


def _like(t, dtype, device):
    """dtype and device of `t` unless given (the dtype by name, valid on any device)."""
    own = ops.device_of(t.data)
    return (own.dtype_name(t.dtype) if dtype is None else dtype), (device or own.name)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return zeros(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return ones(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False):
    """Evenly spaced values in [start, stop): int64 when all arguments are ints, else float32."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    ints = all(isinstance(x, int) for x in (start, stop, step))
    target, dt = _dtype(dtype, device, "int64" if ints else "float32")
    array = target.xp.arange(start, stop, step, dtype=dt, device=target.array_device)
    return _make("arange", array, device, requires_grad)


def linspace(start, stop, num=50, endpoint=True, dtype=None, device=None,
             requires_grad=False):
    """`num` evenly spaced values from start to stop (stop included unless endpoint=False)."""
    target, dt = _dtype(dtype, device, "float32")
    array = target.xp.linspace(start, stop, num, endpoint=endpoint, dtype=dt,
                               device=target.array_device)
    return _make("linspace", array, device, requires_grad)


def eye(n, m=None, k=0, dtype=None, device=None, requires_grad=False):
    """The (n, m) identity: ones on diagonal k."""
    target, dt = _dtype(dtype, device, "float32")
    array = target.xp.eye(n, m, k=k, dtype=dt, device=target.array_device)
    return _make("eye", array, device, requires_grad)


def _generator(generator):
    if generator is None:
        return F.default_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, int):
        return np.random.default_rng(generator)
    raise TypeError(f"generator must be an np.random.Generator, an int seed or None, got "
                    f"{type(generator).__name__}")


def _random(op, draw, dtype, device, requires_grad):
    target, dt = _dtype(dtype, device, "float32")
    name = target.dtype_name(dt)
    if name not in ("float32", "float64"):
        raise TypeError(f"{op}: dtype must be float32 or float64, got {name}")
    return _make(op, draw().astype(name), device, requires_grad)


def randn(*shape, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples of `shape`."""
    g = _generator(generator)
    return _random("randn", lambda: g.standard_normal(_shape(shape)), dtype, device,
                   requires_grad)


def rand(*shape, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1) of `shape`."""
    g = _generator(generator)
    return _random("rand", lambda: g.random(_shape(shape)), dtype, device, requires_grad)


def randint(low, high=None, size=(), generator=None, dtype="int64", device=None):
    """Integers uniform in [low, high) (in [0, low) when high is None), int64."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: empty range [{low}, {high})")
    target, dt = _dtype(dtype, device, "int64")
    size = (size,) if isinstance(size, int) else tuple(size)
    draw = _generator(generator).integers(low, high, size=size)
    return _make("randint", draw.astype(target.dtype_name(dt)), device, False)


def randn_like(t, generator=None, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return randn(t.shape, generator=generator, dtype=dtype, device=device,
                 requires_grad=requires_grad)


def rand_like(t, generator=None, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return rand(t.shape, generator=generator, dtype=dtype, device=device,
                requires_grad=requires_grad)
