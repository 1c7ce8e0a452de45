"""Fused scaled-dot-product attention: one Function, flash-style kernels behind ops.kernel."""

import ops
from engine.autograd import Function


class Attention(Function):
    name, formula = "attention", "d(softmax(QK^T s + M) V): flash backward from saved lse"

    @staticmethod
    def forward(ctx, q, k, v, mask=None, causal=False, scale=1.0):
        # q, k, v usually arrive as transposed views of the fused QKV projection; make them
        # contiguous once here, so the kernels' own copies are no-ops in forward and backward.
        contiguous = ops.kernel_for("contiguous", q)
        q, k, v = (contiguous(a) for a in (q, k, v))
        o, lse = ops.kernel_for("attention", q)(q, k, v, causal, scale, mask)
        ctx.save_for_backward(q, k, v, o, lse, mask)
        ctx.causal, ctx.scale = causal, scale
        return o

    @staticmethod
    def backward(ctx, g):
        q, k, v, o, lse, mask = ctx.saved
        dq, dk, dv = ops.kernel_for("attention_backward", g)(g, q, k, v, o, lse, ctx.causal,
                                                      ctx.scale, mask)
        return dq, dk, dv
