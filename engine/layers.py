"""The heavy differentiable ops (matmul, softmax, losses, norms, attention): each one Function
whose forward and backward call kernels through ops.kernel, so the backend picks numpy or
Numba without this file knowing which."""

import numpy as np

import ops
from engine.autograd import Function
from engine.primitives import unbroadcast


def _matmul_shapes(a, b):
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: both operands need at least 2 "
                         "dimensions (reshape a vector to (1, K) or (K, 1))")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: inner dimensions {a.shape[-1]} "
                         f"and {b.shape[-2]} differ")
    try:
        return np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: batch dimensions "
                         f"{a.shape[:-2]} and {b.shape[:-2]} do not broadcast") from None


def _batched(x, batch):
    """x broadcast to batch + its last two dims, flattened to 3-D (S, rows, cols)."""
    return np.broadcast_to(x, batch + x.shape[-2:]).reshape((-1,) + x.shape[-2:])


class MatMul(Function):
    name, formula = "matmul", "d(A@B) = dY @ B^T, A^T @ dY"

    @staticmethod
    def forward(ctx, a, b):
        batch = _matmul_shapes(a, b)
        ctx.save_for_backward(a, b)
        ctx.batch = batch
        if b.ndim == 2:  # (..., M, K) @ (K, N): one 2-D product over all rows
            return ops.kernel("matmul")(a.reshape(-1, a.shape[-1]), b).reshape(
                a.shape[:-1] + (b.shape[-1],))
        y = ops.kernel("matmul")(_batched(a, batch), _batched(b, batch))
        return y.reshape(batch + y.shape[-2:])

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        da = db = None
        if b.ndim == 2:
            g2 = g.reshape(-1, g.shape[-1])
            if ctx.needs_input_grad[0]:
                da = unbroadcast(ops.kernel("matmul_nt")(g2, b).reshape(
                    g.shape[:-1] + (b.shape[0],)), a.shape)
            if ctx.needs_input_grad[1]:
                a2 = np.broadcast_to(a, g.shape[:-1] + a.shape[-1:]).reshape(-1, a.shape[-1])
                db = ops.kernel("matmul_tn")(a2, g2)
            return da, db
        g3 = g.reshape((-1,) + g.shape[-2:])
        if ctx.needs_input_grad[0]:
            da = ops.kernel("matmul_nt")(g3, _batched(b, ctx.batch))
            da = unbroadcast(da.reshape(ctx.batch + da.shape[-2:]), a.shape)
        if ctx.needs_input_grad[1]:
            db = ops.kernel("matmul_tn")(_batched(a, ctx.batch), g3)
            db = unbroadcast(db.reshape(ctx.batch + db.shape[-2:]), b.shape)
        return da, db


class Linear(Function):
    name, formula = "linear", "d(x W^T + b) = dY W, dY^T x, sum(dY)"

    @staticmethod
    def forward(ctx, x, w, b=None):
        if w.ndim != 2 or x.shape[-1:] != w.shape[1:]:
            raise ValueError(f"linear: input {x.shape} does not fit weight {w.shape} "
                             f"(weight is (out_features, in_features))")
        if b is not None and b.shape != w.shape[:1]:
            raise ValueError(f"linear: bias {b.shape} does not match weight {w.shape}")
        x2 = x.reshape(-1, w.shape[1])  # (N, in)
        ctx.save_for_backward(x2, w)
        ctx.x_shape = x.shape
        y = ops.kernel("matmul_nt")(x2, w)  # (N, out)
        if b is not None:
            y += b
        return y.reshape(x.shape[:-1] + (w.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x2, w = ctx.saved
        g2 = g.reshape(-1, w.shape[0])  # (N, out)
        need = ctx.needs_input_grad
        dx = ops.kernel("matmul")(g2, w).reshape(ctx.x_shape) if need[0] else None
        dw = ops.kernel("matmul_tn")(g2, x2) if need[1] else None
        db = g2.sum(axis=0) if len(need) > 2 and need[2] else None
        return dx, dw, db


class Softmax(Function):
    name, formula = "softmax", "d(softmax) = y * (dy - sum(dy * y))"

    @staticmethod
    def forward(ctx, x):
        y = ops.kernel("softmax")(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return ops.kernel("softmax_backward")(ctx.saved[0], g)


class LogSoftmax(Function):
    name, formula = "log_softmax", "d(log_softmax) = dy - exp(y) * sum(dy)"

    @staticmethod
    def forward(ctx, x):
        y = ops.kernel("log_softmax")(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return ops.kernel("log_softmax_backward")(ctx.saved[0], g)


class CrossEntropy(Function):
    name, formula = "cross_entropy", "d(CE) = (softmax(z) - onehot(t)) / n_counted"

    @staticmethod
    def forward(ctx, logits, targets, ignore_index=-100):
        loss, lse = ops.kernel("cross_entropy")(logits, targets, ignore_index)
        ctx.save_for_backward(logits, targets, lse)
        ctx.ignore_index = ignore_index
        return np.asarray(loss, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, g):
        logits, targets, lse = ctx.saved
        d = ops.kernel("cross_entropy_backward")(logits, targets, lse, ctx.ignore_index,
                                                 float(g))
        return d


class LayerNorm(Function):
    name, formula = "layer_norm", "d(LN) = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))"

    @staticmethod
    def forward(ctx, x, weight, bias, eps=1e-5):
        c = x.shape[-1:]
        if weight.shape != c or bias.shape != c:
            raise ValueError(f"layer_norm: input {x.shape} needs weight and bias of shape {c}, "
                             f"got {weight.shape} and {bias.shape}")
        y, mean, rstd = ops.kernel("layer_norm")(x, weight, bias, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, g):
        return ops.kernel("layer_norm_backward")(g, *ctx.saved)


class Gelu(Function):
    name, formula = "gelu", "d(gelu a) = (Phi~(a) + a phi~(a)) da, tanh form"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ops.kernel("gelu")(x)

    @staticmethod
    def backward(ctx, g):
        return ops.kernel("gelu_backward")(ctx.saved[0], g)


class Embedding(Function):
    name, formula = "embedding", "d(W[idx]) = scatter-add dy into rows idx"

    @staticmethod
    def forward(ctx, weight, idx):
        ctx.save_for_backward(idx)
        ctx.rows = weight.shape[0]
        return ops.kernel("embedding")(weight, idx)

    @staticmethod
    def backward(ctx, g):
        return ops.kernel("embedding_backward")(ctx.saved[0], g, ctx.rows)


class Dropout(Function):
    name, formula = "dropout", "d(dropout a) = mask / (1 - p) * da"

    @staticmethod
    def forward(ctx, x, p, generator):
        keep = generator.random(x.shape, dtype=np.float32 if x.dtype == np.float32
                                else np.float64) >= p
        scale = (keep / x.dtype.type(1 - p)).astype(x.dtype)
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


class Attention(Function):
    name, formula = "attention", "d(softmax(QK^T s + M) V): flash backward from saved lse"

    @staticmethod
    def forward(ctx, q, k, v, mask=None, causal=False, scale=1.0):
        # q, k, v usually arrive as transposed views of the fused QKV projection; make them
        # contiguous once here, so the kernels' own copies are no-ops in forward and backward.
        q, k, v = (np.ascontiguousarray(a) for a in (q, k, v))
        o, lse = ops.kernel("attention")(q, k, v, causal, scale, mask)
        ctx.save_for_backward(q, k, v, o, lse, mask)
        ctx.causal, ctx.scale = causal, scale
        return o

    @staticmethod
    def backward(ctx, g):
        q, k, v, o, lse, mask = ctx.saved
        dq, dk, dv = ops.kernel("attention_backward")(g, q, k, v, o, lse, ctx.causal,
                                                      ctx.scale, mask)
        return dq, dk, dv
