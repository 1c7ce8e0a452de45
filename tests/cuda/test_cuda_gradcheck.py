"""Gradchecks of the differentiable ops (tests/engine/test_gradcheck_ops.py) rerun with their
tensors on the cuda device: the namespace and kernels carry every Function's backward.
(Rerunning them found a view returned for a[i, j] and a race in the simulator's shared
arrays.) The simulator is slow (each finite difference is a forward pass), so one or two
cases per test, chosen for broadcasting and size-1 dimensions; every kernel's forms are
checked against the reference in test_cuda_kernels.py. Not rerun: the CPU-only tests
(backend switching, numba vs numpy), the MLP loss (test_cuda_gpt.py trains a GPT)."""

import pathlib
import sys

import numpy as np
import pytest

import engine.functional as F
from commands.gradcheck_cases import CASES, Place
from engine import Tensor

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "engine"))
import test_gradcheck_ops as g  # the same file pytest collects for the CPU and strict
from test_gradcheck_table import assert_case_passes, ids

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

GETITEM = [1, (slice(None), 0), (Ellipsis, slice(1, None, 2)), np.array([2, 0, 2, 2]),
           (np.array([0, 1, 1]), 2), (slice(None), None, np.array([[3, 3], [0, 1]]))]
CHECKS = [
    *[(g.test_binary_ops, {"op": op, "sa": sa, "sb": sb}) for op in sorted(g.BINARY)
      for sa, sb in (((3, 4), (4,)), ((2, 1, 4), (3, 1)))],
    (g.test_unary_ops, {"shape": (2, 1, 3)}),
    (g.test_pow, {"exponent": -1.5}),
    (g.test_pow_integer_exponent_of_negative_numbers, {}),
    (g.test_scalars_mixed_in, {}),
    (g.test_reductions, {"shape": (2, 3, 4), "axis": (0, 2), "keepdims": True}),
    (g.test_reductions, {"shape": (2, 3, 4), "axis": 1, "keepdims": False}),
    (g.test_reductions, {"shape": (), "axis": None, "keepdims": False}),
    (g.test_reshape_permute_transpose, {}),
    *[(g.test_getitem, {"index": index}) for index in GETITEM],
    (g.test_getitem_boolean_mask, {}),
    (g.test_concat_and_split, {"axis": 1, "shapes": [(2, 1), (2, 3), (2, 2)]}),
    (g.test_split, {"sizes": [1, 3, 2], "axis": 1}),
    (g.test_where_and_masked_fill, {"sc": (2, 3), "sa": (3,), "sb": (2, 1)}),
    (g.test_linear, {"xs": (2, 3, 3)}),
    (g.test_softmax_and_log_softmax, {"shape": (2, 3, 4), "axis": 1}),
    (g.test_cross_entropy, {"targets": [1, -100, 3]}),
    (g.test_cross_entropy_all_rows_ignored_gives_zero_gradient, {}),
    (g.test_layer_norm, {"shape": (2, 3, 5)}),
    (g.test_embedding, {"idx": np.array([[2, 2], [0, 2]])}),
    (g.test_dropout_with_a_fixed_mask, {}),
    (g.test_scaled_dot_product_attention, {"case": g.ATTENTION[1]}),
    (g.test_attention_with_a_mask, {"kind": "additive"}),
    (g.test_attention_fully_masked_row_has_zero_output_and_gradient, {}),
    (g.test_kernels_fed_non_contiguous_views, {}),
]


@pytest.mark.parametrize("case, kwargs", CHECKS,
                         ids=[f"{c.__name__[5:]}-{i}" for i, (c, _) in enumerate(CHECKS)])
def test_gradcheck_on_cuda(rng, check, case, kwargs):
    case(Place("cuda", rng), rng, check, **kwargs)


@pytest.mark.parametrize("name, fn", [
    ("roll", lambda x: F.roll(x, (1, -1), axis=(0, 1))),
    ("tile", lambda x: F.tile(x, (2, 1))),
    ("log2", lambda x: F.log2(x)),
    ("cumsum", lambda x: F.cumsum(x, axis=1)),
    ("flip", lambda x: F.flip(x, axis=0)),
    ("stack", lambda x: F.stack([x, x * 2.0], axis=1)),
    ("prod", lambda x: F.prod(x, axis=0)),
    ("var", lambda x: F.var(x, axis=1, correction=1)),
])
def test_library_ops_gradcheck_on_cuda(rng, name, fn):
    """A sample of the library ops, through the functions their namespace now provides."""
    from engine.gradcheck import gradcheck
    x = Tensor(rng.random((3, 4)) + 0.5, device="cuda").requires_grad_()
    gradcheck(fn, x)


# The op cases of `attn gradcheck`'s table (about 30 s on the simulator); its layer cases
# (another 90 s there, the TransformerBlock alone 40 s) are left to the model tests on cuda.
OP_CASES = [c for c in CASES if not c.layer]


@pytest.mark.parametrize("case", OP_CASES, ids=ids(OP_CASES))
def test_the_gradcheck_table_on_cuda(case):
    assert_case_passes(case, "cuda")
