"""Kernels on arrays, one family per module, dispatched through `ops.registry`."""

# Importing a family module runs its register(...) calls and nothing else: process-wide
# tuning (threading layer, BLAS threads, malloc) is the explicit ops.runtime.configure().
from ops import (  # noqa: F401
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
           "names", "register_device", "reset_transfer_stats", "set_backend", "to_device",
           "to_host", "transfer_stats", "use_backend"]
