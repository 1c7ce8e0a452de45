"""Expressions as text -> engine calls, for the symbolic view (`attn graph EXPR`).

The text is parsed with the `ast` module and evaluated node by node over a whitelist: numbers,
the names of input tensors, the operators + - * / ** @ and unary -, calls of the engine
functions listed in FUNCTIONS (by bare name, with number, tuple or True/False/None
arguments), and tuples. Nothing else is evaluated: no `eval`, no attribute access, no
subscripts, no lambdas or comprehensions, no names but the inputs and FUNCTIONS; anything
else is an ExprError naming what was refused.

CLI code (commands/graph.py is its one caller), so it lives beside the commands; it uses only
the public engine API (engine.functional, Tensor).
"""

import ast
import math
import operator

import numpy as np

import engine.functional as F
from engine.tensor import Tensor

# The engine functions an expression may call, by name.
FUNCTIONS = {name: getattr(F, name) for name in (
    "abs", "add", "attention_weights", "cos", "div", "erf", "exp", "gelu", "layer_norm",
    "linear", "log", "log_softmax", "logsumexp", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mul", "neg", "pow", "relu", "reshape", "rsqrt", "scaled_dot_product_attention",
    "sigmoid", "silu", "sin", "softmax", "softplus", "sqrt", "std", "sub", "sum", "tanh",
    "transpose", "var")}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow, ast.MatMult: operator.matmul}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
MAX_LENGTH, MAX_NODES, MAX_ELEMENTS = 2000, 400, 10_000_000


class ExprError(ValueError):
    """An expression the symbolic view refuses: outside the whitelist, or malformed."""


def parse_shape(text):
    """"x=4,8" -> ("x", (4, 8)); an ExprError says what is wrong."""
    name, sep, dims = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or name.startswith("_"):
        raise ExprError(f"--shape wants NAME=D1,D2,... (e.g. x=4,8), got {text!r}")
    if name in FUNCTIONS:
        raise ExprError(f"--shape {name}: '{name}' is a function name; choose another")
    try:
        shape = tuple(int(d) for d in dims.split(",")) if dims.strip() else ()
    except ValueError:
        raise ExprError(f"--shape {name}: dimensions must be integers, got {dims!r}") from None
    if any(d < 1 for d in shape) or math.prod(shape) > MAX_ELEMENTS:
        raise ExprError(f"--shape {name}: dimensions must be >= 1 and at most "
                        f"{MAX_ELEMENTS:,} elements in all, got {shape}")
    return name, shape


def inputs_for(shapes, seed=0):
    """{name: a float32 Tensor of standard normals requiring grad} for {name: shape}."""
    rng = np.random.default_rng(seed)
    return {name: Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
            for name, shape in shapes.items()}


def evaluate(text, inputs):
    """The value of expression `text` with the tensors `inputs` ({name: Tensor}) bound."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"not a valid expression: {e.msg} (column {e.offset})") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ExprError(f"expression too large ({nodes} syntax nodes, at most {MAX_NODES})")
    return _Evaluator(inputs).visit(tree.body)


class _Evaluator:
    """Evaluates the whitelisted node types; every other node is refused."""

    def __init__(self, inputs):
        self.inputs = inputs

    def visit(self, node):
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"not allowed in an expression: {_describe(node)}")
        return method(node)

    def visit_Constant(self, node):
        if isinstance(node.value, bool | int | float) or node.value is None:
            return node.value
        raise ExprError(f"not allowed in an expression: the constant {node.value!r} (only "
                        f"numbers, True, False and None)")

    def visit_Name(self, node):
        if node.id in self.inputs:
            return self.inputs[node.id]
        if node.id in FUNCTIONS:
            raise ExprError(f"'{node.id}' is a function: call it, e.g. {node.id}(x)")
        given = ", ".join(sorted(self.inputs)) or "none"
        raise ExprError(f"unknown name '{node.id}': give it a shape with --shape "
                        f"{node.id}=4,8 (inputs so far: {given})")

    def visit_Tuple(self, node):
        return tuple(self.visit(e) for e in node.elts)

    def visit_UnaryOp(self, node):
        if type(node.op) not in _UNARY:
            raise ExprError(f"not allowed in an expression: {_describe(node)}")
        return _UNARY[type(node.op)](self.visit(node.operand))

    def visit_BinOp(self, node):
        if type(node.op) not in _BINARY:
            raise ExprError(f"not allowed in an expression: {_describe(node)}")
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Pow) and _is_number(left) and _is_number(right) and (
                abs(right) > 64 or abs(left) > 1e6):
            raise ExprError("a power of two numbers must stay small (|exponent| <= 64)")
        return _BINARY[type(node.op)](left, right)

    def visit_Call(self, node):
        if not isinstance(node.func, ast.Name):
            raise ExprError(f"not allowed in an expression: {_describe(node.func)} (call "
                            f"engine functions by bare name, e.g. tanh(x))")
        fn = FUNCTIONS.get(node.func.id)
        if fn is None:
            raise ExprError(f"unknown function '{node.func.id}'; allowed: "
                            f"{', '.join(sorted(FUNCTIONS))}")
        args = [self.visit(a) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise ExprError("not allowed in an expression: ** unpacking of arguments")
            kwargs[kw.arg] = self.visit(kw.value)
        return fn(*args, **kwargs)


def _is_number(x):
    return isinstance(x, int | float) and not isinstance(x, bool)


_NAMES = {ast.Attribute: "attribute access", ast.Lambda: "a lambda",
          ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
          ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
          ast.Subscript: "subscripts", ast.Starred: "* unpacking", ast.NamedExpr: ":=",
          ast.Compare: "comparisons", ast.BoolOp: "and/or", ast.IfExp: "if/else",
          ast.JoinedStr: "f-strings", ast.Await: "await", ast.List: "lists",
          ast.Dict: "dicts", ast.Set: "sets"}


def _describe(node):
    """What a refused node is, for the one-line error."""
    if isinstance(node, ast.Attribute):
        return f"attribute access (.{node.attr})"
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        return f"the operator {type(node.op).__name__}"
    return _NAMES.get(type(node), type(node).__name__)
