"""Devices: where arrays live. A device is its array type, its array namespace (the subset of
the Python array API standard the engine uses) and its kernels (registered in ops.registry
under the device's implementation names). "cpu" is numpy itself; other devices register
themselves from their own module, imported on first use (so importing ops never imports
numba.cuda or array_api_strict).

Every copy between the host and a device goes through `to_device`, which counts it: calls
and bytes each way (`transfer_stats()`), so tests and benchmarks can see what a step moves.
"""

import importlib
import threading

import numpy as np

from ops.registry import get_backend, lookup


class DeviceError(ValueError):
    """A device that does not exist or cannot be used here, or arrays of two devices mixed."""


# On "cpu" the backend picks the implementations: numba's kernels, else the reference.
_CPU_IMPLS = {"numba": ("cpu", "reference"), "numpy": ("reference",)}
DTYPE_NAMES = ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")


class Device:
    """One device.

    name            "cpu", "cuda", "strict", ...
    xp              its array namespace (array API standard: xp.exp, xp.sum, xp.where, ...)
    owns(a)         True when `a` is an array of this device
    from_host(a)    a numpy array copied onto the device
    to_host(a)      a device array copied into a new numpy array
    impls           kernel implementation names tried in order, e.g. ("cuda",); "cpu" picks
                    them from the CPU backend instead (see `implementations`)
    """

    def __init__(self, name, xp, owns, from_host, to_host, impls=()):
        self.name, self.xp = name, xp
        self.owns, self.from_host, self.to_host = owns, from_host, to_host
        self.impls = tuple(impls)
        self._array_device = None

    @property
    def array_device(self):
        """The namespace's own device object, for creation functions: `xp.zeros(shape,
        dtype=..., device=device.array_device)`."""
        if self._array_device is None:
            self._array_device = self.from_host(np.zeros(0)).device
        return self._array_device

    def implementations(self, backend=None):
        """The kernel implementations this device tries, in order."""
        return _CPU_IMPLS[backend or get_backend()] if self.name == "cpu" else self.impls

    def dtype(self, name):
        """The device's dtype called `name` ("float32", "int64", "bool", ...)."""
        return getattr(self.xp, name)

    def dtype_name(self, dtype):
        """The standard name of one of this device's dtypes ("float32", ...)."""
        for name in DTYPE_NAMES:
            if dtype == getattr(self.xp, name, None):
                return name
        raise TypeError(f"device {self.name!r}: unsupported dtype {dtype}")

    def __repr__(self):
        return f"Device({self.name!r})"


def _is_numpy(a):
    return type(a) is np.ndarray or isinstance(a, np.ndarray | np.generic)


CPU = Device("cpu", np, _is_numpy, lambda a: np.asarray(a), lambda a: np.asarray(a))

_DEVICES: dict[str, Device] = {"cpu": CPU}
# Devices whose module registers them when first asked for: name -> module.
_LAZY = {"strict": "ops.strict", "cuda": "ops.cuda.device"}
# The modules (and packages) of those devices: optional or test-only, so nothing imports them
# unless that device is asked for (array-api-strict, numba.cuda may be absent).
OPTIONAL_MODULES = ("ops.strict", "ops.cuda")
_MISSING: dict[str, str] = {}  # devices named but not built: name -> the one-line error
_load_lock = threading.Lock()
# [calls, bytes] each way; _scalar_reads: float(a) / int(a) / bool(a) of device arrays
_stats = {"to_device": [0, 0], "to_host": [0, 0]}
_scalar_reads = [0, 0]


def register_device(device):
    """Make `device` available under device.name (called by the device's own module)."""
    _DEVICES[device.name] = device
    return device


def get_device(device):
    """The Device called `device` (a name or a Device), loading its module on first use."""
    if isinstance(device, Device):
        return device
    found = _DEVICES.get(device)
    if found is not None:
        return found
    if not isinstance(device, str):
        raise TypeError(f"a device is a name such as 'cpu', got {type(device).__name__}")
    if device in _LAZY:
        with _load_lock:
            importlib.import_module(_LAZY[device])  # its register_device(...) call adds it
        return _DEVICES[device]
    if device in _MISSING:
        raise DeviceError(_MISSING[device])
    known = sorted(set(_DEVICES) | set(_LAZY))
    raise DeviceError(f"unknown device {device!r}; known devices: {', '.join(known)}")


def device_of(array):
    """The Device an array lives on (numpy arrays and scalars: "cpu")."""
    if _is_numpy(array):
        return CPU
    for device in _DEVICES.values():
        if device.owns(array):
            return device
    raise TypeError(f"no registered device holds arrays of type {type(array).__name__}")


def array_namespace(array):
    """The array API namespace of `array`'s device (numpy for CPU arrays)."""
    return np if _is_numpy(array) else device_of(array).xp


def kernel(name, device="cpu", backend=None):
    """The function implementing kernel `name` on `device` (a name or Device); on "cpu" the
    backend ("numba" or "numpy", default: the one in force) picks the implementation."""
    device = get_device(device)
    return lookup(name, device.implementations(backend), device.name)


def device_and_dtype(args, device=None, dtype=None):
    """Split the positional arguments of a PyTorch-style `.to(...)` into (device, dtype): a
    string that names a dtype ("float64") is a dtype, any other string or a Device a device,
    anything else (np.float64, a device's dtype object) a dtype."""
    for a in args:
        if isinstance(a, Device):
            device = a
        elif isinstance(a, str):
            try:
                np.dtype(a)
                dtype = a
            except TypeError:
                device = a
        else:
            dtype = a
    return device, dtype


def kernel_for(name, array, backend=None):
    """The kernel `name` for the device `array` lives on (called on every op: kept short)."""
    if type(array) is np.ndarray:
        return lookup(name, _CPU_IMPLS[backend or get_backend()], "cpu")
    device = device_of(array)
    return lookup(name, device.implementations(backend), device.name)


def dtype_name(dtype, device=CPU):
    """The standard name ("float32", ...) of a dtype given as a name, a numpy dtype or type,
    or a dtype object of `device`."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return get_device(device).dtype_name(dtype)


def to_device(array, device):
    """`array` (of any device) on `device`; the same object when it is there already.
    Device to device goes through the host. Each host<->device copy is counted."""
    target = get_device(device)
    source = device_of(array)
    if source is target:
        return array
    if source is not CPU:
        array = source.to_host(array)
        _count("to_host", array.nbytes)
    if target is CPU:
        return array
    _count("to_device", np.asarray(array).nbytes)
    return target.from_host(array)


def to_host(array):
    """`array` as a numpy array (a counted copy when it lives on another device)."""
    return to_device(array, CPU)


def _count(direction, nbytes):
    _stats[direction][0] += 1
    _stats[direction][1] += int(nbytes)


def count_scalar_read(nbytes):
    """Called by a device's `float(a)` / `int(a)` / `bool(a)`: a read that is not an array copy
    but still a device -> host sync."""
    _scalar_reads[0] += 1
    _scalar_reads[1] += int(nbytes)


def scalar_reads():
    """Scalar reads of device arrays so far (devices that count them: "cuda"), as
    {"calls", "bytes"}; reset with the transfers by reset_transfer_stats."""
    return {"calls": _scalar_reads[0], "bytes": _scalar_reads[1]}


def transfer_stats():
    """Host<->device copies so far: {"to_device": {"calls", "bytes"}, "to_host": {...}}."""
    return {k: {"calls": v[0], "bytes": v[1]} for k, v in _stats.items()}


def reset_transfer_stats():
    for v in (*_stats.values(), _scalar_reads):
        v[0] = v[1] = 0


def device_names():
    """Devices registered now or loadable on request."""
    return sorted(set(_DEVICES) | set(_LAZY))
