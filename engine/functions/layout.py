"""Functions that rearrange elements (broadcast, flip, roll, pad, tile, gather, scatter-add)
and the shape ops composed from primitives (stack, squeeze, unsqueeze, flatten, tril, triu,
one_hot). Each public function here is re-exported by engine.functional."""

import builtins
import math

import ops
from engine.autograd import Function, is_tensor, make_tensor
from engine.functions.args import _any, _device, _int_array, axes_tuple, axis_index
from engine.functions.elementwise import Where, broadcast_shapes, unbroadcast
from engine.functions.shape import Concat, Reshape


class BroadcastTo(Function):
    name, formula = "broadcast_to", "d(broadcast a) = sum dy over the stretched axes"

    @staticmethod
    def forward(ctx, a, shape):
        try:
            if broadcast_shapes(a.shape, shape) != shape:
                raise ValueError
        except ValueError:
            raise ValueError(f"broadcast_to: shape {a.shape} does not broadcast to "
                             f"{shape}") from None
        ctx.shape = a.shape
        xp = ops.array_namespace(a)
        return xp.asarray(xp.broadcast_to(a, shape), copy=True)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shape)


class Flip(Function):
    name, formula = "flip", "d(flip a) = flip(dy)"

    @staticmethod
    def forward(ctx, a, axis=None):
        ctx.axis = axes_tuple("flip", axis, a.shape)
        return ops.array_namespace(a).flip(a, axis=ctx.axis)

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).flip(g, axis=ctx.axis)


class Roll(Function):
    name, formula = "roll", "d(roll a, s) = roll(dy, -s)"

    @staticmethod
    def forward(ctx, a, shift, axis=None):
        if axis is not None:
            axis = tuple(axis_index("roll", x, a.shape) for x in
                         (axis if isinstance(axis, tuple | list) else (axis,)))
            shift = tuple(shift) if isinstance(shift, tuple | list) else (shift,) * len(axis)
            if len(shift) != len(axis):
                raise ValueError(f"roll: {len(shift)} shifts for {len(axis)} axes")
        ctx.shift, ctx.axis = shift, axis
        return ops.array_namespace(a).roll(a, shift, axis=axis)

    @staticmethod
    def backward(ctx, g):
        back = (-ctx.shift if isinstance(ctx.shift, int) else tuple(-s for s in ctx.shift))
        return ops.array_namespace(g).roll(g, back, axis=ctx.axis)


class Pad(Function):
    name, formula = "pad", "d(pad a) = dy cropped back to a"

    @staticmethod
    def forward(ctx, a, pad_width, value=0):
        xp = ops.array_namespace(a)
        out = xp.full(tuple(n + lo + hi for n, (lo, hi) in zip(a.shape, pad_width)), value,
                      dtype=a.dtype, device=a.device)
        ctx.inside = tuple(slice(lo, lo + n) for n, (lo, _) in zip(a.shape, pad_width))
        out[ctx.inside] = a
        return out

    @staticmethod
    def backward(ctx, g):
        return g[ctx.inside]


class Tile(Function):
    name, formula = "tile", "d(tile a) = sum of dy over the copies"

    @staticmethod
    def forward(ctx, a, reps):
        ctx.shape = a.shape
        return ops.array_namespace(a).tile(a, reps)

    @staticmethod
    def backward(ctx, g):
        xp = ops.array_namespace(g)
        shape = (1,) * (g.ndim - len(ctx.shape)) + ctx.shape  # a's shape, padded to g's ndim
        split = builtins.sum(((r // n, n) for r, n in zip(g.shape, shape)), ())
        g = xp.sum(xp.reshape(g, split), axis=tuple(range(0, 2 * g.ndim, 2)))
        return xp.reshape(g, ctx.shape)


def _full_index(idx, axis):
    """numpy-style index tuple that puts idx's elements along `axis` of the target array:
    idx on `axis`, a broadcast arange on every other axis."""
    xp = ops.array_namespace(idx)
    return tuple(idx if d == axis else
                 xp.reshape(xp.arange(n, device=idx.device),
                            tuple(n if e == d else 1 for e in range(idx.ndim)))
                 for d, n in enumerate(idx.shape))


class TakeAlongAxis(Function):
    name, formula = "take_along_axis", "d(a[idx] along axis) = scatter-add dy at idx"

    @staticmethod
    def forward(ctx, a, idx, axis):
        ctx.save_for_backward(idx)
        ctx.shape, ctx.axis, ctx.dtype = a.shape, axis, a.dtype
        return ops.array_namespace(a).take_along_axis(a, idx, axis=axis)

    @staticmethod
    def backward(ctx, g):
        index = _full_index(ctx.saved[0], ctx.axis)
        return ops.kernel_for("scatter_add", g)(ctx.shape, index, g, ctx.dtype)


class ScatterAdd(Function):
    name, formula = "scatter_add", "d(a + scatter(src at idx)) = dy, dy[idx]"

    @staticmethod
    def forward(ctx, a, src, idx, axis):
        ctx.save_for_backward(idx)
        ctx.axis = axis
        added = ops.kernel_for("scatter_add", a)(a.shape, _full_index(idx, axis), src, a.dtype)
        return a + added

    @staticmethod
    def backward(ctx, g):
        idx = ctx.saved[0]
        dsrc = (ops.array_namespace(g).take_along_axis(g, idx, axis=ctx.axis)
                if ctx.needs_input_grad[1] else None)
        return g, dsrc


# ---- public functions ----------------------------------------------------------------------
def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape


def broadcast_to(a, *shape):
    """a stretched to `shape` by numpy's broadcasting rule (a copy; differentiable)."""
    return BroadcastTo.apply(a, shape=tuple(int(n) for n in _shape_arg(shape)))


def expand(a, *shape):
    """PyTorch's expand: broadcast_to, where -1 keeps that dimension's size."""
    shape = _shape_arg(shape)
    lead = len(shape) - a.ndim
    kept = tuple(a.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(shape))
    return broadcast_to(a, kept)


def expand_dims(a, axis):
    """A new axis of size 1 inserted at `axis` (an int or a tuple of ints; numpy's rule)."""
    axes = axis if isinstance(axis, tuple | list) else (axis,)
    ndim = a.ndim + len(axes)
    at = sorted(axis_index("expand_dims", x, a.shape, extra=len(axes)) for x in axes)
    if len(set(at)) != len(at):
        raise ValueError(f"expand_dims: repeated axis in {axis} for shape {a.shape}")
    dims = iter(a.shape)
    return Reshape.apply(a, shape=tuple(1 if i in at else next(dims) for i in range(ndim)))


def unsqueeze(a, axis):
    """PyTorch's name for expand_dims."""
    return expand_dims(a, axis)


def squeeze(a, axis=None):
    """a without its size-1 axes (all of them, or those in `axis`, which must be size 1)."""
    axes = tuple(i for i, n in enumerate(a.shape) if n == 1) if axis is None else \
        axes_tuple("squeeze", axis, a.shape)
    if any(a.shape[i] != 1 for i in axes):
        raise ValueError(f"squeeze: axis {axis} of a tensor of shape {a.shape} is not of size 1")
    return Reshape.apply(a, shape=tuple(n for i, n in enumerate(a.shape) if i not in axes))


def flatten(a, start_axis=0, end_axis=-1):
    """Axes start_axis..end_axis (inclusive, PyTorch's flatten) merged into one."""
    if a.ndim == 0:
        return Reshape.apply(a, shape=(1,))
    s, e = axis_index("flatten", start_axis, a.shape), axis_index("flatten", end_axis, a.shape)
    if s > e:
        raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis} "
                         f"for shape {a.shape}")
    shape = a.shape[:s] + (math.prod(a.shape[s:e + 1]),) + a.shape[e + 1:]
    return Reshape.apply(a, shape=shape)


def stack(tensors, axis=0):
    """Tensors of one shape joined along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: tensors must have one shape, got "
                         f"{', '.join(str(tuple(t.shape)) for t in tensors)}")
    at = axis_index("stack", axis, tensors[0].shape, extra=1)
    return Concat.apply(*[expand_dims(t, at) for t in tensors], axis=at)


def concatenate(tensors, axis=0):
    """numpy's name for concat."""
    return Concat.apply(*tensors, axis=axis)


cat = concatenate  # PyTorch's name


def flip(a, axis=None):
    """a with the order of elements reversed along `axis` (all axes when None)."""
    return Flip.apply(a, axis=axis)


def roll(a, shift, axis=None):
    """Elements shifted by `shift` along `axis`, wrapping around (flattened when None)."""
    return Roll.apply(a, shift=shift, axis=axis)


def _triangle(op, a, k, keep_lower):
    if a.ndim < 2:
        raise ValueError(f"{op}: needs at least 2 dimensions, got shape {a.shape}")
    xp, device = ops.array_namespace(a.data), a.data.device
    rows = xp.reshape(xp.arange(a.shape[-2], device=device), (-1, 1))
    cols = xp.arange(a.shape[-1], device=device)
    keep = cols - rows <= k if keep_lower else cols - rows >= k  # (rows, cols)
    return Where.apply(make_tensor(keep), a, 0)


def tril(a, k=0):
    """The lower triangle (at and below diagonal k) of the last two axes; zeros above."""
    return _triangle("tril", a, k, True)


def triu(a, k=0):
    """The upper triangle (at and above diagonal k) of the last two axes; zeros below."""
    return _triangle("triu", a, k, False)


def pad(a, pad_width, constant_values=0):
    """numpy's constant pad: pad_width is an int, (before, after), or one pair per axis."""
    n = a.ndim
    widths = ((pad_width, pad_width),) * n if isinstance(pad_width, int) else tuple(pad_width)
    if widths and isinstance(widths[0], int):
        widths = (tuple(widths),) * n
    if len(widths) != n or any(len(w) != 2 or min(w) < 0 for w in widths):
        raise ValueError(f"pad: pad_width {pad_width} does not give (before, after) >= 0 for "
                         f"each of the {n} axes of shape {a.shape}")
    return Pad.apply(a, pad_width=tuple(tuple(int(x) for x in w) for w in widths),
                     value=constant_values)


def tile(a, reps):
    """numpy's tile: a repeated reps[i] times along axis i (reps may be longer than a.ndim)."""
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: negative repetitions {reps}")
    return Tile.apply(a, reps=reps)


def repeat(a, *sizes):
    """PyTorch's Tensor.repeat, which is numpy's tile (not numpy's element-wise repeat)."""
    return tile(a, _shape_arg(sizes))


def _along_axis_index(op, a, indices, axis, need_same=()):
    idx = _int_array(op, "indices", indices, _device(a))
    axis = axis_index(op, axis, a.shape)
    if idx.ndim != a.ndim or any(idx.shape[d] != a.shape[d] for d in range(a.ndim)
                                 if d != axis or d in need_same):
        raise ValueError(f"{op}: indices {idx.shape} must match the tensor's shape {a.shape} "
                         f"except along axis {axis}")
    n = a.shape[axis]
    if _any((idx < -n) | (idx >= n)):
        raise IndexError(f"{op}: an index is out of range for axis {axis} of size {n}")
    return (idx % n if n else idx), axis


def take_along_axis(a, indices, axis):
    """numpy's take_along_axis: a[..., indices[...], ...] along `axis`; differentiable in a."""
    idx, axis = _along_axis_index("take_along_axis", a, indices, axis)
    return TakeAlongAxis.apply(a, idx=idx, axis=axis)


def gather(a, axis, index):
    """PyTorch's gather(input, dim, index): take_along_axis with the axis first."""
    idx, axis = _along_axis_index("gather", a, index, axis)
    return TakeAlongAxis.apply(a, idx=idx, axis=axis)


def scatter_add(a, axis, index, src):
    """PyTorch's scatter_add: a copy of a with src[i] added at a[..., index[i], ...] along
    `axis` (index and src of one shape, matching a off the axis); repeats accumulate."""
    if not is_tensor(src) or tuple(src.shape) != tuple(getattr(index, "shape", ())):
        raise ValueError(f"scatter_add: index {getattr(index, 'shape', None)} and src "
                         f"{getattr(src, 'shape', None)} must be arrays of one shape")
    idx, axis = _along_axis_index("scatter_add", a, index, axis)
    return ScatterAdd.apply(a, src, idx=idx, axis=axis)


def one_hot(indices, num_classes, dtype="int64"):
    """Integer indices (...) as one-hot rows (..., num_classes) of `dtype`; no gradient."""
    device = _device(indices)
    idx = _int_array("one_hot", "indices", indices, device)
    if _any((idx < 0) | (idx >= num_classes)):
        raise IndexError(f"one_hot: an index is out of range for {num_classes} classes")
    xp = device.xp
    hot = idx[..., None] == xp.arange(num_classes, device=idx.device)
    return make_tensor(xp.astype(hot, device.dtype(ops.dtype_name(dtype, device))))
