"""Losses: cross-entropy (fused kernel, or composed for smoothing, probabilities and other
reductions), negative log-likelihood, mean squared error and binary cross-entropy with logits.
The fused cross-entropy Function is here; the other forms are composed from Functions, so they
need no backward of their own."""

import ops
from engine.autograd import Function, is_tensor, make_tensor
from engine.functions.activations import LogSoftmax, Softplus
from engine.functions.args import _any, _device, _int_array
from engine.functions.arithmetic import Mul, Neg, Sub
from engine.functions.convert import Cast
from engine.functions.indexing import TakeAlongAxis, Where
from engine.functions.reduce import Mean, Sum
from engine.functions.shape import Permute, Reshape

IGNORE_INDEX = -100  # cross_entropy and nll_loss leave out rows whose target is this (PyTorch)
REDUCTIONS = ("mean", "sum", "none")


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


def _classes_last(op, x):
    """(N, C, d1, ...) -> (N, d1, ..., C); (C,) and (N, C) stay."""
    if x.ndim == 0:
        raise ValueError(f"{op}: input of shape {x.shape} has no class axis")
    if x.ndim <= 2:
        return x
    return Permute.apply(x, axes=(0,) + tuple(range(2, x.ndim)) + (1,))


def _reduce(op, loss, reduction, count=None):
    if reduction == "none":
        return loss
    total = Sum.apply(loss)
    if reduction == "sum":
        return total
    if count is None:
        return Mean.apply(loss)
    return Mul.apply(total, 1.0 / count if count else 0.0)  # no counted row: 0, as the kernel


def _check_reduction(op, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _class_targets(op, logp, targets, ignore_index):
    """Integer targets shaped like logp without its class axis (last), checked in range."""
    t = _int_array(op, "targets", targets, _device(logp))
    if t.shape != logp.shape[:-1]:
        what = "logits" if op == "cross_entropy" else "input"
        raise ValueError(f"{op}: {what} {logp.shape} must be (N, V) and targets (N,), got "
                         f"targets {t.shape}"
                         if logp.ndim <= 2 else
                         f"{op}: {what} of classes-last shape {logp.shape} needs targets of "
                         f"shape {logp.shape[:-1]}, got {t.shape}")
    n = logp.shape[-1]
    bad = (t != ignore_index) & ((t < 0) | (t >= n))
    if _any(bad):
        first = ops.to_host(t)[ops.to_host(bad)][0]
        raise IndexError(f"{op}: target {first} out of range for {n} classes "
                         f"(ignore_index is {ignore_index})")
    return t


def _picked_nll(logp, t, ignore_index):
    """-logp[..., t] per row, 0 on ignored rows; and the boolean mask of counted rows."""
    xp = ops.array_namespace(t)
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)
    picked = TakeAlongAxis.apply(logp, idx=safe[..., None], axis=logp.ndim - 1)
    return Neg.apply(Reshape.apply(picked, shape=t.shape)), valid


def nll_loss(log_probs, targets, ignore_index=IGNORE_INDEX, reduction="mean"):
    """Negative log-likelihood of integer targets under log-probabilities (N, C) or
    (N, C, d1, ...); the mean is over rows whose target is not ignore_index (PyTorch)."""
    _check_reduction("nll_loss", reduction)
    logp = _classes_last("nll_loss", log_probs)
    t = _class_targets("nll_loss", logp, targets, ignore_index)
    nll, valid = _picked_nll(logp, t, ignore_index)
    loss = Where.apply(make_tensor(valid), nll, 0.0)
    return _reduce("nll_loss", loss, reduction, _count(valid))


def _count(valid):
    xp = ops.array_namespace(valid)
    return int(xp.sum(xp.astype(valid, xp.int64))) if valid.size else 0


def cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy of `targets` under `logits` (N, C), (C,) or (N, C, d1, ...), as PyTorch:
    integer class targets (N, d1, ...) or class probabilities shaped like the logits;
    `label_smoothing` mixes the target with the uniform distribution; `reduction` "mean"
    (over counted rows, leaving out targets equal to ignore_index), "sum" or "none". The
    common case (N, C) with integer targets and a mean is one fused kernel."""
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    device = _device(logits)
    if not device.xp.isdtype(logits.dtype, "real floating"):  # integer logits: a float loss
        logits = Cast.apply(logits, dtype="float32")  # for every reduction (as log_softmax)
    probs = is_tensor(targets) and device.xp.isdtype(targets.dtype, "real floating")
    if not probs and logits.ndim == 2 and reduction == "mean" and label_smoothing == 0.0:
        t = _class_targets("cross_entropy", logits, targets, ignore_index)
        return CrossEntropy.apply(logits, targets=t, ignore_index=ignore_index)
    logp = LogSoftmax.apply(_classes_last("cross_entropy", logits))
    n = logp.shape[-1]
    if probs:
        if tuple(targets.shape) != tuple(logits.shape):
            raise ValueError(f"cross_entropy: probability targets {targets.shape} must have "
                             f"the logits' shape {logits.shape}")
        q = _classes_last("cross_entropy", targets)
        if label_smoothing:
            q = Mul.apply(q, 1.0 - label_smoothing) + label_smoothing / n
        loss = Neg.apply(Sum.apply(Mul.apply(q, logp), axis=-1))
        return _reduce("cross_entropy", loss, reduction)
    t = _class_targets("cross_entropy", logp, targets, ignore_index)
    loss, valid = _picked_nll(logp, t, ignore_index)
    if label_smoothing:
        uniform = Neg.apply(Mean.apply(logp, axis=-1))
        loss = Mul.apply(loss, 1.0 - label_smoothing) + Mul.apply(uniform, label_smoothing)
    loss = Where.apply(make_tensor(valid), loss, 0.0)
    return _reduce("cross_entropy", loss, reduction, _count(valid))


def mse_loss(input, target, reduction="mean"):
    """Mean squared error (input - target)^2, reduced by "mean", "sum" or "none"."""
    _check_reduction("mse_loss", reduction)
    if tuple(input.shape) != tuple(getattr(target, "shape", input.shape)):
        raise ValueError(f"mse_loss: input {input.shape} and target {target.shape} differ "
                         "in shape")
    d = Sub.apply(input, target)
    return _reduce("mse_loss", Mul.apply(d, d), reduction)


def binary_cross_entropy_with_logits(logits, targets, reduction="mean"):
    """-(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) = softplus(x) - x t, stably."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    if tuple(logits.shape) != tuple(getattr(targets, "shape", logits.shape)):
        raise ValueError(f"binary_cross_entropy_with_logits: logits {logits.shape} and "
                         f"targets {targets.shape} differ in shape")
    loss = Sub.apply(Softplus.apply(logits), Mul.apply(logits, targets))
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)

