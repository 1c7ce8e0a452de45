"""Indexing on the cuda device: basic indexing (ints, slices, None, ...) makes a view;
integer arrays gather: one array among full slices is a `take`, integer arrays on every axis
(the standard's form) a gather from computed flat offsets. setitem takes basic indexes.

Kernels: each thread handles output elements i, i + grid size, ... (grid-stride loop) and
reads one input element: reads are scattered, writes coalesced.
"""

import numpy as np
from numba import cuda

from ops.cuda import elementwise as ew
from ops.cuda import launch
from ops.cuda.cudaarray import CudaArray, empty, namespace
from ops.cuda.launch import NUMBA_TYPES, factory


@factory
def take_kernel(dtype):
    """out (P, J, Q) = x (P, N, Q)[:, idx, :]; idx (J,) int64, negative counts from the end."""
    T = NUMBA_TYPES[dtype]

    @launch.jit
    def kernel(out, x, xo, idx, N, J, Q, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            q = i % Q
            t = i // Q
            k = idx[t % J]
            if k < 0:
                k += N
            out[i] = T(x[xo + ((t // J) * N + k) * Q + q])
    return kernel


@factory
def along_kernel(dtype):
    """out (P, J, Q) = x (P, N, Q) picked along N by idx (P, J, Q) (take_along_axis)."""
    T = NUMBA_TYPES[dtype]

    @launch.jit
    def kernel(out, x, xo, idx, N, J, Q, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            q = i % Q
            k = idx[i]
            if k < 0:
                k += N
            out[i] = T(x[xo + ((i // Q // J) * N + k) * Q + q])
    return kernel


@factory
def gather_kernel(dtype):
    T = NUMBA_TYPES[dtype]

    @launch.jit
    def kernel(out, x, offsets, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[i] = T(x[offsets[i]])
    return kernel


def _pqn(shape, axis):
    P = int(np.prod(shape[:axis], dtype=np.int64))
    Q = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return P, shape[axis], Q


def take(x, indices, /, *, axis=None):
    if axis is None:
        x, axis = namespace().reshape(x, (-1,)), 0
    axis %= x.ndim
    xp = namespace()
    idx = xp.contiguous(xp.astype(_device_index(indices), xp.int64, copy=False))
    if idx.ndim != 1:
        raise ValueError(f"take: indices must be 1-D, got shape {idx.shape}")
    x = namespace().contiguous(x)
    _, N, Q = _pqn(x.shape, axis)
    out = empty(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype)
    n = out.size
    if n:
        if N == 0:
            raise IndexError(f"take: index out of range for axis {axis} of size 0")
        take_kernel(x.dtype.name)[ew.launch_grid(n)](out.flat(), x.base, x.offset,
                                                     idx.dev(), N, idx.size, Q, n)
    return out


def take_along_axis(x, indices, /, *, axis=-1):
    axis %= x.ndim
    idx = namespace().astype(_device_index(indices), namespace().int64, copy=False)
    shape = list(np.broadcast_shapes(x.shape[:axis] + (1,) + x.shape[axis + 1:],
                                     idx.shape[:axis] + (1,) + idx.shape[axis + 1:]))
    shape[axis] = idx.shape[axis]
    idx = namespace().contiguous(namespace().broadcast_to(idx, tuple(shape)))
    x = namespace().contiguous(namespace().broadcast_to(x, tuple(shape[:axis]) + (x.shape[axis],)
                                      + tuple(shape[axis + 1:])))
    _, N, Q = _pqn(x.shape, axis)
    out = empty(tuple(shape), x.dtype)
    n = out.size
    if n:
        flat = namespace().reshape(idx, (-1,)).dev()
        along_kernel(x.dtype.name)[ew.launch_grid(n)](out.flat(), x.base, x.offset, flat,
                                                      N, shape[axis], Q, n)
    return out


def _device_index(it):
    if isinstance(it, CudaArray):
        return it
    return namespace().asarray(np.asarray(it))  # host integer data: one counted copy


def _items(key):
    """The index items; a boolean mask becomes its nonzero() integer arrays (one per axis
    it covers: a data-dependent shape, so a counted round trip through the host)."""
    items = list(key) if isinstance(key, tuple) else [key]
    out = []
    for it in items:
        if isinstance(it, bool | np.bool_):
            raise TypeError("cuda indexing: boolean scalars are not supported")
        if isinstance(it, np.integer):
            it = int(it)
        elif isinstance(it, list | np.ndarray | CudaArray):
            it = _device_index(it)
            if it.dtype == np.bool_:
                out.extend(nonzero(it))
                continue
            if it.dtype.kind not in "iu":
                raise TypeError(f"cuda indexing: index arrays must be integers, got {it.dtype}")
        out.append(it)
    return out


def nonzero(x):
    """The standard's nonzero: one int64 array of positions per axis. Its length depends on
    the data, so the positions are found on the host (counted copies each way)."""
    from ops.devices import to_device, to_host  # the cuda device is registered by now
    return tuple(to_device(np.ascontiguousarray(p, dtype=np.int64), "cuda")
                 for p in np.nonzero(to_host(x)))


def _expand(items, ndim):
    """items with the Ellipsis (explicit or implicit trailing) replaced by full slices."""
    used = sum(1 for it in items if it is not None and it is not Ellipsis)
    if used > ndim:
        raise IndexError(f"too many indices ({used}) for an array with {ndim} dimensions")
    if not any(it is Ellipsis for it in items):
        items = items + [Ellipsis]
    at = next(i for i, it in enumerate(items) if it is Ellipsis)
    rest = [it for it in items[at + 1:] if it is not Ellipsis]
    return items[:at] + [slice(None)] * (ndim - used) + rest


def _basic(x, items):
    """The view x[items] for ints, slices and None (Ellipsis already expanded)."""
    shape, strides, offset, d = [], [], x.offset, 0
    for it in items:
        if it is None:
            shape.append(1)
            strides.append(0)
            continue
        n, s = x.shape[d], x.strides[d]
        if isinstance(it, int):
            if not -n <= it < n:
                raise IndexError(f"index {it} is out of bounds for axis {d} with size {n}")
            offset += (it % n) * s
        else:
            start, stop, step = it.indices(n)
            length = len(range(start, stop, step))
            offset += start * s if length else 0
            shape.append(length)
            strides.append(s * step)
        d += 1
    return x.view(tuple(shape), tuple(strides), offset)


def getitem(x, key):
    items = _expand(_items(key), x.ndim)
    arrays = [i for i, it in enumerate(items) if isinstance(it, CudaArray)]
    if not arrays:
        view = _basic(x, items)
        # an integer on every axis: a new 0-d array, as numpy's scalar (not a view: code that
        # keeps `old = a[i]` and then writes a[i] expects old unchanged)
        return namespace().astype(view, view.dtype) if view.ndim == 0 else view
    if any(it is None for it in items):  # numpy: new axes first, then the rest
        x = _basic(x, [None if it is None else slice(None) for it in items])
        items = [slice(None) if it is None else it for it in items]
    if len(arrays) == 1 and all(isinstance(it, slice) and it == slice(None)
                                for i, it in enumerate(items) if i != arrays[0]):
        axis, idx = arrays[0], items[arrays[0]]  # the common case: a take
        y = take(x, namespace().reshape(idx, (-1,)), axis=axis)
        return namespace().reshape(y, x.shape[:axis] + idx.shape + x.shape[axis + 1:])
    return _advanced(x, items)


def _advanced(x, items):
    """numpy's advanced indexing: the integer and integer-array items (broadcast together)
    pick along their axes, the slices along theirs; the broadcast axes come first, or where
    the first indexed axis was when the indexed axes are adjacent. One gather from computed
    element offsets."""
    ns = namespace()
    adv = [d for d, it in enumerate(items) if not isinstance(it, slice)]
    view = _basic(x, [it if isinstance(it, slice) else slice(None) for it in items])
    sliced = [d for d in range(x.ndim) if d not in adv]
    idx = []
    for d in adv:
        it, n = items[d], x.shape[d]
        if isinstance(it, CudaArray):
            idx.append(ns.where(ns.less(it, 0), ns.add(it, n), it))
        elif not -n <= it < n:
            raise IndexError(f"index {it} is out of bounds for axis {d} with size {n}")
        else:
            idx.append(it % n)
    bshape = np.broadcast_shapes(*[i.shape for i in idx if isinstance(i, CudaArray)])
    nb, nsl = len(bshape), len(sliced)
    offsets = ns.full(bshape + (1,) * nsl, view.offset, dtype=ns.int64)
    for d, i in zip(adv, idx):
        if isinstance(i, CudaArray):
            step = ns.multiply(i, view.strides[d])
            offsets = ns.add(offsets, ns.reshape(step, step.shape + (1,) * nsl))
        else:
            offsets = ns.add(offsets, i * view.strides[d])
    for t, d in enumerate(sliced):
        n = view.shape[d]
        grid = ns.multiply(ns.arange(n, dtype=ns.int64), view.strides[d])
        offsets = ns.add(offsets, ns.reshape(grid, (1,) * (nb + t) + (n,) + (1,) * (nsl - t - 1)))
    offsets = ns.contiguous(ns.broadcast_to(offsets, bshape + tuple(view.shape[d]
                                                                    for d in sliced)))
    out = empty(offsets.shape, x.dtype)
    if out.size:
        gather_kernel(x.dtype.name)[ew.launch_grid(out.size)](
            out.flat(), x.base, ns.reshape(offsets, (-1,)).dev(), out.size)
    before = sum(1 for d in sliced if d < adv[0])
    if before and adv == list(range(adv[0], adv[-1] + 1)):  # adjacent: numpy keeps them there
        order = (list(range(nb, nb + before)) + list(range(nb))
                 + list(range(nb + before, nb + nsl)))
        out = ns.permute_dims(out, tuple(order))
    return out


def setitem(x, key, value):
    items = _expand(_items(key), x.ndim)
    if any(isinstance(it, CudaArray) for it in items):
        raise TypeError("cuda setitem: index arrays are not supported (use scatter_add)")
    view = _basic(x, items)
    if not isinstance(value, CudaArray):
        if isinstance(value, np.ndarray):
            raise TypeError("a host ndarray cannot be assigned into a cuda array; move it "
                            "first (ops.to_device)")
        value = namespace().full((), value, dtype=x.dtype)
    namespace()._assign(view, value)

