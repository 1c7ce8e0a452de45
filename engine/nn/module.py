"""The `Module` base class (parameters, state dicts, train/eval, devices) and its containers."""

import contextlib
import numbers

import numpy as np

import engine.functional as F
import ops
from engine.autograd import no_grad
from engine.tensor import Tensor


def as_rng(rng):
    """An np.random.Generator from an int seed, a Generator, or None: the engine's default
    generator (reseeded by engine.manual_seed)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return F.default_generator()
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or np.random.Generator, got {type(rng)}")


def device_array(x, device):
    """A model input (a Tensor, a host array-like or a device array) as an array of `device`:
    host data is copied there explicitly (a counted transfer: the batch moving in)."""
    x = x.data if isinstance(x, Tensor) else x
    if isinstance(x, list | tuple | int):
        x = np.asarray(x)
    return ops.to_device(x, device)


def token_ids(model, what, x, device):
    """Token ids (B, T) as an int64 array of `device` (host input moves in); a ValueError
    naming `model` and `what` for anything but a 2-D integer array."""
    x = device_array(x, device)
    xp = device.xp
    if x.ndim != 2 or not xp.isdtype(x.dtype, "integral"):
        raise ValueError(f"{model}: {what} must be a 2-D integer array (B, T), got "
                         f"shape {tuple(x.shape)} dtype {device.dtype_name(x.dtype)}")
    return x if x.dtype == xp.int64 else xp.astype(x, xp.int64)


def new_parameter(array, dtype=np.float32):
    """A trainable Tensor (requires_grad=True) holding a C-contiguous copy of `array`."""
    return Tensor(np.ascontiguousarray(array, dtype=dtype), requires_grad=True)


class Module:
    """Base class of layers: holds parameters (Tensors with requires_grad) and sub-modules.

    Assigning a trainable Tensor or a Module to an attribute registers it, in assignment order,
    under that name; `named_parameters` walks own parameters first, then children, giving
    dotted names like PyTorch ("transformer.h.0.attn.c_attn.weight"). `__call__` runs
    `forward`.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning {name!r}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Tensor) and value.requires_grad:
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    # ---- walking the tree -------------------------------------------------------------------

    def named_modules(self, prefix=""):
        """Yield (dotted name, module) for this module ("" for itself) and every descendant."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def _named_tensors(self):
        """Every (dotted name, parameter), tied parameters listed under each of their names."""
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), p

    def named_parameters(self):
        """(dotted name, parameter) pairs; a tied parameter appears once, under its first name."""
        seen = set()
        out = []
        for name, p in self._named_tensors():
            if id(p) not in seen:
                seen.add(id(p))
                out.append((name, p))
        return out

    def parameters(self):
        """The distinct parameters (tied ones once), in registration order."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self):
        """Number of scalars in the distinct parameters (a tied matrix counts once)."""
        return int(sum(p.data.size for p in self.parameters()))

    # ---- modes, gradients, dtype --------------------------------------------------------------

    def train(self, mode=True):
        """Set training mode (dropout active) on this module and all descendants; returns self."""
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Set evaluation mode (dropout off); returns self."""
        return self.train(False)

    def zero_grad(self):
        """Drop the gradients of every parameter (grad becomes None)."""
        for p in self.parameters():
            p.grad = None

    def to(self, *args, dtype=None, device=None):
        """Move every parameter to a device and/or cast it to a float dtype, in place (the
        Tensors stay the same objects, so build the optimizer after moving); returns self.
        PyTorch habits: `to("strict")`, `to("cpu")`, `to(np.float64)`, `to("cpu", "float32")`.
        Gradients are dropped."""
        device, dtype = ops.device_and_dtype(args, device, dtype)
        target = None if device is None else ops.get_device(device)
        name = None if dtype is None else ops.dtype_name(dtype, self._device())
        if name not in (None, "float32", "float64"):
            raise ValueError(f"Module.to: dtype must be float32 or float64, got {name}")
        for p in self.parameters():
            data = p.data if target is None else ops.to_device(p.data, target)
            owner = ops.device_of(data)
            if name is not None and owner.dtype_name(data.dtype) != name:
                data = owner.xp.astype(data, owner.dtype(name))
            p.data = ops.kernel_for("contiguous", data)(data)
            p.grad = None
        return self

    def _device(self):
        """The device of the first parameter (models call this on every forward: no walk)."""
        for _, p in self._named_tensors():
            return ops.device_of(p.data)
        return ops.CPU

    @property
    def device(self):
        """The device of the parameters ("cpu" for a module without any)."""
        return self._device().name

    def double(self):
        return self.to("float64")

    def float(self):
        return self.to("float32")

    # ---- state dicts ----------------------------------------------------------------------------

    def state_dict(self):
        """{dotted name: numpy copy on the host}; a tied parameter is listed under each name
        (as PyTorch). Parameters on another device are copied to the host explicitly."""
        return {name: np.array(ops.to_host(p.data)) for name, p in self._named_tensors()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays from `state` into the parameters, in place (optimizers keep their refs).

        Raises KeyError naming missing and unexpected keys (only when `strict`), and ValueError
        naming every shape or dtype mismatch as (name, expected, got). Nothing is written unless
        every check passes. Returns (missing, unexpected) lists.
        """
        own = dict(self._named_tensors())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict({type(self).__name__}): missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        arrays = {k: np.asarray(state[k]) for k in own if k in state}
        device = self._device()
        dtypes = {k: device.dtype_name(p.data.dtype) for k, p in own.items()}
        bad = [f"{k}: expected shape {own[k].data.shape} {dtypes[k]}, "
               f"got shape {a.shape} {a.dtype}" for k, a in arrays.items()
               if a.shape != own[k].data.shape or a.dtype.name != dtypes[k]]
        if bad:
            raise ValueError("load_state_dict: mismatched tensors:\n  " + "\n  ".join(bad))
        _check_tied(own, arrays)
        for k, a in arrays.items():
            own[k].data[...] = ops.to_device(a, device)
        return missing, unexpected

    # ---- printing -------------------------------------------------------------------------------

    def extra_repr(self):
        """One-line description of a leaf's settings, e.g. "in=64, out=192, bias=True"."""
        return ""

    def __repr__(self):
        count = f"{self.num_parameters():,} params"
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})  # {count}"
        lines = [f"{type(self).__name__}({self.extra_repr()}  # {count}"]
        for name, child in self._modules.items():
            child_lines = repr(child).split("\n")
            lines.append(f"  ({name}): " + child_lines[0])
            lines.extend("  " + line for line in child_lines[1:])
        lines.append(")")
        return "\n".join(lines)


class ModuleList(Module):
    """A list of modules registered under "0", "1", ... (as `transformer.h.0`)."""

    def __init__(self, modules=()):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, i):
        return list(self._modules.values())[i]


class ModuleDict(Module):
    """Modules registered under given names, reachable as attributes or by key."""

    def __init__(self, modules):
        super().__init__()
        for name, m in modules.items():
            setattr(self, name, m)

    def __getitem__(self, name):
        return self._modules[name]

    def __contains__(self, name):
        return name in self._modules

    def keys(self):
        return self._modules.keys()



@contextlib.contextmanager
def eval_mode(model):
    """`with eval_mode(model):` runs without dropout and without recording a graph."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            yield
    finally:
        model.train(was_training)


def _check_tied(own, arrays):
    """ValueError when `arrays` gives one tied parameter (listed under several names in
    `own`) different values: loading would keep one and silently drop the other (an untied
    checkpoint loaded into a tied model)."""
    first = {}
    for name, p in own.items():
        if name not in arrays:
            continue
        a, b = arrays[first.get(id(p), name)], arrays[name]  # host arrays
        if a.shape != b.shape or not bool((a == b).all()):
            raise ValueError(f"load_state_dict: {first[id(p)]} and {name} are one tied "
                             f"parameter but the state gives them different values")
        first.setdefault(id(p), name)


def check_sizes(layer, **sizes):
    """ValueError naming the first of `sizes` (name=value) that is not a positive integer:
    a layer built with 0 or -8 heads or features fails here, not in a division later."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
