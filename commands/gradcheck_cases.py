"""A table of gradient checks: every differentiable op and the reusable layers, each on small
float64 inputs, for `attn gradcheck` and the test suite (which runs every case on every
backend and device). It lives beside the command because nothing in the engine uses it.

A Case builds its function and inputs on a device from a seeded generator; `check(case,
device)` runs engine.gradcheck on it. Inputs are standard normals, or kept positive (log,
sqrt, a divisor) or away from 0 (relu's kink), so the finite differences are valid. Place
makes those inputs; the tests build theirs with it too.
"""

from dataclasses import dataclass

import numpy as np

import engine.functional as F
import ops
from engine import GradcheckError, Tensor, gradcheck, nn


@dataclass(frozen=True)
class Case:
    """One check: `op` groups cases in the table, `label` says the shapes, `make(new)`
    returns (fn, inputs) where new(*shape, kind="normal"|"positive"|"nonzero") makes a leaf
    and new.const(array) a constant on the device."""

    op: str
    label: str
    make: object
    layer: bool = False


class Place:
    """Where a check's tensors live: `leaf` makes a trainable tensor there, `const` a constant
    (indices, targets, masks), `host` copies an array back for numpy comparisons; `rand` and
    calling the place draw float64 leaves (the call from the place's own generator)."""

    def __init__(self, device="cpu", rng=None):
        self.device, self.rng = device, rng

    def leaf(self, array):
        return Tensor(array, device=self.device).requires_grad_()

    def const(self, array):
        return Tensor(array, device=self.device)

    @staticmethod
    def host(array):
        return ops.to_host(array.data if isinstance(array, Tensor) else array)

    def rand(self, rng, *shape, positive=False, away_from_zero=False):
        """A leaf of standard normals from `rng`; optionally positive (>= 0.5), or at least 0.1
        away from 0 (kinks stay far from the finite-difference step)."""
        x = rng.standard_normal(shape)
        if positive:
            x = np.abs(x) + 0.5
        elif away_from_zero:
            x = np.sign(x) * (np.abs(x) + 0.1)
        return self.leaf(x)

    def __call__(self, *shape, kind="normal"):
        """A leaf from the place's generator: kind "normal", "positive" or "nonzero"."""
        return self.rand(self.rng, *shape, positive=kind == "positive",
                         away_from_zero=kind == "nonzero")

    def module(self, m):
        """A float64 layer moved to the device, its parameters as gradcheck inputs."""
        return m.to(self.device), list(m.parameters())


CASES = []


def case(op, label, layer=False):
    def register(make):
        CASES.append(Case(op, label, make, layer))
        return make
    return register


def _elementwise():
    pairs = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (2, 3))]
    binary = {"add": F.add, "sub": F.sub, "mul": F.mul, "div": F.div,
              "maximum": F.maximum, "minimum": F.minimum}
    for name, fn in binary.items():
        for sa, sb in pairs:
            kind = "positive" if name == "div" else "normal"
            case(name, f"{sa} {sb}")(lambda new, fn=fn, sa=sa, sb=sb, kind=kind:
                                      (fn, [new(*sa), new(*sb, kind=kind)]))
    unary = {"neg": (F.neg, "normal"), "exp": (F.exp, "normal"), "log": (F.log, "positive"),
             "sqrt": (F.sqrt, "positive"), "tanh": (F.tanh, "normal"),
             "relu": (F.relu, "nonzero"), "sigmoid": (F.sigmoid, "normal"),
             "gelu": (F.gelu, "normal"), "silu": (F.silu, "normal"),
             "softplus": (F.softplus, "normal"), "abs": (F.abs, "nonzero"),
             "sin": (F.sin, "normal"), "cos": (F.cos, "normal"), "erf": (F.erf, "normal"),
             "rsqrt": (F.rsqrt, "positive"), "log1p": (F.log1p, "positive")}
    for name, (fn, kind) in unary.items():
        case(name, "(2, 3)")(lambda new, fn=fn, kind=kind: (fn, [new(2, 3, kind=kind)]))
    for p in (2, 3, -1, 0.5):
        case("pow", f"x ** {p}")(lambda new, p=p: (lambda a: a ** p, [new(2, 3, kind="positive")]))


def _reductions_and_shapes():
    for name in ("sum", "mean", "max", "min", "logsumexp", "var", "std", "prod"):
        fn = getattr(F, name)
        for axis in (None, 1, (0, 2)):
            case(name, f"(2, 3, 4) axis={axis}")(lambda new, fn=fn, axis=axis: (
                lambda a: fn(a, axis=axis), [new(2, 3, 4)]))
    case("cumsum", "(3, 4) axis=1")(lambda new: (lambda a: F.cumsum(a, axis=1), [new(3, 4)]))
    case("reshape", "(2, 6) -> (3, 4)")(lambda new: (lambda a: a.reshape(3, 4), [new(2, 6)]))
    case("permute", "(2, 3, 4)")(lambda new: (lambda a: a.permute(2, 0, 1), [new(2, 3, 4)]))
    case("transpose", "(3, 2)")(lambda new: (lambda a: a.T, [new(3, 2)]))
    case("getitem", "slices")(lambda new: (lambda a: a[1:, ::2], [new(3, 4)]))
    case("getitem", "an index array with repeats")(lambda new: (
        lambda a: a[np.array([2, 0, 2])], [new(3, 4)]))
    case("concat", "axis=1")(lambda new: (lambda a, b: F.concat([a, b], axis=1),
                                          [new(2, 1), new(2, 3)]))
    case("split", "3 ways")(lambda new: (
        lambda a: F.concat([p * w for p, w in zip(F.split(a, 3, axis=1), (1.0, -2.0, 0.5))],
                           axis=1), [new(2, 6)]))
    case("where", "broadcast")(lambda new: (
        lambda a, b: F.where(new.const(np.array([[True, False, True]])), a, b),
        [new(2, 3), new(2, 1)]))
    case("masked_fill", "(2, 3)")(lambda new: (
        lambda a: F.masked_fill(a, new.const(np.array([True, False, False])), -2.0),
        [new(2, 3)]))


def _layers_ops():
    case("matmul", "(3, 4) @ (4, 2)")(lambda new: (F.matmul, [new(3, 4), new(4, 2)]))
    case("matmul", "batched (2, 3, 4) @ (4, 5)")(lambda new: (F.matmul, [new(2, 3, 4), new(4, 5)]))
    case("linear", "(2, 3, 3) W (2, 3) b (2,)")(lambda new: (
        F.linear, [new(2, 3, 3), new(2, 3), new(2)]))
    for name in ("softmax", "log_softmax"):
        fn = getattr(F, name)
        case(name, "(3, 5) axis=-1")(lambda new, fn=fn: (fn, [new(3, 5)]))
        case(name, "(2, 3, 4) axis=1")(lambda new, fn=fn: (lambda a: fn(a, axis=1),
                                                           [new(2, 3, 4)]))
    case("cross_entropy", "(3, 5), one ignored")(lambda new: (
        lambda z: F.cross_entropy(z, new.const(np.array([0, -100, 2]))), [new(3, 5)]))
    case("layer_norm", "(2, 3, 5)")(lambda new: (F.layer_norm, [new(2, 3, 5), new(5), new(5)]))
    case("embedding", "idx (2, 2) W (4, 3)")(lambda new: (
        lambda w: F.embedding(new.const(np.array([[2, 2], [0, 3]])), w), [new(4, 3)]))
    case("dropout", "p=0.4, fixed mask")(lambda new: (
        lambda a: F.dropout(a, 0.4, generator=np.random.default_rng(5)), [new(4, 5)]))
    for causal in (False, True):
        case("attention", f"q (1, 2, 3, 4) k, v (1, 2, 5, .) causal={causal}")(
            lambda new, causal=causal: (
                lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=causal),
                [new(1, 2, 3, 4), new(1, 2, 5, 4), new(1, 2, 5, 3)]))
    case("attention_weights", "causal")(lambda new: (
        lambda q, k: F.attention_weights(q, k, causal=True), [new(1, 1, 3, 2), new(1, 1, 3, 2)]))


def _layers():
    f64 = {"dtype": np.float64}
    layers = {
        "Linear": (lambda: nn.Linear(3, 2, rng=0, **f64), (2, 3)),
        "LayerNorm": (lambda: nn.LayerNorm(4, **f64), (2, 4)),
        "MLP": (lambda: nn.MLP(4, rng=0, **f64), (1, 2, 4)),
        "MultiHeadAttention": (lambda: nn.MultiHeadAttention(4, 2, rng=0, **f64), (1, 3, 4)),
        "TransformerBlock": (lambda: nn.TransformerBlock(4, 2, rng=0, **f64), (1, 3, 4)),
        "GRUCell": (lambda: nn.GRUCell(3, 2, rng=0, **f64), (2, 3)),
        "GRU": (lambda: nn.GRU(2, 2, bidirectional=True, rng=0, **f64), (1, 3, 2)),
    }
    for name, (build, shape) in layers.items():
        case(name, f"x {shape} and every parameter", layer=True)(
            lambda new, build=build, shape=shape: _layer_case(new, build(), shape))
    case("AdditiveAttention", "query (2, 3), keys (2, 4, 2)", layer=True)(
        lambda new: _additive(new, nn.AdditiveAttention(3, 2, 4, rng=0, **f64)))


def _layer_case(new, module, shape):
    module, params = new.module(module)
    out = (lambda x, *ps: _first(module(x)))
    return out, [new(*shape), *params]


def _additive(new, module):
    module, params = new.module(module)
    return (lambda q, k, *ps: _first(module(q, k))), [new(2, 3), new(2, 4, 2), *params]


def _first(out):
    return out[0] if isinstance(out, tuple) else out


_elementwise()
_reductions_and_shapes()
_layers_ops()
_layers()


def op_names():
    """The names of the ops and layers in CASES, in table order."""
    return list(dict.fromkeys(c.op for c in CASES))


def check(c, device="cpu", seed=0):
    """Run one case: (worst relative error over its inputs, None) or (None, the error): a
    gradient that disagrees, or the op failing outright on this backend or device."""
    try:
        fn, inputs = c.make(Place(device, np.random.default_rng(seed)))
        report = gradcheck(fn, *inputs)
    except GradcheckError as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001  (an op broken on this device is a failed check)
        return None, f"{type(e).__name__}: {e}"
    return max(report.max_rel_error, default=0.0), None
