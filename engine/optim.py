"""Optimizers (SGD, AdamW), a warmup + cosine learning-rate schedule and gradient clipping."""

import math

import numpy as np

import ops


def _as_groups(params, defaults):
    """Normalise a parameter list or a list of group dicts into group dicts with defaults."""
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    if isinstance(params[0], dict):
        groups = [{**defaults, **g, "params": list(g["params"])} for g in params]
    else:
        groups = [{**defaults, "params": params}]
    ids = [id(p) for g in groups for p in g["params"]]
    if len(ids) != len(set(ids)):
        raise ValueError("a parameter appears more than once in the optimizer's groups")
    return groups


class Optimizer:
    """Base: `param_groups` (dicts with "params", "lr", ...) and per-parameter `state`.

    State is keyed by the parameter's position in the flattened groups, so `state_dict()`
    is plain data: {"param_groups": [hyper-parameters + "params" positions],
    "state": {position: {name: numpy array or int}}}.
    """

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.param_groups = _as_groups(params, defaults)
        self.state = {}

    def _indexed(self):
        """Yield (position, group, parameter) for every parameter with a gradient."""
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield i, group, p
                i += 1

    def zero_grad(self):
        """Drop the gradient of every parameter (grad becomes None)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def state_dict(self):
        """Hyper-parameters (JSON-able scalars) and state (host numpy copies, int counts)."""
        groups, start = [], 0
        for g in self.param_groups:
            n = len(g["params"])
            hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()
                     if k != "params"}
            groups.append({**hyper, "params": list(range(start, start + n))})
            start += n
        state = {i: {k: (v if isinstance(v, int) else np.array(ops.to_host(v)))
                     for k, v in s.items()} for i, s in self.state.items()}
        return {"param_groups": groups, "state": state}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and state saved by `state_dict` (group sizes must match)."""
        saved = state_dict["param_groups"]
        sizes = [len(g["params"]) for g in self.param_groups]
        if [len(g["params"]) for g in saved] != sizes:
            raise ValueError(f"optimizer state has group sizes {[len(g['params']) for g in saved]}"
                             f", this optimizer has {sizes}")
        for group, g in zip(self.param_groups, saved):
            for k, v in g.items():
                if k != "params":
                    group[k] = tuple(v) if isinstance(v, list) else v
        params = [p for g in self.param_groups for p in g["params"]]
        self.state = {}
        for i, s in state_dict["state"].items():
            i = int(i)
            for k, v in s.items():
                if isinstance(v, np.ndarray) and v.shape != params[i].data.shape:
                    raise ValueError(f"optimizer state {i}.{k}: expected shape "
                                     f"{params[i].data.shape}, got {v.shape}")
            device = ops.device_of(params[i].data)
            self.state[i] = {k: (ops.to_device(np.array(v), device)
                                 if isinstance(v, np.ndarray) else int(v))
                             for k, v in s.items()}


class SGD(Optimizer):
    """SGD with optional momentum, L2 weight decay and Nesterov, as torch.optim.SGD.

    d = g + wd * p; buf = d (first step) else momentum * buf + d;
    d = d + momentum * buf (nesterov) or buf; p -= lr * d.
    """

    def __init__(self, params, lr=1e-2, momentum=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and momentum <= 0.0:
            raise ValueError("SGD: nesterov needs momentum > 0")
        super().__init__(params, {"lr": lr, "momentum": momentum,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def step(self):
        for i, group, p in self._indexed():
            d = p.grad
            if group["weight_decay"]:
                d = d + group["weight_decay"] * p.data
            mom = group["momentum"]
            if mom:
                buf = self.state.get(i, {}).get("momentum_buffer")
                if buf is None:
                    buf = ops.array_namespace(d).asarray(d, copy=True)
                else:
                    buf *= mom
                    buf += d
                self.state[i] = {"momentum_buffer": buf}
                d = d + mom * buf if group["nesterov"] else buf
            p.data -= group["lr"] * d


class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), via the fused adamw_update kernel.

    Per parameter: m, v (same shape and dtype) and a 1-based step count. Pass the groups of
    `weight_decay_groups(model, wd)` so biases and LayerNorm weights are not decayed.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay})

    def step(self):
        kernels = {}  # device -> (update, contiguous), looked up once per step
        for i, group, p in self._indexed():
            device = ops.device_of(p.data)
            if device not in kernels:
                kernels[device] = (ops.kernel("adamw_update", device),
                                   ops.kernel("contiguous", device))
            update, contiguous = kernels[device]
            p.data = contiguous(p.data)  # the kernel updates in place
            if p.grad.dtype != p.data.dtype or p.grad.shape != p.data.shape:
                raise ValueError(f"AdamW: grad {p.grad.shape} {p.grad.dtype} does not match "
                                 f"parameter {p.data.shape} {p.data.dtype}")
            s = self.state.get(i)
            if s is None:
                xp = ops.array_namespace(p.data)
                s = self.state[i] = {"step": 0, "m": xp.zeros_like(p.data),
                                     "v": xp.zeros_like(p.data)}
            s["step"] += 1
            beta1, beta2 = group["betas"]
            update(p.data, contiguous(p.grad), s["m"], s["v"], float(group["lr"]),
                   float(beta1), float(beta2), float(group["eps"]),
                   float(group["weight_decay"]), int(s["step"]))


def weight_decay_groups(model, weight_decay):
    """Two groups as nanoGPT: decay for parameters with ndim >= 2 (Linear and Embedding
    weights), none for 1-D ones (biases, LayerNorm weights and biases)."""
    params = model.parameters()
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def cosine_lr(step, *, max_lr, min_lr, warmup_steps, max_steps):
    """Learning rate at 0-based `step`: linear warmup, then cosine decay to min_lr.

    step < warmup_steps: max_lr * (step + 1) / warmup_steps (so step 0 already moves);
    warmup_steps <= step <= max_steps: min_lr + (max_lr - min_lr) * (1 + cos(pi r)) / 2 with
    r = (step - warmup_steps) / (max_steps - warmup_steps); after max_steps: min_lr.
    """
    if not 0 <= warmup_steps <= max_steps:
        raise ValueError(f"cosine_lr: need 0 <= warmup_steps ({warmup_steps}) <= max_steps "
                         f"({max_steps})")
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return float(min_lr)
    ratio = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)


def set_lr(optimizer, lr):
    """Set the learning rate of every parameter group of `optimizer` to `lr`."""
    for group in optimizer.param_groups:
        group["lr"] = float(lr)


def clip_grad_norm(params, max_norm):
    """Scale gradients so their global L2 norm is at most max_norm; return the norm before.

    Squares are summed in float64. A non-finite norm is returned unchanged, and nothing is
    scaled: the caller (the training loop) decides what to do.
    """
    grads = [p for p in params if p.grad is not None]
    squares = ops.kernel_for("sum_squares", grads[0].grad)(tuple(p.grad for p in grads)) \
        if grads else 0.0  # one kernel for all gradients (one launch or two on a GPU)
    total = math.sqrt(float(squares))  # one scalar read
    if math.isfinite(total) and total > max_norm:
        scale = max_norm / total
        for p in grads:
            p.grad = p.grad * scale
    return total

