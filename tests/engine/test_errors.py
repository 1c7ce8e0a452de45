"""Errors a user meets: shape mismatches that name the op and the shapes, gradients of
integer tensors, the dtype rule, non-finite values in reductions, detect_anomaly, and a
gradcheck that catches a wrong backward."""

import numpy as np
import pytest

import engine.functional as F
from engine import AnomalyError, GradcheckError, Tensor, detect_anomaly, gradcheck
from engine.autograd import Function, is_anomaly_enabled


def _z(*shape, dtype=np.float32, grad=False):
    return Tensor(np.zeros(shape, dtype), requires_grad=grad)


# ---- shape mismatches ------------------------------------------------------------------------
def test_matmul_inner_dimensions_message_is_exact():
    with pytest.raises(ValueError) as err:
        F.matmul(_z(4, 8), _z(7, 3))
    assert str(err.value) == "matmul: (4, 8) @ (7, 3): inner dimensions 8 and 7 differ"


@pytest.mark.parametrize("sa,sb,words", [
    ((2, 4, 8), (3, 8, 2), r"\(2, 4, 8\) @ \(3, 8, 2\): batch dimensions \(2,\) and \(3,\)"),
    ((8,), (8, 2), r"\(8,\) @ \(8, 2\): both operands need at least 2 dimensions")])
def test_matmul_other_shape_errors(sa, sb, words):
    with pytest.raises(ValueError, match="matmul: " + words):
        _z(*sa) @ _z(*sb)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_elementwise_broadcast_errors_name_op_and_shapes(op):
    with pytest.raises(ValueError, match=rf"^{op}: shapes \(2, 3\) and \(4,\) do not broadcast"):
        getattr(F, op)(_z(2, 3), _z(4))


@pytest.mark.parametrize("call,words", [
    (lambda: F.linear(_z(2, 5), _z(3, 4)), r"linear: input \(2, 5\) does not fit weight \(3, 4\)"),
    (lambda: F.linear(_z(2, 4), _z(3, 4), _z(2)), r"linear: bias \(2,\) does not match weight"),
    (lambda: F.layer_norm(_z(2, 5), _z(4), _z(5)),
     r"layer_norm: input \(2, 5\) needs weight and bias of shape \(5,\), got \(4,\) and \(5,\)"),
    (lambda: _z(2, 3).reshape(4, 2), r"reshape: cannot reshape \(2, 3\) \(6 elements\) into \("),
    (lambda: F.concat([_z(2, 3), _z(3, 4)], axis=0), r"concat: shapes \(2, 3\), \(3, 4\) differ"),
    (lambda: F.where(np.ones((2, 3), bool), _z(4), _z(2, 3)),
     r"where: condition \(2, 3\), a \(4,\) and b \(2, 3\) do not broadcast"),
    (lambda: _z(2, 3).permute(0, 0), r"permute: axes \(0, 0\) are not a permutation"),
    (lambda: F.split(_z(2, 5), 2), r"split: axis -1 of size 5 does not split into 2"),
    (lambda: F.cross_entropy(_z(3, 4), np.zeros(2, int)),
     r"cross_entropy: logits \(3, 4\) must be \(N, V\) and targets \(N,\), got targets \(2,\)"),
    (lambda: F.scaled_dot_product_attention(_z(1, 2, 3, 4), _z(1, 2, 3, 5), _z(1, 2, 3, 4)),
     r"q \(1, 2, 3, 4\), k \(1, 2, 3, 5\), v \(1, 2, 3, 4\) do not fit"),
    (lambda: F.scaled_dot_product_attention(_z(1, 1, 3, 4), _z(1, 1, 3, 4), _z(1, 1, 3, 4),
                                            mask=np.ones((2, 3), bool)),
     r"mask \(2, 3\) does not broadcast to \(1, 1, 3, 3\)"),
])
def test_layer_shape_errors_name_op_and_shapes(call, words):
    with pytest.raises(ValueError, match=words):
        call()


@pytest.mark.parametrize("call,error,words", [
    (lambda: F.cross_entropy(_z(2, 4), np.array([0, 4])), IndexError,
     "cross_entropy: target 4 out of range for 4 classes"),
    (lambda: F.cross_entropy(_z(2, 4), np.array([0.0, 1.0])), TypeError,
     "cross_entropy: targets must be integers"),
    (lambda: F.embedding(np.array([0, -1]), _z(3, 2)), IndexError,
     "embedding: index -1 out of range for 3 rows"),
    (lambda: F.embedding(np.array([0.5]), _z(3, 2)), TypeError, "embedding: indices must be"),
    (lambda: _z(2, 3)[5], IndexError, r"getitem: .*\(tensor of shape \(2, 3\)\)"),
    (lambda: _z(2, 0).max(), ValueError, r"max: empty tensor of shape \(2, 0\)"),
    (lambda: _z(2) ** "2", TypeError, "pow: the exponent must be a number or a tensor"),
    (lambda: F.dropout(_z(2), p=1.0), ValueError, r"dropout: p must be in \[0, 1\)"),
])
def test_value_errors_name_the_op(call, error, words):
    with pytest.raises(error, match=words):
        call()


# ---- integer tensors and gradients -------------------------------------------------------------
@pytest.mark.parametrize("data", [[1, 2], np.array([True, False]), np.arange(3, dtype=np.int32)])
def test_integer_tensors_cannot_require_grad(data):
    with pytest.raises(TypeError, match="only float tensors can require grad; this one is"):
        Tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match="only float tensors"):
        Tensor(data).requires_grad_()


def test_integer_operand_in_a_float_graph_gets_no_gradient():
    x, i = _z(3, grad=True), Tensor([1, 2, 3])
    y = x * i
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 2, 3])
    assert i.grad is None and not i.requires_grad


# ---- the dtype rule ----------------------------------------------------------------------------
def test_float32_and_float64_tensors_do_not_mix():
    a, b = _z(2, 3), _z(3, dtype=np.float64)
    with pytest.raises(TypeError, match=r"add: float32 and float64 tensors mixed "
                                        r"\(float32\(2, 3\), float64\(3,\)\)"
                                        r".*\.float\(\) or \.double\(\)"):
        a + b
    with pytest.raises(TypeError, match="matmul: float32 and float64"):
        F.matmul(_z(2, 3), _z(3, 2, dtype=np.float64))
    assert (a + b.float()).dtype == np.float32 and (a.double() + b).dtype == np.float64


@pytest.mark.parametrize("constant", [2.5, 3, np.float64(2.5), np.ones(3), np.ones(3, np.float16)])
def test_constants_take_the_dtype_of_the_float_tensor(constant):
    for dtype in (np.float32, np.float64):
        x = _z(3, dtype=dtype)
        for y in (x + constant, constant * x, x / constant, constant - x, F.where(
                np.ones(3, bool), constant, x)):
            assert y.dtype == dtype


def test_integer_tensor_with_a_python_float_is_float32():
    assert (Tensor([1, 2]) * 0.5).dtype == np.float32
    assert (0.5 + Tensor([1, 2])).dtype == np.float32
    assert (Tensor([1, 2]) * Tensor([1.5])).dtype == np.float32


def test_a_float32_graph_stays_float32_forward_and_backward(rng):
    x, w, b, g, beta = (Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
                        for s in [(4, 6), (5, 6), (5,), (5,), (5,)])
    h = F.layer_norm(F.linear(x, w, b), g, beta).gelu() * 0.5 + np.float64(1e-3)
    h = (h.tanh() - h.mean(axis=0)) / 3.0 + h.max(axis=1, keepdims=True) ** 2
    q = h.reshape(1, 1, 4, 5)
    att = F.scaled_dot_product_attention(q, q, q, causal=True).reshape(4, 5)
    loss = F.cross_entropy(F.softmax(att).log() + F.log_softmax(att), np.array([0, 1, 2, 3]))
    for t in (h, att, loss):
        assert t.dtype == np.float32
    loss.backward()
    for p in (x, w, b, g, beta):
        assert p.grad.dtype == np.float32 and p.grad.shape == p.shape


# ---- non-finite values are not swallowed --------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("pos", [0, 2, 4])
def test_reductions_propagate_nan_and_inf(bad, pos):
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    x[0, pos] = bad
    t = Tensor(x)
    for y in (t.sum(axis=1), t.mean(axis=1), t.sum(), t.mean()):
        assert not np.isfinite(y.data.reshape(-1)[0])
    m = t.max(axis=1).data
    np.testing.assert_array_equal(m, np.max(x, axis=1))  # equal NaNs count as equal here
    assert np.isnan(m[0]) == np.isnan(bad) and m[1] == 9.0


@pytest.mark.parametrize("pos", [0, 2, 4])
def test_kernels_propagate_nan(backend, pos):
    x = np.zeros((2, 5), np.float32)
    x[0, pos] = np.nan
    t = Tensor(x)
    for y in (F.softmax(t), F.log_softmax(t), F.layer_norm(t)):
        assert np.isnan(y.data[0]).all() and np.isfinite(y.data[1]).all()
    assert np.isnan(F.cross_entropy(t, np.array([1, 1])).item())
    with_inf = Tensor(np.where(np.isnan(x), np.float32(np.inf), x))
    assert not np.isfinite(F.cross_entropy(with_inf, np.array([1, 1])).item())


@pytest.mark.parametrize("pos", [0, 2, 4])
def test_attention_propagates_nan_from_a_visible_key(backend, pos):
    q = np.zeros((1, 1, 5, 4), np.float32)
    k = q.copy()
    k[0, 0, pos, 1] = np.nan  # queries i >= pos see the bad key under the causal mask
    o = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(q + 1), causal=True).data
    assert np.isnan(o[0, 0, pos:]).all()
    np.testing.assert_array_equal(o[0, 0, :pos], 1.0)  # a hidden (future) key leaks nothing


def test_attention_query_with_only_nan_scores_is_nan_not_zero(backend):
    q, k = np.zeros((1, 1, 3, 4), np.float32), np.ones((1, 1, 3, 4), np.float32)
    q[0, 0, 1, 0] = np.nan  # row 1: every score nan; not the same as a fully masked row
    o = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(k)).data
    assert np.isnan(o[0, 0, 1]).all()
    np.testing.assert_array_equal(o[0, 0, [0, 2]], 1.0)


# ---- detect_anomaly ---------------------------------------------------------------------------
def test_detect_anomaly_names_the_first_forward_op():
    x = Tensor(np.array([1.0, 0.0, 2.0]), requires_grad=True)
    with detect_anomaly():
        assert is_anomaly_enabled()
        with pytest.raises(AnomalyError, match=r"forward of log produced a non-finite value "
                                               r"from finite inputs of shapes \(3,\)") as err:
            ((x * 2.0).log() * 3.0).exp()  # log(0) = -inf: log is blamed, not mul or exp
    assert err.value.op == "log" and not is_anomaly_enabled()
    y = (x * 2.0).log() * 3.0  # outside the context: no check, -inf flows on silently
    assert np.isneginf(y.data[1])


def test_detect_anomaly_does_not_blame_ops_fed_non_finite_inputs():
    x = Tensor(np.array([np.inf, 1.0]), requires_grad=True)
    with detect_anomaly():
        y = (x * 2.0).exp().sum()  # inf came in from outside: no op turned finite into inf
    assert np.isinf(y.item())


def test_detect_anomaly_names_the_first_backward_op():
    x = Tensor(np.array([0.0, 4.0]), requires_grad=True)
    with detect_anomaly():
        y = (x.sqrt() * 3.0 + 1.0).sum()  # forward finite; d sqrt / dx at 0 is inf
        with pytest.raises(AnomalyError, match=r"backward of sqrt produced a non-finite "
                                               r"gradient from a finite one") as err:
            y.backward()
    assert err.value.op == "sqrt"


def test_detect_anomaly_in_a_kernel_op(backend):
    x = Tensor(np.full((2, 2), 1e30, np.float32), requires_grad=True)
    with detect_anomaly():
        F.softmax(Tensor(np.array([[1.0, -np.inf]])))  # -inf came in: not softmax's fault
        with pytest.raises(AnomalyError, match="forward of matmul") as err:
            F.matmul(x, x * 1.0)  # 1e60 overflows float32: the kernel made the inf
    assert err.value.op == "matmul"


def test_layer_norm_of_constant_rows_with_eps_0_is_nan_not_an_exception(backend):
    y = F.layer_norm(Tensor(np.full((2, 4), 2.0, np.float32)), eps=0.0)  # variance 0, rstd inf
    assert np.isnan(y.data).all()


# ---- gradcheck can fail -----------------------------------------------------------------------
class _WrongSquare(Function):
    name, formula = "wrong_square", "d(a^2) = 2 a da, but backward says 2.01 a"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, g):
        return g * 2.01 * ctx.saved[0]


def test_gradcheck_catches_a_wrong_backward():
    x = Tensor(np.array([[1.0, 2.0], [3.0, -4.0]]), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 0 \(2, 2\): at index \(1, 1\) analytic "
                                             r"-8.04\d* vs numeric -8(\.0+)?\d* .*4 of 4"):
        gradcheck(lambda a: _WrongSquare.apply(a).sum(), x)
    report = gradcheck(lambda a: a * a, x)
    assert report.checked == [4] and report.max_abs_error[0] < 1e-6
    assert "gradcheck passed" in str(report) and "input 0: 4 elements" in str(report)


def test_gradcheck_needs_float64_inputs():
    with pytest.raises(TypeError, match=r"gradcheck: inputs must be float64, got float32"):
        gradcheck(lambda a: a * a, _z(2, grad=True))


def test_gradcheck_on_a_non_contiguous_input():
    x = Tensor(np.arange(6.0).reshape(2, 3).T, requires_grad=True)  # a transposed view
    report = gradcheck(lambda a: (a * a * a).sum(), x)
    assert report.checked == [6] and report.max_rel_error[0] < 1e-6
    np.testing.assert_allclose(x.grad, 3 * x.data ** 2, rtol=1e-12)
