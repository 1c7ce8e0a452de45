"""Neural-network Functions on fused kernels: softmax, log-softmax, cross-entropy, layer norm,
embedding lookup and dropout."""

import ops
from engine.autograd import Function


class Softmax(Function):
    floating = True
    name, formula = "softmax", "d(softmax) = y * (dy - sum(dy * y))"

    @staticmethod
    def forward(ctx, x):
        y = ops.kernel_for("softmax", x)(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return ops.kernel_for("softmax_backward", g)(ctx.saved[0], g)


class LogSoftmax(Function):
    floating = True
    name, formula = "log_softmax", "d(log_softmax) = dy - exp(y) * sum(dy)"

    @staticmethod
    def forward(ctx, x):
        y = ops.kernel_for("log_softmax", x)(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return ops.kernel_for("log_softmax_backward", g)(ctx.saved[0], g)


class CrossEntropy(Function):
    name, formula = "cross_entropy", "d(CE) = (softmax(z) - onehot(t)) / n_counted"

    @staticmethod
    def forward(ctx, logits, targets, ignore_index=-100):
        loss, lse = ops.kernel_for("cross_entropy", logits)(logits, targets, ignore_index)
        ctx.save_for_backward(logits, targets, lse)
        ctx.ignore_index = ignore_index
        return ops.array_namespace(logits).asarray(loss, dtype=logits.dtype, device=logits.device)

    @staticmethod
    def backward(ctx, g):
        logits, targets, lse = ctx.saved
        backward = ops.kernel_for("cross_entropy_backward", logits)
        return backward(logits, targets, lse, ctx.ignore_index, g)  # g: 0-d, stays on device


class LayerNormOp(Function):
    floating = True
    name, formula = "layer_norm", "d(LN) = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))"

    @staticmethod
    def forward(ctx, x, weight, bias, eps=1e-5):
        c = x.shape[-1:]
        if weight.shape != c or bias.shape != c:
            raise ValueError(f"layer_norm: input {x.shape} needs weight and bias of shape {c}, "
                             f"got {weight.shape} and {bias.shape}")
        y, mean, rstd = ops.kernel_for("layer_norm", x)(x, weight, bias, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, g):
        return ops.kernel_for("layer_norm_backward", g)(g, *ctx.saved)


class EmbeddingOp(Function):
    name, formula = "embedding", "d(W[idx]) = scatter-add dy into rows idx"

    @staticmethod
    def forward(ctx, weight, idx):
        ctx.save_for_backward(idx)
        ctx.rows = weight.shape[0]
        return ops.kernel_for("embedding", weight)(weight, idx)

    @staticmethod
    def backward(ctx, g):
        return ops.kernel_for("embedding_backward", g)(ctx.saved[0], g, ctx.rows)


class DropoutOp(Function):
    name, formula = "dropout", "d(dropout a) = mask / (1 - p) * da"

    @staticmethod
    def forward(ctx, x, p, generator):
        dtype = ops.device_of(x).dtype_name(x.dtype)
        scale = ops.kernel_for("dropout_mask", x)(x.shape, p, dtype, generator)  # 0 or 1/(1-p)
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]
