"""The test-only "strict" device: array-api-strict arrays on its Device("device1"), which
refuse anything outside the Python array API standard (2024.12, numpy 2.4's version) and any
conversion to numpy. The engine runs on it in tests; that shows it holds no hidden numpy.

Imported by ops.devices on the first `get_device("strict")` (importing ops never imports
array_api_strict). Its kernels are the "strict" forms below where a reference needs what
the standard lacks (scatter, memory layout, random numbers), else the references, which
are written in the standard.
"""

import math

import numpy as np

from ops.arrays import dropout_mask_reference
from ops.devices import Device, DeviceError, array_namespace, register_device, to_device
from ops.registry import register

try:
    import array_api_strict as xp
except ImportError:  # pragma: no cover - depends on the environment
    raise DeviceError("device 'strict' needs array-api-strict: pip install array-api-strict") \
        from None

xp.set_array_api_strict_flags(api_version="2024.12")
DEVICE = xp.Device("device1")  # arrays here cannot be converted to numpy
_HOST = xp.Device("CPU_DEVICE")
_ARRAY = type(xp.asarray(0))  # the package does not export its array class


def _owns(a):
    return isinstance(a, _ARRAY) and a.device == DEVICE


def _from_host(a):
    return xp.asarray(np.asarray(a), device=DEVICE, copy=True)


def _to_host(a):
    return np.asarray(a.to_device(_HOST))


STRICT = register_device(Device("strict", xp=xp, owns=_owns, from_host=_from_host,
                                to_host=_to_host, impls=("strict", "reference")))


# ---- the strict forms: standard calls only ------------------------------------------------

def contiguous_strict(a):
    """The standard has no memory layout: `a` as it is."""
    return a


def dropout_mask_strict(shape, p, dtype, generator):
    """The reference's mask, drawn on the host (the generator lives there), then moved to
    the device: one counted transfer."""
    return to_device(dropout_mask_reference(shape, p, dtype, generator), STRICT)


def _dtype(ns, dtype, values):
    if dtype is None:
        return values.dtype
    return getattr(ns, dtype) if isinstance(dtype, str) else dtype


def scatter_add_strict(shape, index, values, dtype=None):
    """np.add.at into zeros, without a scatter: every value's flat target position
    (`positions`), compared with every position of the result (an (N, size) boolean
    matrix), and the values summed down each column. Memory N * size: for tests."""
    ns = array_namespace(values)
    dtype = _dtype(ns, dtype, values)
    shape = tuple(shape)
    size = math.prod(shape)
    pos = positions(ns, shape, index, values.device)
    vals = ns.broadcast_to(ns.astype(values, dtype, copy=False), pos.shape)
    pos, vals = ns.reshape(pos, (-1,)), ns.reshape(vals, (-1,))
    hit = pos[:, None] == ns.arange(size, device=values.device)[None, :]
    out = ns.sum(ns.where(hit, vals[:, None], ns.zeros((), dtype=dtype, device=values.device)),
                 axis=0)
    return ns.reshape(out, shape)


def positions(ns, shape, index, device):
    """`reshape(arange(size), shape)[index]` with numpy's indexing rules, in the standard:
    the flat position in an array of `shape` that each element of `a[index]` comes from.

    The standard indexes with integer arrays only when every axis gets an integer or an
    integer array; so the slices are applied first, the sliced axes then indexed by aranges,
    and the result's axes put where numpy puts them (the broadcast index axes in place of
    the indexed axes when those are adjacent, else first)."""
    flat = ns.reshape(ns.arange(math.prod(shape), dtype=ns.int64, device=device), shape)
    items = [_index_item(ns, it, device) for it in (index if isinstance(index, tuple)
                                                    else (index,))]
    ellipsis = [i for i, it in enumerate(items) if it is Ellipsis]  # (`in` would compare arrays)
    if not any(_is_array(it) for it in items):  # basic indexing: the standard has it
        return flat[tuple(items) if ellipsis else tuple(items) + (Ellipsis,)]
    if any(it is None for it in items):
        raise TypeError("scatter_add on 'strict': None beside index arrays is numpy-only indexing")
    if ellipsis:
        at = ellipsis[0]
        items[at:at + 1] = [slice(None)] * (len(shape) - len(items) + 1)
    items += [slice(None)] * (len(shape) - len(items))
    adv = [i for i, it in enumerate(items) if not isinstance(it, slice)]
    sliced = [i for i, it in enumerate(items) if isinstance(it, slice)]
    base = flat[tuple(it if isinstance(it, slice) else slice(None) for it in items)]
    base = ns.permute_dims(base, tuple(adv + sliced))
    arrays = [ns.where(items[i] < 0, items[i] + shape[i], items[i]) for i in adv
              if _is_array(items[i])]
    bshape = ns.broadcast_arrays(*arrays)[0].shape
    nb, nsl = len(bshape), len(sliced)
    key = []
    for i in adv:
        it = items[i]
        if _is_array(it):
            it = ns.reshape(ns.broadcast_to(arrays.pop(0), bshape), bshape + (1,) * nsl)
        key.append(it)
    for t in range(nsl):
        n = base.shape[len(adv) + t]
        key.append(ns.reshape(ns.arange(n, device=device),
                              (1,) * (nb + t) + (n,) + (1,) * (nsl - t - 1)))
    out = base[tuple(key)]                                 # broadcast axes, then sliced axes
    before = sum(1 for i in sliced if i < adv[0])
    if before and adv == list(range(adv[0], adv[-1] + 1)):  # adjacent: numpy keeps them there
        order = (list(range(nb, nb + before)) + list(range(nb))
                 + list(range(nb + before, nb + nsl)))
        out = ns.permute_dims(out, tuple(order))
    return out


def _is_array(it):
    return not isinstance(it, int | slice | type(None)) and it is not Ellipsis


def _index_item(ns, it, device):
    """One index item as the standard takes it: Python ints, slices, None, Ellipsis, and
    int64 arrays of the device (a numpy or list index is moved there, counted)."""
    if isinstance(it, bool | np.bool_):
        raise TypeError("scatter_add on 'strict': boolean indices are not supported")
    if isinstance(it, np.integer):
        return int(it)
    if isinstance(it, int | slice | type(None)) or it is Ellipsis:
        return it
    if isinstance(it, list | np.ndarray):
        it = to_device(np.asarray(it), STRICT)
    if it.dtype == ns.bool:
        raise TypeError("scatter_add on 'strict': boolean indices are not supported")
    return ns.astype(it, ns.int64, copy=False)


def embedding_backward_strict(idx, dout, num_embeddings):
    """dweight = onehot(idx)^T @ dout: onehot (N, V) compares every index with every row.
    (A NaN or inf in dout spreads to every row, through 0 * NaN; fine for tests.)"""
    ns = array_namespace(dout)
    c = dout.shape[-1]
    flat = ns.reshape(idx, (-1,))
    rows = ns.reshape(dout, (-1, c))
    onehot = flat[:, None] == ns.arange(num_embeddings, device=dout.device)[None, :]
    return ns.matmul(ns.matrix_transpose(ns.astype(onehot, dout.dtype)), rows)


def cross_entropy_backward_strict(logits, targets, lse, ignore_index, grad):
    """As the reference, with the one-hot subtracted as a matrix and grad / count computed
    on the device (in float64, rounded once, as the cpu form does); no value leaves it."""
    ns = array_namespace(logits)
    counted = targets != ignore_index
    count = ns.astype(ns.asarray(ns.count_nonzero(counted)), ns.float64)
    if isinstance(grad, int | float):
        grad = ns.asarray(float(grad), dtype=ns.float64, device=logits.device)
    scale = ns.astype(ns.astype(grad, ns.float64) / ns.maximum(count, 1.0), logits.dtype)
    safe = ns.where(counted, targets, 0)
    onehot = safe[..., None] == ns.arange(logits.shape[-1], device=logits.device)
    dlogits = ns.exp(logits - lse[..., None]) - ns.astype(onehot, logits.dtype)
    return dlogits * ns.where(counted, scale, 0.0)[..., None]


register("contiguous", "strict", contiguous_strict)
register("dropout_mask", "strict", dropout_mask_strict)
register("scatter_add", "strict", scatter_add_strict)
register("embedding_backward", "strict", embedding_backward_strict)
register("cross_entropy_backward", "strict", cross_entropy_backward_strict)
