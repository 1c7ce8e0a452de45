"""Registers the "cuda" device: Numba device arrays (ops/cuda/cudaarray.py), its array namespace
(ops/cuda/namespace.py) and a numba.cuda.jit form of every kernel on the contract list.

Imported by ops.devices on the first `get_device("cuda")`: importing the engine or ops never
imports numba.cuda (start-up time, and the simulator can only be chosen before that import).
With NUMBA_ENABLE_CUDASIM=1 set before numba is first imported, the same kernels run on
Numba's CUDA simulator; with neither a GPU nor the simulator, loading raises DeviceError.
"""

import numpy as np
from numba import cuda

from ops.devices import Device, DeviceError, register_device


def _available():
    try:
        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001  (a broken driver or toolkit: reported as missing)
        return False


if not _available():
    raise DeviceError("device 'cuda' is not available: no CUDA GPU or driver found; with an "
                      "NVIDIA GPU run pip install -e \".[cuda]\", or set NUMBA_ENABLE_CUDASIM=1 "
                      "before starting Python to run the kernels on Numba's CUDA simulator")

from ops.cuda import namespace
from ops.cuda.cudaarray import CudaArray, empty


def _from_host(a):
    """A copy of host array a in a block of the caching allocator (no driver allocation
    once the cache holds a block of its size)."""
    a = np.asarray(a)
    out = empty(a.shape, a.dtype)
    if a.size:
        out.flat().copy_to_device(np.ascontiguousarray(a.reshape(-1)))
    return out


def _to_host(a):
    return a.get()


CUDA = register_device(Device("cuda", xp=namespace, owns=lambda a: isinstance(a, CudaArray),
                              from_host=_from_host, to_host=_to_host, impls=("cuda", "reference")))

from ops.cuda import (  # noqa: F401  (their register(...) calls)
    arrays,
    attention,
    elementwise,
    embedding,
    layernorm,
    loss,
    matmul,
    optim,
    softmax,
)
