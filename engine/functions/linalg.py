"""Linear-algebra Functions: matmul (2-D and batched, broadcasting) and the affine map of a
linear layer, both on the matmul kernels (nn, nt, tn forms)."""

import numpy as np

import ops
from engine.autograd import Function
from engine.functions.elementwise import unbroadcast


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


class LinearOp(Function):
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
