"""Array plumbing the engine asks of a device: a contiguous copy, the scatter-add behind
integer-array indexing, and dropout's random mask.

All three references are numpy (the standard has no memory layout, no scatter and no random
numbers); ops/strict.py registers the standard-only forms of the test device.
"""

import numpy as np

from ops.registry import register


def contiguous_reference(a):
    """A C-contiguous array with a's values: `a` itself when it already is one."""
    return np.ascontiguousarray(a)


def scatter_add_reference(shape, index, values, dtype=None):
    """A new zeros array of `shape` with `values` added at numpy-style `index` (an int, slice,
    integer array, or a tuple of those); repeated positions accumulate, in index order.

    dtype: a name ("float32"), a numpy dtype, or None for values' dtype. This is the backward
    of `a[index]`: `values` has the shape of `a[index]` (or broadcasts to it).
    """
    out = np.zeros(shape, dtype=values.dtype if dtype is None else np.dtype(dtype))
    np.add.at(out, index, values)
    return out


def random_dtype(dtype):
    """The dtype dropout draws its uniforms in: float32 for float32 data, else float64."""
    return np.float32 if np.dtype(dtype) == np.float32 else np.float64


def dropout_mask_reference(shape, p, dtype, generator):
    """keep / (1 - p) as an array of dtype `dtype` ("float32" or "float64"), where keep =
    generator.random(shape) >= p, drawn in float32 for float32 (else float64) from the host
    np.random.Generator `generator`: 0 where dropped, 1 / (1 - p) where kept. The draw and the
    arithmetic are those dropout has always used, so a resumed run stays bit-identical."""
    dt = np.dtype(dtype).type
    keep = generator.random(shape, dtype=random_dtype(dtype)) >= p
    return (keep / dt(1 - p)).astype(dt)


register("contiguous", "reference", contiguous_reference)
register("scatter_add", "reference", scatter_add_reference)
register("dropout_mask", "reference", dropout_mask_reference)
