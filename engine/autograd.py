"""Reverse-mode autodiff: Function (forward and backward side by side), the graph walk, modes.

autograd knows the Tensor class only through `bind_tensor`, called once by engine.tensor when it
is defined: Functions make Tensors, Tensor methods call Functions, and the binding keeps the
module graph free of cycles (tensor -> tensor_methods -> functional -> functions ->
autograd).
"""

import contextlib
import threading

import ops

_mode = threading.local()
_tensor = {}  # "class" -> Tensor, "operands" -> as_operands; filled by bind_tensor


def bind_tensor(tensor_class, as_operands):
    """Tell autograd which class its outputs are and how inputs become operands."""
    _tensor["class"], _tensor["operands"] = tensor_class, as_operands


def is_tensor(x):
    return isinstance(x, _tensor["class"])


def make_tensor(data, requires_grad=False):
    """Wrap an array an op produced (no conversion, no copy)."""
    return _tensor["class"]._make(data, requires_grad)


def is_grad_enabled():
    return getattr(_mode, "grad", True)


def is_anomaly_enabled():
    return getattr(_mode, "anomaly", False)


@contextlib.contextmanager
def _set_mode(name, value):
    previous = getattr(_mode, name, name == "grad")
    setattr(_mode, name, value)
    try:
        yield
    finally:
        setattr(_mode, name, previous)


def no_grad():
    """`with no_grad():` builds no graph: results have requires_grad False."""
    return _set_mode("grad", False)


def enable_grad():
    """`with enable_grad():` turns graph building back on inside a no_grad block."""
    return _set_mode("grad", True)


def detect_anomaly():
    """`with detect_anomaly():` checks every forward and backward result and raises an
    AnomalyError naming the first op that turned finite inputs into NaN or inf."""
    return _set_mode("anomaly", True)


class AnomalyError(FloatingPointError):
    """An op produced a non-finite value from finite inputs (raised under detect_anomaly)."""

    def __init__(self, message, op):
        super().__init__(message)
        self.op = op


class Context:
    """What a Function's forward leaves for its backward: saved arrays and plain attributes."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.saved = ()
        self.freed = False

    def save_for_backward(self, *arrays):
        self.saved = arrays

    def free(self):
        self.saved = ()
        self.__dict__ = {"needs_input_grad": self.needs_input_grad, "saved": (), "freed": True}


class Function:
    """One differentiable primitive. Subclasses define

        name     : str, the op's name in the graph view
        formula  : str, its derivative in one line (shown by engine.graph)
        floating : True when the result is a float function of its inputs (div, exp, mean,
                   ...): integer inputs are promoted to float32 first (engine.tensor's rule)
        differentiable : False for ops with no gradient (comparisons, argmax, floor):
                   their results never require grad
        forward(ctx, *arrays, **params) -> array
        backward(ctx, grad) -> one gradient (array or None) per array input

    and are called through `apply(*inputs, **params)`, which takes Tensors, numpy arrays and
    Python scalars, runs forward on arrays and records the node when a gradient is needed.
    forward and backward see arrays of the inputs' device: they do array math through that
    device's namespace (`xp = ops.array_namespace(a)`) and `ops.kernel(name, device)`.
    """

    name = "function"
    formula = ""
    floating = False
    differentiable = True

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError("each Function subclass defines forward")

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("each Function subclass defines backward")

    @classmethod
    def apply(cls, *inputs, **params):
        tensors = _tensor["operands"](cls.name, inputs, cls.floating)
        needs = tuple(t.requires_grad and cls.differentiable for t in tensors)
        track = is_grad_enabled() and any(needs)
        ctx = Context(needs)
        data = cls.forward(ctx, *[t.data for t in tensors], **params)
        out = make_tensor(data, requires_grad=track)
        if track:
            out._ctx, out._op, out._prev = ctx, cls, tensors
        else:
            ctx.free()
        if is_anomaly_enabled():
            _check_forward(cls, tensors, data)
        return out


def _finite(array):
    if array is None:
        return True
    xp = ops.array_namespace(array)
    return not xp.isdtype(array.dtype, "real floating") or bool(xp.all(xp.isfinite(array)))


def _shapes(tensors):
    return ", ".join(str(tuple(t.shape)) for t in tensors)


def _check_forward(op, tensors, data):
    if not _finite(data) and all(_finite(t.data) for t in tensors):
        raise AnomalyError(f"detect_anomaly: forward of {op.name} produced a non-finite value "
                           f"from finite inputs of shapes {_shapes(tensors)}", op.name)


def _check_backward(op, tensors, grad, grads):
    if _finite(grad) and not all(_finite(g) for g in grads):
        raise AnomalyError(f"detect_anomaly: backward of {op.name} produced a non-finite "
                           f"gradient from a finite one; inputs {_shapes(tensors)}", op.name)


def topological_order(root):
    """Nodes reachable from `root`, every node after all the nodes it depends on.
    Iterative (a 100,000-op chain is fine) and deterministic (parents in argument order)."""
    order, visited = [], {id(root)}
    stack = [(root, iter(root._prev))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if id(parent) not in visited and parent._prev:
                visited.add(id(parent))
                stack.append((parent, iter(parent._prev)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def backward(root, grad, retain_graph=False):
    """Accumulate d(root)/d(leaf) * grad into every leaf's .grad that requires it."""
    grads = {id(root): grad}
    order = topological_order(root) if root._prev else []
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        ctx = node._ctx
        if ctx.freed:
            raise RuntimeError(
                f"backward through a graph whose buffers were freed (op {node._op.name}): "
                "call backward(retain_graph=True) the first time to backpropagate twice")
        input_grads = node._op.backward(ctx, g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if is_anomaly_enabled():
            _check_backward(node._op, node._prev, g, input_grads)
        for parent, pg in zip(node._prev, input_grads):
            if pg is None or not parent.requires_grad:
                continue
            if parent._prev:
                key = id(parent)
                grads[key] = grads[key] + pg if key in grads else pg
            else:
                parent._accumulate(pg)
        if not retain_graph:
            ctx.free()
    if not root._prev:
        root._accumulate(grad)
