"""CudaArray: the "cuda" device's array, a strided view (offset, shape, strides in elements)
of a flat Numba device buffer, like a numpy view. Reshape of contiguous data, transposes,
broadcasts and basic indexing only make a new view; kernels that need C-contiguous data get
it from `dev()` after `contiguous()` (one copy kernel when the view is not).

Operators and indexing follow the Python array API standard and call the namespace
(ops/cuda/namespace.py) for their arithmetic. Nothing here moves data between the host and
the device except `from_host` / `to_host` (which ops.to_device counts) and scalar reads
(`float(a)`, `int(a)`, `bool(a)`), counted under "scalar_reads".
"""

import math

import numpy as np

from ops.cuda import deferred, launch, memory
from ops.cuda import elementwise as ew
from ops.devices import count_scalar_read


class CudaDevice:
    """The namespace's device object (`a.device`, `device=` in creation functions)."""

    def __repr__(self):
        return "cuda:0"


DEVICE = CudaDevice()


def c_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def empty(shape, dtype):
    """A new uninitialised C-contiguous array, in a block of the caching allocator."""
    shape = tuple(int(n) for n in shape)
    dtype = np.dtype(dtype)
    block = memory.allocate(max(math.prod(shape), 1) * dtype.itemsize)
    return CudaArray(memory.typed(block.segment, dtype), block.offset // dtype.itemsize, shape,
                     c_strides(shape), block)


class CudaArray:
    """`base`: a 1-D Numba device array (a whole allocator segment, typed); `offset`,
    `strides` in elements; `owner`: the allocator Block every view of it shares (the block
    returns to the cache when the last view goes)."""
    __slots__ = ("_base", "_contiguous", "dtype", "offset", "owner", "shape", "strides")
    __array_ufunc__ = None  # numpy defers `ndarray * cuda_array` to our operators

    def __init__(self, base, offset, shape, strides, owner):
        self._base, self.offset, self.owner = base, offset, owner
        self.dtype, self._contiguous = base.dtype, None  # (host time: read on every op)
        self.shape, self.strides = tuple(shape), tuple(strides)

    @property
    def base(self):
        """The device buffer, to read: deferred launches writing this memory run first
        (ops/cuda/deferred.py). Code that writes into an existing array calls
        `before_write()` first."""
        if self.owner.pending > 1:
            _flush()
        return self._base

    def before_write(self):
        """Runs the deferred launches if any of them reads or writes this memory."""
        if self.owner.pending:
            _flush()

    # ---- attributes ----------------------------------------------------------------------
    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def device(self):
        return DEVICE

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    @property
    def T(self):
        return self.view(self.shape[::-1], self.strides[::-1])

    @property
    def mT(self):
        axes = tuple(range(self.ndim - 2)) + (self.ndim - 1, self.ndim - 2)
        return _ns().permute_dims(self, axes)

    def view(self, shape, strides, offset=None):
        return CudaArray(self._base, self.offset if offset is None else offset, shape, strides,
                         self.owner)

    def is_contiguous(self):
        if self._contiguous is None:
            self._contiguous = all(s == c for n, s, c in zip(self.shape, self.strides,
                                                              c_strides(self.shape)) if n != 1)
        return self._contiguous

    def dev(self):
        """The data as a C-contiguous Numba device array of this shape (a view: the array
        must be contiguous; see ops.cuda.namespace.contiguous)."""
        if not self.is_contiguous():
            raise ValueError("CudaArray.dev: not C-contiguous; call contiguous() first")
        flat = self.flat()
        if self.ndim == 1:
            return flat
        shaped = flat.reshape(self.shape)
        shaped.block = self.owner
        return shaped

    def strided(self):
        """The view as a Numba device array of its own shape and strides (any layout, no
        copy), for kernels that index a view in place (attention reads q, k, v as strided
        views of the fused projection)."""
        item = self.dtype.itemsize
        shape, strides = self.shape, tuple(s * item for s in self.strides)
        if launch.SIMULATOR:
            from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
            start = self.base._ary[self.offset:]
            out = FakeCUDAArray(np.lib.stride_tricks.as_strided(start, shape, strides))
        else:
            from numba.cuda.cudadrv.devicearray import DeviceNDArray
            out = DeviceNDArray(shape, strides, self.dtype,
                                gpu_data=self.base.gpu_data.view(self.offset * item))
        out.block = self.owner
        return out

    def flat(self):
        """The elements offset .. offset + size of the buffer, as a 1-D device array (the
        data itself when the array is C-contiguous). It holds the allocator block, so the
        memory stays ours while the kernel arguments live, even if this array goes."""
        flat = self.base[self.offset:self.offset + self.size]
        flat.block = self.owner
        return flat

    def __array_namespace__(self, api_version=None):
        return _ns()

    # ---- host transfers and scalar reads --------------------------------------------------
    def get(self):
        """A numpy copy (ops.to_host counts it; engine code calls that, not this)."""
        a = _ns().contiguous(self)
        if a.size == 0:
            return np.zeros(a.shape, a.dtype)
        return a.dev().copy_to_host().reshape(a.shape)

    def _scalar(self, what):
        if self.size != 1:
            raise TypeError(f"{what}() of a cuda array needs exactly one element, "
                            f"got shape {self.shape}")
        count_scalar_read(self.dtype.itemsize)
        return self.get().reshape(())[()]

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __bool__(self):
        return bool(self._scalar("bool"))

    def __index__(self):
        return int(self._scalar("index"))

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d cuda array")
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a cuda array is not converted to numpy implicitly; use ops.to_host "
                        "(or Tensor.numpy()), which counts the copy")

    def __repr__(self):
        return f"CudaArray(shape={self.shape}, dtype={self.dtype})"

    # ---- indexing --------------------------------------------------------------------------
    def __getitem__(self, key):
        return _ns().getitem(self, key)

    def __setitem__(self, key, value):
        _ns().setitem(self, key, value)

    # ---- operators: the namespace's elementwise functions --------------------------------
    def __neg__(self):
        return _ns().negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ns().abs(self)

    def __invert__(self):
        return _ns().logical_not(self) if self.dtype == np.bool_ else _ns().bitwise_invert(self)


_BINARY = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide",
           "floordiv": "floor_divide", "mod": "remainder", "pow": "pow",
           "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",
           "matmul": "matmul"}
_COMPARE = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
            "gt": "greater", "ge": "greater_equal"}


def _forward(fname):
    return lambda self, other: getattr(_ns(), fname)(self, other)


def _reflected(fname):
    return lambda self, other: getattr(_ns(), fname)(other, self)


def _inplace(fname):
    def op(self, other):
        inplace(fname, self, other)
        return self
    return op


def inplace(op, x, other):
    """x op= other: one launch writing into x when x is C-contiguous, keeps its dtype and
    shape, and other is not a view of x's memory (numpy would buffer an overlap); else the
    result is computed apart and assigned."""
    ns = _ns()
    compute = ns.result_type(x, other)
    b = ns._operand(other, compute) if compute == x.dtype else None
    if b is None or op not in ew.BINARY or op in ew.COMPARISONS or not x.is_contiguous() \
            or b.owner is x.owner or ns._broadcast(op, x, b) != x.shape \
            or (op == "divide" and compute.kind in "iub"):
        ns.setitem(x, (Ellipsis,), getattr(ns, op)(x, other))
        return
    if x.size:
        x.before_write()
        shape, nd, views = ew.plan(x.shape, [x, b])
        [(ab, ao, ast), (bb, bo, bst)] = views
        kernel = ew.binary_kernel(op, compute.name, *ew.modes(nd, views))
        kernel[ew.launch_grid(x.size)](x.flat(), ab, ao, ast, bb, bo, bst, shape, nd, x.size)


# The operator table, written out once (grep: CudaArray.__add__ is built here).
for _op, _fname in _BINARY.items():
    setattr(CudaArray, f"__{_op}__", _forward(_fname))
    setattr(CudaArray, f"__r{_op}__", _reflected(_fname))
    setattr(CudaArray, f"__i{_op}__", _inplace(_fname))
for _op, _fname in _COMPARE.items():
    setattr(CudaArray, f"__{_op}__", _forward(_fname))
CudaArray.__hash__ = None


_BOUND = {}


def _flush():
    deferred.flush()


def bind_namespace(module):
    """Called once by ops/cuda/namespace.py: the module whose functions the operators call
    (bound at run time, as the namespace itself imports this module)."""
    _BOUND["ns"] = module


def _ns():
    return _BOUND["ns"]


namespace = _ns


def check_arrays(op, *arrays):
    """One line naming `op` when any argument of a cuda kernel is not a CudaArray."""
    for a in arrays:
        if not isinstance(a, CudaArray):
            raise TypeError(f"{op}: expects cuda arrays, got {type(a).__name__}")


def scalar(dtype, value):
    """value as a numpy scalar of dtype (a kernel argument typed like the arrays)."""
    return np.dtype(dtype).type(value)
