"""Comparisons, logic and predicates (isnan, isinf, isfinite): bool results, no gradient; the
Function with its public functions (any and all, which reduce, are in reduce.py)."""

import ops
from engine.autograd import Function
from engine.functions.args import broadcast_shape

# public name -> the array API function computing it
_BINARY = {"equal": "equal", "not_equal": "not_equal", "less": "less",
           "less_equal": "less_equal", "greater": "greater", "greater_equal": "greater_equal",
           "logical_and": "logical_and", "logical_or": "logical_or",
           "logical_xor": "logical_xor"}
_UNARY = {"logical_not": "logical_not", "isnan": "isnan", "isinf": "isinf",
          "isfinite": "isfinite"}
_LOGICAL = {"logical_and", "logical_or", "logical_xor", "logical_not"}


class Predicate(Function):
    """An elementwise test (a comparison, logic, isnan, ...): bool out, no gradient."""

    name, formula, differentiable = "predicate", "no gradient (bool result)", False

    @staticmethod
    def forward(ctx, *arrays, op):
        xp = ops.array_namespace(arrays[0])
        if len(arrays) == 2:
            broadcast_shape(op, *arrays)
        if op in _LOGICAL:  # numpy's logical_* take any dtype: nonzero is true
            arrays = [a if a.dtype == xp.bool else a != 0 for a in arrays]
        elif len(arrays) == 2 and (arrays[0].dtype == xp.bool) != (arrays[1].dtype == xp.bool):
            other = arrays[1].dtype if arrays[0].dtype == xp.bool else arrays[0].dtype
            arrays = [xp.astype(a, other) for a in arrays]  # bool vs number: as numpy
        return getattr(xp, (_BINARY | _UNARY)[op])(*arrays)


def _binary(op):
    def compare(a, b):
        return Predicate.apply(a, b, op=op)
    compare.__name__ = compare.__qualname__ = op
    compare.__doc__ = f"Elementwise {op} of a and b (broadcasting): a bool tensor, no gradient."
    return compare


def _unary(op):
    def test(a):
        return Predicate.apply(a, op=op)
    test.__name__ = test.__qualname__ = op
    test.__doc__ = f"Elementwise {op} of a: a bool tensor, no gradient."
    return test


equal, not_equal, less, less_equal = map(_binary, ["equal", "not_equal", "less", "less_equal"])
greater, greater_equal = _binary("greater"), _binary("greater_equal")
logical_and, logical_or, logical_xor = map(_binary, ["logical_and", "logical_or", "logical_xor"])
logical_not, isnan, isinf, isfinite = map(_unary, ["logical_not", "isnan", "isinf", "isfinite"])
eq, ne, lt, le, gt, ge = equal, not_equal, less, less_equal, greater, greater_equal  # PyTorch
