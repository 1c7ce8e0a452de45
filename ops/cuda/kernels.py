"""The cuda forms of every kernel on the contract list (ops/README.md), each a launcher over
the kernels in this package, and their register(...) calls at the bottom."""

import math

import numpy as np
from numba import cuda

from ops.attention import attention_qkv_backward_composite, attention_qkv_composite
from ops.cuda import attention as att
from ops.cuda import launch, rows
from ops.cuda import namespace as ns
from ops.cuda.array import CudaArray, empty
from ops.cuda.launch import NUMBA_TYPES, factory
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
    pw, pb = ns.zeros((rb, C), dtype=x.dtype), ns.zeros((rb, C), dtype=x.dtype)
    if x2.size:
        rows.layer_norm_dx_kernel(x.dtype.name)[rows.row_grid(R)](
            dx.dev(), dy2.dev(), x2.dev(), ns.contiguous(weight).dev(), mean.dev(), rstd.dev())
        grid = (-(-C // launch.THREADS), rb)
        rows.layer_norm_dwdb_kernel(x.dtype.name, rows.ROWS_PER_BLOCK)[grid, launch.THREADS](
            pw.dev(), pb.dev(), dy2.dev(), x2.dev(), mean.dev(), rstd.dev())
    return ns.reshape(dx, x.shape), ns.sum(pw, axis=0), ns.sum(pb, axis=0)


# ---- cross-entropy -------------------------------------------------------------------------

@factory
def _ce_forward_kernel(dtype):
    """One block per row: lse and the row's NLL (0 on ignored rows)."""
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    rmax, rsum = rows.block_reduce("max", dtype), rows.block_reduce("sum", dtype)

    @cuda.jit
    def kernel(lse, nll, x, targets, ignore_index):
        part = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        R, V = x.shape
        for r in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            m = T(-math.inf)
            for j in range(t, V, nt):
                m = x[r, j] if (x[r, j] > m or math.isnan(x[r, j])) else m
            m = rmax(part, t, m)
            s = T(0)
            for j in range(t, V, nt):
                s += math.exp(x[r, j] - m)
            lz = m + math.log(rsum(part, t, s))
            if t == 0:
                lse[r] = lz
                tg = targets[r]
                nll[r] = lz - x[r, tg] if tg != ignore_index else T(0)
    return kernel


@factory
def _ce_backward_kernel(dtype):
    """dlogits[r, j] = (exp(x - lse) - [j == target]) * scale on counted rows, else 0."""
    T = NUMBA_TYPES[dtype]

    @cuda.jit
    def kernel(dx, x, targets, lse, scale, ignore_index):
        R, V = x.shape
        for e in range(cuda.grid(1), R * V, cuda.gridsize(1)):
            r, j = e // V, e % V
            tg = targets[r]
            if tg == ignore_index:
                dx[r, j] = T(0)
            else:
                g = math.exp(x[r, j] - lse[r])
                dx[r, j] = (g - T(1) if j == tg else g) * scale[0]
    return kernel


def cross_entropy_cuda(logits, targets, ignore_index):
    _check("cross_entropy", logits, targets)
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"cross_entropy: logits {logits.shape} and targets {targets.shape} "
                         "do not fit (want (N, V) and (N,))")
    x, tg = ns.contiguous(logits), ns.contiguous(targets)
    R = x.shape[0]
    lse, nll = empty((R,), x.dtype), empty((R,), x.dtype)
    if R:
        _ce_forward_kernel(x.dtype.name)[rows.row_grid(R)](lse.dev(), nll.dev(), x.dev(),
                                                           tg.dev(), int(ignore_index))
    total = ns.sum(nll, dtype=x.dtype)
    count = ns.astype(ns.count_nonzero(ns.not_equal(tg, int(ignore_index))), x.dtype)
    return ns.divide(total, ns.maximum(count, 1.0)), lse


def cross_entropy_backward_cuda(logits, targets, lse, ignore_index, grad):
    _check("cross_entropy_backward", logits, targets, lse)
    x, tg, lse = ns.contiguous(logits), ns.contiguous(targets), ns.contiguous(lse)
    count = ns.count_nonzero(ns.not_equal(tg, int(ignore_index)))
    grad = ns.asarray(grad, dtype=ns.float64) if not isinstance(grad, CudaArray) else grad
    # grad / count divided in float64 and rounded once to the dtype, on the device
    scale = ns.astype(ns.divide(ns.astype(grad, ns.float64),
                                ns.astype(ns.maximum(count, 1), ns.float64)), x.dtype)
    dx = empty(x.shape, x.dtype)
    n = x.size
    if n:
        _ce_backward_kernel(x.dtype.name)[launch.blocks(n), launch.THREADS](
            dx.dev(), x.dev(), tg.dev(), lse.dev(), ns.reshape(scale, (1,)).dev(),
            int(ignore_index))
    return dx


# ---- attention -----------------------------------------------------------------------------

def _heads(a):
    B, H, T, D = a.shape
    return ns.reshape(ns.contiguous(a), (B * H, T, D))


def _mask(mask, q, Tk):
    """(buffer, offset, strides of the (B, H, Tq, Tk) broadcast view, present)."""
    if mask is None:
        return empty((1,), q.dtype).base, 0, (0, 0, 0, 0), False
    _check("attention", mask)
    B, H, Tq, _ = q.shape
    m = ns.broadcast_to(ns.astype(mask, q.dtype, copy=False), (B, H, Tq, Tk))
    return m.base, m.offset, m.strides, True


def attention_cuda(q, k, v, causal, scale, mask=None):
    _check("attention", q, k, v)
    B, H, Tq, D = q.shape
    if k.shape[:2] != (B, H) or k.shape[3] != D or v.shape[:3] != k.shape[:3]:
        raise ValueError(f"attention: q {q.shape}, k {k.shape}, v {v.shape} do not fit")
    Tk, Dv = k.shape[2], v.shape[3]
    o, lse = empty((B * H, Tq, Dv), q.dtype), empty((B * H, Tq), q.dtype)
    if o.size or lse.size:
        mb, mo, ms, has = _mask(mask, q, Tk)
        att.forward_kernel(q.dtype.name)[rows.row_grid(B * H * Tq)](
            o.dev(), lse.dev(), _heads(q).dev(), _heads(k).dev(), _heads(v).dev(), bool(causal),
            _scalar(q.dtype, scale), H, mb, mo, ms, has)
    return ns.reshape(o, (B, H, Tq, Dv)), ns.reshape(lse, (B, H, Tq))


def attention_backward_cuda(do, q, k, v, o, lse, causal, scale, mask=None):
    _check("attention_backward", do, q, k, v, o, lse)
    B, H, Tq, _ = q.shape
    Tk = k.shape[2]
    q3, k3, v3, do3, o3 = _heads(q), _heads(k), _heads(v), _heads(do), _heads(o)
    lse2 = ns.reshape(ns.contiguous(lse), (B * H, Tq))
    dq, dk, dv = empty(q3.shape, q.dtype), empty(k3.shape, q.dtype), empty(v3.shape, q.dtype)
    delta = empty((B * H, Tq), q.dtype)
    mb, mo, ms, has = _mask(mask, q, Tk)
    s = _scalar(q.dtype, scale)
    if q3.size or do3.size:
        att.dq_kernel(q.dtype.name)[rows.row_grid(B * H * Tq)](
            dq.dev(), delta.dev(), do3.dev(), q3.dev(), k3.dev(), v3.dev(), o3.dev(), lse2.dev(),
            bool(causal), s, H, mb, mo, ms, has)
    if k3.size or v3.size:
        att.dkv_kernel(q.dtype.name)[rows.row_grid(B * H * Tk)](
            dk.dev(), dv.dev(), delta.dev(), do3.dev(), q3.dev(), k3.dev(), v3.dev(), lse2.dev(),
            bool(causal), s, H, mb, mo, ms, has)
    return (ns.reshape(dq, q.shape), ns.reshape(dk, k.shape), ns.reshape(dv, v.shape))


# ---- GELU: entries of the elementwise tables ----------------------------------------------

def gelu_cuda(x):
    _check("gelu", x)
    return ns.gelu(x)


def gelu_backward_cuda(x, dy):
    _check("gelu_backward", x, dy)
    return ns.gelu_backward(x, dy)


register("matmul", "cuda", matmul_cuda)
register("matmul_nt", "cuda", matmul_nt_cuda)
register("matmul_tn", "cuda", matmul_tn_cuda)
register("softmax", "cuda", _softmax("softmax", False))
register("softmax_backward", "cuda", _softmax_backward("softmax_backward", False))
register("log_softmax", "cuda", _softmax("log_softmax", True))
register("log_softmax_backward", "cuda", _softmax_backward("log_softmax_backward", True))
register("layer_norm", "cuda", layer_norm_cuda)
register("layer_norm_backward", "cuda", layer_norm_backward_cuda)
register("cross_entropy", "cuda", cross_entropy_cuda)
register("cross_entropy_backward", "cuda", cross_entropy_backward_cuda)
register("attention", "cuda", attention_cuda)
register("attention_backward", "cuda", attention_backward_cuda)
# self-attention from the fused projection: the composite (heads as views, this device's
# contiguous and attention kernels, heads merged back) until a kernel reads q, k, v in place
register("attention_qkv", "cuda", attention_qkv_composite)
register("attention_qkv_backward", "cuda", attention_qkv_backward_composite)
register("gelu", "cuda", gelu_cuda)
register("gelu_backward", "cuda", gelu_backward_cuda)
