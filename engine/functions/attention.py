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


class SelfAttentionQKV(Function):
    name = "self_attention"
    formula = "d(softmax(QK^T s) V) with Q, K, V the thirds of one (B, T, 3C) input"

    @staticmethod
    def forward(ctx, qkv, n_head=1, causal=True, scale=1.0):
        qkv = ops.kernel_for("contiguous", qkv)(qkv)
        y, lse = ops.kernel_for("attention_qkv", qkv)(qkv, n_head, causal, scale)
        ctx.save_for_backward(qkv, y, lse)
        ctx.n_head, ctx.causal, ctx.scale = n_head, causal, scale
        return y

    @staticmethod
    def backward(ctx, g):
        qkv, y, lse = ctx.saved
        g = ops.kernel_for("contiguous", g)(g)
        return ops.kernel_for("attention_qkv_backward", g)(g, qkv, y, lse, ctx.n_head,
                                                            ctx.causal, ctx.scale)
