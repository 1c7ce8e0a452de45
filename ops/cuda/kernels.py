"""The cuda forms of every kernel on the contract list (ops/README.md), each a launcher over
the kernels in this package, and their register(...) calls at the bottom."""


import numpy as np

from ops.cuda import attention as att
from ops.cuda import deferred, flash, launch, rows
from ops.cuda import namespace as ns
from ops.cuda.array import CudaArray, empty
from ops.cuda.matmul import matmul_cuda, matmul_nt_cuda, matmul_tn_cuda
from ops.registry import register


def _check(op, *arrays):
    for a in arrays:
        if not isinstance(a, CudaArray):
            raise TypeError(f"{op}: expects cuda arrays, got {type(a).__name__}")


def _scalar(dtype, value):
    return np.dtype(dtype).type(value)


# ---- softmax, log-softmax, layer norm: row kernels (ops/cuda/rows.py) --------------------

def _softmax(op, log):
    def forward(x):
        _check(op, x)
        x2 = rows.rows_of(ns, x)
        y = empty(x2.shape, x.dtype)
        if x2.size:
            rows.softmax_kernel(x.dtype.name, log)[rows.row_grid(x2.shape[0])](y.dev(), x2.dev())
        return ns.reshape(y, x.shape)
    return forward


def _softmax_backward(op, log):
    def backward(y, dy):
        _check(op, y, dy)
        if y.shape != dy.shape or y.dtype != dy.dtype:
            raise ValueError(f"{op}: y {y.shape} {y.dtype} and dy {dy.shape} {dy.dtype} differ")
        y2, dy2 = rows.rows_of(ns, y), rows.rows_of(ns, dy)
        dx = empty(y2.shape, y.dtype)
        if y2.size:
            rows.softmax_backward_kernel(y.dtype.name, log)[rows.row_grid(y2.shape[0])](
                dx.dev(), y2.dev(), dy2.dev())
        return ns.reshape(dx, y.shape)
    return backward


def layer_norm_cuda(x, weight, bias, eps):
    _check("layer_norm", x, weight, bias)
    if weight.shape != x.shape[-1:] or bias.shape != x.shape[-1:]:
        raise ValueError(f"layer_norm: weight {weight.shape} and bias {bias.shape} do not fit "
                         f"x {x.shape}")
    x2 = rows.rows_of(ns, x)
    R = x2.shape[0]
    y, mean, rstd = empty(x2.shape, x.dtype), empty((R,), x.dtype), empty((R,), x.dtype)
    if x2.size:
        rows.layer_norm_kernel(x.dtype.name)[rows.row_grid(R)](
            y.dev(), mean.dev(), rstd.dev(), x2.dev(), ns.contiguous(weight).dev(),
            ns.contiguous(bias).dev(), _scalar(x.dtype, eps))
    lead = x.shape[:-1]
    return ns.reshape(y, x.shape), ns.reshape(mean, lead), ns.reshape(rstd, lead)


def layer_norm_backward_cuda(dy, x, weight, mean, rstd):
    _check("layer_norm_backward", dy, x, weight, mean, rstd)
    x2, dy2 = rows.rows_of(ns, x), rows.rows_of(ns, dy)
    R, C = x2.shape
    mean, rstd = ns.reshape(ns.contiguous(mean), (R,)), ns.reshape(ns.contiguous(rstd), (R,))
    dx = empty(x2.shape, x.dtype)
    rb = max(1, -(-R // rows.ROWS_PER_BLOCK))
    if not x2.size:
        zero = ns.zeros((C,), dtype=x.dtype)
        return ns.reshape(dx, x.shape), zero, ns.zeros((C,), dtype=x.dtype)
    rows.layer_norm_dx_kernel(x.dtype.name)[rows.row_grid(R)](
        dx.dev(), dy2.dev(), x2.dev(), ns.contiguous(weight).dev(), mean.dev(), rstd.dev())
    # per row block, the partial column sums of dw (parts[0]) and db (parts[1]); every
    # entry is written, then one reduction sums the row blocks of both
    parts = empty((2, rb, C), x.dtype)
    grid = (-(-C // launch.THREADS), min(rb, launch.MAX_GRID))
    rows.layer_norm_dwdb_kernel(x.dtype.name, rows.ROWS_PER_BLOCK)[grid, launch.THREADS](
        parts[0].dev(), parts[1].dev(), dy2.dev(), x2.dev(), mean.dev(), rstd.dev())
    dw, db = (deferred.colsum(parts[i], empty((C,), x.dtype)) for i in (0, 1))
    return ns.reshape(dx, x.shape), dw, db


# ---- attention -----------------------------------------------------------------------------

def _mask(mask, q, Tk):
    """(the (B, H, Tq, Tk) broadcast view or None, its buffer, offset, strides, present);
    the view is returned to be held alive until the launch."""
    if mask is None:
        none = empty((1,), q.dtype)
        return none, none.flat(), 0, (0, 0, 0, 0), False
    _check("attention", mask)
    B, H, Tq, _ = q.shape
    m = ns.broadcast_to(ns.astype(mask, q.dtype, copy=False), (B, H, Tq, Tk))
    return m, m.base, m.offset, m.strides, True


def _attention(o, lse, q, k, v, causal, scale, mask):
    """Runs the forward kernel: q, k, v, o (B, H, T, D) views of any strides, read and
    written in place; lse (B, H, Tq) contiguous. The tiled kernels when the head sizes fit
    their shared memory, else a block per query row."""
    B, H, Tq, D = q.shape
    Dv = v.shape[3]
    if not (o.size or lse.size):
        return
    _held, mb, mo, ms, has = _mask(mask, q, k.shape[2])
    args = (o.strided(), lse.dev(), q.strided(), k.strided(), v.strided(), bool(causal),
            _scalar(q.dtype, scale), mb, mo, ms, has)
    tc = flash.shape(q.dtype, D, Dv)
    if tc:
        flash.flash_forward_kernel(q.dtype.name, D, Dv, *tc)[
            rows.row_grid(B * H * -(-Tq // tc[0]))](*args)
    else:
        att.forward_kernel(q.dtype.name)[rows.row_grid(B * H * Tq)](*args)


def _attention_backward(dq, dk, dv, do, q, k, v, o, lse, causal, scale, mask):
    """Runs the two backward kernels: every array but lse a (B, H, T, D) view of any
    strides; dq, dk, dv written in place."""
    B, H, Tq, _ = q.shape
    Tk = k.shape[2]
    lse = ns.contiguous(lse)
    delta = empty((B, H, Tq), q.dtype)
    _held, mb, mo, ms, has = _mask(mask, q, Tk)
    s = _scalar(q.dtype, scale)
    views = [a.strided() for a in (do, q, k, v)]
    D, Dv = q.shape[3], v.shape[3]
    tc = flash.shape(q.dtype, D, Dv)
    if tc:
        key, t = (q.dtype.name, D, Dv) + tc, tc[0]
        dq_k, dkv_k = flash.flash_dq_kernel(*key), flash.flash_dkv_kernel(*key)
        dq_grid, dkv_grid = rows.row_grid(B * H * -(-Tq // t)), rows.row_grid(B * H * -(-Tk // t))
    else:
        dq_k, dkv_k = att.dq_kernel(q.dtype.name), att.dkv_kernel(q.dtype.name)
        dq_grid, dkv_grid = rows.row_grid(B * H * Tq), rows.row_grid(B * H * Tk)
    if q.size or do.size:
        dq_k[dq_grid](dq.strided(), delta.dev(), *views, o.strided(), lse.dev(), bool(causal), s,
                      mb, mo, ms, has)
    if k.size or v.size:
        dkv_k[dkv_grid](dk.strided(), dv.strided(), delta.dev(), *views, lse.dev(), bool(causal),
                        s, mb, mo, ms, has)


def attention_cuda(q, k, v, causal, scale, mask=None):
    _check("attention", q, k, v)
    B, H, Tq, D = q.shape
    if k.shape[:2] != (B, H) or k.shape[3] != D or v.shape[:3] != k.shape[:3]:
        raise ValueError(f"attention: q {q.shape}, k {k.shape}, v {v.shape} do not fit")
    o, lse = empty((B, H, Tq, v.shape[3]), q.dtype), empty((B, H, Tq), q.dtype)
    _attention(o, lse, q, k, v, causal, scale, mask)
    return o, lse


def attention_backward_cuda(do, q, k, v, o, lse, causal, scale, mask=None):
    _check("attention_backward", do, q, k, v, o, lse)
    dq, dk, dv = empty(q.shape, q.dtype), empty(k.shape, q.dtype), empty(v.shape, q.dtype)
    _attention_backward(dq, dk, dv, do, q, k, v, o, lse, causal, scale, mask)
    return dq, dk, dv


def _split_heads(x, n_head):
    """(B, T, C) view -> (B, T, H, D) view (the last axis must be contiguous)."""
    B, T, C = x.shape
    return x.view((B, T, n_head, C // n_head), x.strides[:2] + (C // n_head * x.strides[2],
                                                                x.strides[2]))


def _heads_of(x, n_head):
    """(B, T, C) -> (B, H, T, D) view, no copy."""
    return ns.permute_dims(_split_heads(x, n_head), (0, 2, 1, 3))


def attention_qkv_cuda(qkv, n_head, causal, scale):
    """Self-attention reading q, k, v in place from qkv (B, T, 3C) and writing y (B, T, C)
    with the heads side by side: one launch, no head copies."""
    _check("attention_qkv", qkv)
    B, T, C3 = qkv.shape
    c = C3 // 3
    q, k, v = (_heads_of(qkv[:, :, i * c:(i + 1) * c], n_head) for i in range(3))
    y, lse = empty((B, T, c), qkv.dtype), empty((B, n_head, T), qkv.dtype)
    _attention(_heads_of(y, n_head), lse, q, k, v, causal, scale, None)
    return y, lse


def attention_qkv_backward_cuda(dy, qkv, y, lse, n_head, causal, scale):
    """d qkv (B, T, 3C): dq, dk, dv written in place side by side by the two backward
    launches (every element of it is written)."""
    _check("attention_qkv_backward", dy, qkv, y, lse)
    c = qkv.shape[2] // 3
    dqkv = empty(qkv.shape, qkv.dtype)
    q, k, v, dq, dk, dv = (_heads_of(a[:, :, i * c:(i + 1) * c], n_head)
                           for a in (qkv, dqkv) for i in range(3))
    _attention_backward(dq, dk, dv, _heads_of(dy, n_head), q, k, v, _heads_of(y, n_head), lse,
                        causal, scale, None)
    return dqkv


# ---- GELU: entries of the elementwise tables ----------------------------------------------

def gelu_cuda(x):
    _check("gelu", x)
    return ns.gelu(x)


def gelu_backward_cuda(x, dy):
    _check("gelu_backward", x, dy)
    return ns.gelu_backward(x, dy)


# ---- the linear layer: the product, then the bias as before (one launch each) -----------

def linear_cuda(x, w, b):
    y = matmul_nt_cuda(x, w)
    if b is not None:
        y += b
    return y


def sum_rows_cuda(x):
    return ns.sum(x, axis=0)  # the namespace's column sum (queued: ops/cuda/deferred.py)


register("linear", "cuda", linear_cuda)
register("sum_rows", "cuda", sum_rows_cuda)
register("matmul", "cuda", matmul_cuda)
register("matmul_nt", "cuda", matmul_nt_cuda)
register("matmul_tn", "cuda", matmul_tn_cuda)
register("softmax", "cuda", _softmax("softmax", False))
register("softmax_backward", "cuda", _softmax_backward("softmax_backward", False))
register("log_softmax", "cuda", _softmax("log_softmax", True))
register("log_softmax_backward", "cuda", _softmax_backward("log_softmax_backward", True))
register("layer_norm", "cuda", layer_norm_cuda)
register("layer_norm_backward", "cuda", layer_norm_backward_cuda)
register("attention", "cuda", attention_cuda)
register("attention_backward", "cuda", attention_backward_cuda)
register("attention_qkv", "cuda", attention_qkv_cuda)
register("attention_qkv_backward", "cuda", attention_qkv_backward_cuda)
register("gelu", "cuda", gelu_cuda)
register("gelu_backward", "cuda", gelu_backward_cuda)
