"""Kernels on arrays, one family per module, dispatched through `ops.registry`."""

# Importing a family module runs its register(...) calls.
from ops import attention, elementwise, embedding, layernorm, loss, matmul, optim, softmax  # noqa: F401
from ops.registry import get_backend, implementations, kernel, names, set_backend, use_backend

__all__ = ["get_backend", "implementations", "kernel", "names", "set_backend", "use_backend"]
