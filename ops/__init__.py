"""Kernels on arrays, one family per module, dispatched through `ops.registry`."""

# Importing a family module runs its register(...) calls; memory tunes malloc (see there).
from ops import (  # noqa: F401
    attention,
    elementwise,
    embedding,
    layernorm,
    loss,
    matmul,
    memory,
    optim,
    softmax,
)
from ops.registry import get_backend, implementations, kernel, names, set_backend, use_backend

__all__ = ["get_backend", "implementations", "kernel", "names", "set_backend", "use_backend"]
