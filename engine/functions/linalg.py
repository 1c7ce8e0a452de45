"""Linear algebra: matmul (2-D and batched, broadcasting) and the affine map of a linear layer,
both on the matmul kernels (nn, nt, tn forms); each Function with its public function."""

import math

import ops
from engine.autograd import Function
from engine.functions.args import broadcast_shapes, unbroadcast


def _matmul_shapes(a, b):
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: both operands need at least 2 "
                         "dimensions (reshape a vector to (1, K) or (K, 1))")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: inner dimensions {a.shape[-1]} "
                         f"and {b.shape[-2]} differ")
    try:
        return broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: batch dimensions "
                         f"{a.shape[:-2]} and {b.shape[:-2]} do not broadcast") from None


def _batched(x, batch):
    """x broadcast to batch + its last two dims, flattened to 3-D (S, rows, cols)."""
    xp = ops.array_namespace(x)  # sizes spelled out: -1 is ambiguous when a size is 0
    return xp.reshape(xp.broadcast_to(x, batch + x.shape[-2:]), (math.prod(batch),) + x.shape[-2:])


def _rows(x, cols):
    """x as a 2-D array of `cols` columns (N, cols); N spelled out (-1 fails for size 0)."""
    return ops.array_namespace(x).reshape(x, (math.prod(x.shape[:-1]), cols))


class MatMul(Function):
    name, formula = "matmul", "d(A@B) = dY @ B^T, A^T @ dY"

    @staticmethod
    def forward(ctx, a, b):
        batch = _matmul_shapes(a, b)
        ctx.save_for_backward(a, b)
        ctx.batch = batch
        xp, matmul = ops.array_namespace(a), ops.kernel_for("matmul", a)
        if b.ndim == 2:  # (..., M, K) @ (K, N): one 2-D product over all rows
            return xp.reshape(matmul(_rows(a, a.shape[-1]), b), a.shape[:-1] + (b.shape[-1],))
        y = matmul(_batched(a, batch), _batched(b, batch))  # (S, M, N)
        return xp.reshape(y, batch + y.shape[-2:])

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        xp = ops.array_namespace(g)
        da = db = None
        if b.ndim == 2:
            g2 = _rows(g, g.shape[-1])  # (N, N_out)
            if ctx.needs_input_grad[0]:
                da = xp.reshape(ops.kernel_for("matmul_nt", g)(g2, b),
                                g.shape[:-1] + (b.shape[0],))
                da = unbroadcast(da, a.shape)
            if ctx.needs_input_grad[1]:
                a2 = _rows(xp.broadcast_to(a, g.shape[:-1] + a.shape[-1:]), a.shape[-1])
                db = ops.kernel_for("matmul_tn", g)(a2, g2)
            return da, db
        g3 = xp.reshape(g, (math.prod(ctx.batch),) + g.shape[-2:])  # (S, M, N)
        if ctx.needs_input_grad[0]:
            da = ops.kernel_for("matmul_nt", g)(g3, _batched(b, ctx.batch))
            da = unbroadcast(xp.reshape(da, ctx.batch + da.shape[-2:]), a.shape)
        if ctx.needs_input_grad[1]:
            db = ops.kernel_for("matmul_tn", g)(_batched(a, ctx.batch), g3)
            db = unbroadcast(xp.reshape(db, ctx.batch + db.shape[-2:]), b.shape)
        return da, db


def matmul(a, b):
    return MatMul.apply(a, b)


class LinearOp(Function):
    name, formula = "linear", "d(x W^T + b) = dY W, dY^T x, sum(dY)"

    @staticmethod
    def forward(ctx, x, w, b=None):
        if w.ndim != 2 or x.shape[-1:] != w.shape[1:]:
            raise ValueError(f"linear: input {x.shape} does not fit weight {w.shape} "
                             f"(weight is (out_features, in_features))")
        if b is not None and b.shape != w.shape[:1]:
            raise ValueError(f"linear: bias {b.shape} does not match weight {w.shape}")
        x2 = _rows(x, w.shape[1])  # (N, in)
        ctx.save_for_backward(x2, w)
        ctx.x_shape = x.shape
        y = ops.kernel_for("linear", x)(x2, w, b)  # (N, out); the bias inside the product
        return ops.array_namespace(y).reshape(y, x.shape[:-1] + (w.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x2, w = ctx.saved
        xp = ops.array_namespace(g)
        g2 = _rows(g, w.shape[0])  # (N, out)
        need = ctx.needs_input_grad
        dx = xp.reshape(ops.kernel_for("matmul", g)(g2, w), ctx.x_shape) if need[0] else None
        dw = ops.kernel_for("matmul_tn", g)(g2, x2) if need[1] else None
        db = ops.kernel_for("sum_rows", g)(g2) if len(need) > 2 and need[2] else None
        return dx, dw, db


def linear(x, weight, bias=None):
    """x @ weight.T + bias, with weight (out_features, in_features) as in PyTorch."""
    return LinearOp.apply(x, weight) if bias is None else LinearOp.apply(x, weight, bias)
