"""The differentiable ops' gradchecks (tests/engine/test_gradcheck_ops.py) rerun with their
tensors on the cuda device: the namespace and kernels cover every Function. (Rerunning them
found a view-for-scalar indexing bug and a race in the simulator's shared arrays.)"""

import pathlib
import sys

import pytest

import ops
from engine import Tensor

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "engine"))
import test_gradcheck_ops as cases
from test_gradcheck_ops import (  # noqa: F401  (collected here again, on "cuda")
    test_attention_fully_masked_row_has_zero_output_and_gradient,
    test_binary_ops,
    test_concat_and_split,
    test_cross_entropy,
    test_cross_entropy_all_rows_ignored_gives_zero_gradient,
    test_dropout_with_a_fixed_mask,
    test_embedding,
    test_getitem,
    test_getitem_boolean_mask,
    test_kernels_fed_non_contiguous_views,
    test_layer_norm,
    test_linear,
    test_pow,
    test_pow_integer_exponent_of_negative_numbers,
    test_reductions,
    test_reshape_permute_transpose,
    test_scalars_mixed_in,
    test_softmax_and_log_softmax,
    test_split,
    test_unary_ops,
    test_where_and_masked_fill,
)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


class _OnCuda:
    device = "cuda"

    def leaf(self, array):
        return Tensor(array, device="cuda").requires_grad_()

    def const(self, array):
        return Tensor(array, device="cuda")

    @staticmethod
    def host(array):
        return ops.to_host(array.data if isinstance(array, Tensor) else array)


@pytest.fixture
def on():
    """Overrides tests/conftest.py's `on`: every case runs on "cuda" only."""
    return _OnCuda()


# Slow in the simulator (each finite difference is a forward pass), so not all rerun: one
# unmasked and one masked attention case here (every case against the reference in
# test_cuda_kernels.py), no MLP loss (test_cuda_gpt.py trains a GPT), no matmul (its three forms against the
# reference in test_cuda_kernels.py); the CPU-only tests
# (backend switching, numba vs numpy) neither.
def test_scaled_dot_product_attention_causal(on, rng):
    cases.test_scaled_dot_product_attention(on, rng, cases.ATTENTION[0])


def test_attention_with_an_additive_mask(on, rng):
    cases.test_attention_with_a_mask(on, rng, "additive")
