"""Kernels on arrays, one family per module, dispatched through `ops.registry`."""

# Importing a family module runs its register(...) calls; memory tunes malloc and blas
# limits BLAS threads (see there).
from ops import (  # noqa: F401
    arrays,
    attention,
    blas,
    elementwise,
    embedding,
    layernorm,
    loss,
    matmul,
    memory,
    optim,
    softmax,
)
from ops.devices import (
    CPU,
    Device,
    DeviceError,
    array_namespace,
    device_and_dtype,
    device_names,
    device_of,
    dtype_name,
    get_device,
    kernel,
    kernel_for,
    register_device,
    reset_transfer_stats,
    to_device,
    to_host,
    transfer_stats,
)
from ops.registry import get_backend, implementations, names, set_backend, use_backend

__all__ = ["CPU", "Device", "DeviceError", "array_namespace", "device_and_dtype", "device_names",
           "device_of",
           "dtype_name", "get_backend", "get_device", "implementations", "kernel", "kernel_for",
           "names", "register_device", "reset_transfer_stats", "set_backend", "to_device", "to_host",
           "transfer_stats", "use_backend"]
