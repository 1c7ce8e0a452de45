"""Shape: views and rearrangement (reshape, permute and transpose, concatenation, stacking
and splitting, broadcasting, squeezing and flattening, flip, roll, pad, tile); each Function
with its public function."""

import builtins
import itertools
import math

import ops
from engine.autograd import Function
from engine.functions.args import axes_tuple, axis_index, broadcast_shapes, unbroadcast
from engine.functions.indexing import getitem


def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape


class Reshape(Function):
    name, formula = "reshape", "d(reshape a) = reshape(dy, a.shape)"

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return ops.array_namespace(a).reshape(a, shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {a.shape} ({a.size} elements) "
                             f"into {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).reshape(g, ctx.shape)


def reshape(a, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
    return Reshape.apply(a, shape=shape)


class Permute(Function):
    name, formula = "permute", "d(permute a) = permute(dy, inverse axes)"

    @staticmethod
    def forward(ctx, a, axes):
        axes = tuple(ax % max(a.ndim, 1) for ax in axes)
        if sorted(axes) != list(range(a.ndim)):
            raise ValueError(f"permute: axes {tuple(axes)} are not a permutation of the "
                             f"{a.ndim} axes of a tensor of shape {a.shape}")
        ctx.inverse = tuple(sorted(range(a.ndim), key=axes.__getitem__))
        return ops.array_namespace(a).permute_dims(a, axes)

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).permute_dims(g, ctx.inverse)


def permute(a, *axes):
    axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], tuple | list) else axes
    return Permute.apply(a, axes=axes)


def transpose(a, axis1=None, axis2=None):
    """Swap two axes (PyTorch style); with no axes, reverse them all (numpy style)."""
    if axis1 is None:
        return permute(a, tuple(reversed(range(a.ndim))))
    axes = list(range(a.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return permute(a, axes)


class Concat(Function):
    name, formula = "concat", "d(concat a_i) = split(dy) back to each a_i"

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            y = ops.array_namespace(arrays[0]).concat(arrays, axis=axis)
        except (ValueError, IndexError):
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"concat: shapes {shapes} differ off axis {axis}") from None
        ctx.axis = axis % y.ndim
        ctx.bounds = list(itertools.accumulate(a.shape[axis] for a in arrays))
        return y

    @staticmethod
    def backward(ctx, g):
        lead = (slice(None),) * ctx.axis
        starts = [0] + ctx.bounds[:-1]
        return tuple(g[lead + (slice(s, e), ...)] for s, e in zip(starts, ctx.bounds))


def concat(tensors, axis=0):
    return Concat.apply(*tensors, axis=axis)


def concatenate(tensors, axis=0):
    """numpy's name for concat."""
    return Concat.apply(*tensors, axis=axis)


cat = concatenate  # PyTorch's name


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


def split(a, sections, axis=-1):
    """Split into `sections` equal parts (an int) or parts of the given sizes (a list)."""
    n = a.shape[axis]
    if isinstance(sections, int):
        if sections <= 0 or n % sections:
            raise ValueError(f"split: axis {axis} of size {n} does not split into {sections}")
        sizes = [n // sections] * sections
    else:
        sizes = list(sections)
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to axis {axis} of size {n}")
    starts = itertools.accumulate([0] + sizes)
    lead = (slice(None),) * (axis % a.ndim)
    return [getitem(a, lead + (slice(s, s + k), ...)) for s, k in zip(starts, sizes)]


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


class Flip(Function):
    name, formula = "flip", "d(flip a) = flip(dy)"

    @staticmethod
    def forward(ctx, a, axis=None):
        ctx.axis = axes_tuple("flip", axis, a.shape)
        return ops.array_namespace(a).flip(a, axis=ctx.axis)

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).flip(g, axis=ctx.axis)


def flip(a, axis=None):
    """a with the order of elements reversed along `axis` (all axes when None)."""
    return Flip.apply(a, axis=axis)


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


def roll(a, shift, axis=None):
    """Elements shifted by `shift` along `axis`, wrapping around (flattened when None)."""
    return Roll.apply(a, shift=shift, axis=axis)


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


def tile(a, reps):
    """numpy's tile: a repeated reps[i] times along axis i (reps may be longer than a.ndim)."""
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: negative repetitions {reps}")
    return Tile.apply(a, reps=reps)


def repeat(a, *sizes):
    """PyTorch's Tensor.repeat, which is numpy's tile (not numpy's element-wise repeat)."""
    return tile(a, _shape_arg(sizes))
