"""The kernel registry: maps (kernel name, implementation) to a function on arrays.

Implementations are "reference" (the ground truth, written in the array API standard where the
standard allows, so it runs on any device), "cpu" (numba.njit), "cuda" and "strict" (the
test-only array-api-strict device's forms of what the standard lacks). A device lists the
implementations it tries (ops.devices); `ops.kernel(name, device)` returns the first found.
Which one a CPU tensor uses is the *backend*: "numba" (default) picks the "cpu" form when
one is registered and falls back to "reference"; "numpy" always picks "reference".
Set it per process with ENGINE_BACKEND=numpy|numba, or per block with `use_backend`.
"""

import contextlib
import os
import threading

BACKENDS = ("numba", "numpy")
IMPLEMENTATIONS = ("reference", "cpu", "cuda", "strict")

_KERNELS: dict[tuple[str, str], object] = {}
_FOUND: dict[tuple[str, tuple], object] = {}  # (name, impls) -> fn; a lookup is on every op
_state = threading.local()


def register(name, impl, fn):
    """Register `fn` as implementation `impl` (one of IMPLEMENTATIONS) of kernel `name`."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"register({name!r}): unknown implementation {impl!r}, "
                         f"expected one of {IMPLEMENTATIONS}")
    _KERNELS[(name, impl)] = fn
    _FOUND.clear()
    return fn


def _default_backend():
    value = os.environ.get("ENGINE_BACKEND", "numba").strip().lower()
    if value not in BACKENDS:
        raise ValueError(f"ENGINE_BACKEND={value!r} is not a backend; use one of {BACKENDS}")
    return value


def get_backend():
    """The CPU backend in force in this thread: "numba" or "numpy"."""
    backend = getattr(_state, "backend", None)
    if backend is None:
        backend = _state.backend = _default_backend()
    return backend


def set_backend(backend):
    """Set the CPU backend for this thread (and, first thing in a process, for the process)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {BACKENDS}")
    _state.backend = backend


@contextlib.contextmanager
def use_backend(backend):
    """`with use_backend("numpy"):` runs the block on the given CPU backend."""
    previous = get_backend()
    set_backend(backend)
    try:
        yield
    finally:
        set_backend(previous)


def lookup(name, impls, device_name):
    """The first of `impls` registered for kernel `name` (used by ops.kernel)."""
    fn = _FOUND.get((name, impls))
    if fn is not None:
        return fn
    for impl in impls:
        fn = _KERNELS.get((name, impl))
        if fn is not None:
            _FOUND[(name, impls)] = fn
            return fn
    if any(n == name for n, _ in _KERNELS):
        raise LookupError(f"kernel {name!r} has no implementation for device {device_name!r} "
                          f"(it tries {', '.join(impls)})")
    known = sorted({n for n, _ in _KERNELS})
    raise LookupError(f"no kernel named {name!r}; known kernels: {', '.join(known)}")


def implementations(name):
    """The implementations registered for `name`, e.g. ["reference", "cpu"]."""
    return [impl for impl in IMPLEMENTATIONS if (name, impl) in _KERNELS]


def names():
    """Every registered kernel name, sorted."""
    return sorted({n for n, _ in _KERNELS})
