"""The kernel benchmark cases: inputs, the registry kernels each one calls, work done, torch twin.

A case's `call(k, x)` takes `k` (kernel name -> function, for one backend) and inputs `x`
(a dict made by `make(rng)`) and returns a no-argument function that runs the case once and
returns its output arrays. `torch(x)` does the same with PyTorch CPU eager. Throughput is
GFLOP/s when `flops` is set, else GB/s from `nbytes`, the least traffic the kernels need.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

F32 = np.float32
MATMUL_TARGET = 0.7  # numpy / ours: matmul may be up to 1/0.7 slower than OpenBLAS
SOFTMAX_TARGET = 1.5  # the targets, numpy / ours
NORM_LOSS_TARGET = 2.0  # layer_norm and cross_entropy
DEFAULT_TARGET = 1.0  # every other kernel should beat its numpy reference


@dataclass
class Case:
    kernel: str                    # row label
    shape: str
    names: tuple                   # registry kernel names it calls
    make: Callable                 # rng -> dict of inputs
    call: Callable                 # (k, inputs) -> thunk returning output arrays
    flops: float = 0.0
    nbytes: float = 0.0
    torch: Callable | None = None  # inputs -> thunk, torch CPU eager
    target: float = DEFAULT_TARGET
    note: str = ""
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)  # more facts for the JSON rows


def _randn(rng, *shape):
    return rng.standard_normal(shape).astype(F32)


def _t(a, grad=False):
    """A torch tensor sharing memory with numpy array a (torch imported lazily)."""
    import torch
    return torch.from_numpy(a).requires_grad_(grad)


# ---------------------------------------------------------------- matmul

def _matmul_case(form, a_shape, b_shape, label=""):
    def make(rng):
        return {"a": _randn(rng, *a_shape), "b": _randn(rng, *b_shape)}

    def call(k, x):
        fn = k(form)
        return lambda: fn(x["a"], x["b"])

    def torch_call(x):
        a, b = _t(x["a"]), _t(x["b"])
        if form == "matmul_nt":
            return lambda: a @ b.transpose(-1, -2)
        if form == "matmul_tn":
            return lambda: a.transpose(-1, -2) @ b
        return lambda: a @ b

    batch = a_shape[0] if len(a_shape) == 3 else 1
    m, kk = (a_shape[-1], a_shape[-2]) if form == "matmul_tn" else a_shape[-2:]
    n = b_shape[-2] if form == "matmul_nt" else b_shape[-1]
    shape = f"{a_shape}@{b_shape}".replace(" ", "")
    return Case(form, shape, (form,), make, call, flops=2.0 * batch * m * n * kk,
                torch=torch_call, target=MATMUL_TARGET, note=label)


def matmul_cases():
    cases = [_matmul_case("matmul", (n, n), (n, n)) for n in (256, 512, 1024)]
    # Tiny model (B*T = 2048 rows, C = 64): qkv, MLP up, MLP down; then each backward pair:
    # dX = dY @ W^T (NT) and dW = X^T @ dY (TN).
    for m, kk, n, label in ((2048, 64, 192, "tiny qkv"), (2048, 64, 256, "tiny fc"),
                            (2048, 256, 64, "tiny proj")):
        cases.append(_matmul_case("matmul", (m, kk), (kk, n), label))
        cases.append(_matmul_case("matmul_nt", (m, n), (kk, n), label + " dX"))
        cases.append(_matmul_case("matmul_tn", (m, kk), (m, n), label + " dW"))
    cases.append(_matmul_case("matmul", (128, 64, 16), (128, 16, 64), "tiny scores"))
    return cases


# ---------------------------------------------------------------- row-wise kernels

def _softmax_case(rows, cols):
    def make(rng):
        return {"x": _randn(rng, rows, cols), "dy": _randn(rng, rows, cols)}

    def call(k, x):
        fwd, bwd = k("softmax"), k("softmax_backward")

        def run():
            y = fwd(x["x"])
            return y, bwd(y, x["dy"])
        return run

    def torch_call(x):
        import torch
        xt, dy = _t(x["x"], grad=True), _t(x["dy"])
        return lambda: torch.autograd.grad(torch.softmax(xt, -1), xt, dy)
    return Case("softmax fwd+bwd", f"({rows},{cols})", ("softmax", "softmax_backward"),
                make, call, nbytes=5.0 * rows * cols * 4, torch=torch_call,
                target=SOFTMAX_TARGET)


def _layer_norm_case(rows, cols):
    def make(rng):
        return {"x": _randn(rng, rows, cols), "w": 1 + 0.1 * _randn(rng, cols),
                "b": _randn(rng, cols), "dy": _randn(rng, rows, cols)}

    def call(k, x):
        fwd, bwd = k("layer_norm"), k("layer_norm_backward")

        def run():
            y, mean, rstd = fwd(x["x"], x["w"], x["b"], 1e-5)
            return (y,) + tuple(bwd(x["dy"], x["x"], x["w"], mean, rstd))
        return run

    def torch_call(x):
        import torch
        xt, w, b = _t(x["x"], True), _t(x["w"], True), _t(x["b"], True)
        dy = _t(x["dy"])

        def run():
            y = torch.nn.functional.layer_norm(xt, (cols,), w, b, 1e-5)
            return torch.autograd.grad(y, (xt, w, b), dy)
        return run
    return Case("layer_norm fwd+bwd", f"({rows},{cols})", ("layer_norm", "layer_norm_backward"),
                make, call, nbytes=5.0 * rows * cols * 4, torch=torch_call,
                target=NORM_LOSS_TARGET)


def _cross_entropy_case(rows, vocab):
    def make(rng):
        return {"logits": _randn(rng, rows, vocab),
                "targets": rng.integers(0, vocab, size=rows, dtype=np.int64)}

    def call(k, x):
        fwd, bwd = k("cross_entropy"), k("cross_entropy_backward")

        def run():
            loss, lse = fwd(x["logits"], x["targets"], -100)
            return loss, bwd(x["logits"], x["targets"], lse, -100, 1.0)
        return run

    def torch_call(x):
        import torch
        logits, targets = _t(x["logits"], True), torch.from_numpy(x["targets"])
        return lambda: torch.autograd.grad(
            torch.nn.functional.cross_entropy(logits, targets), logits)
    return Case("cross_entropy fwd+bwd", f"({rows},{vocab})",
                ("cross_entropy", "cross_entropy_backward"), make, call,
                nbytes=3.0 * rows * vocab * 4, torch=torch_call, target=NORM_LOSS_TARGET)


def _gelu_case(rows, cols):
    def make(rng):
        return {"x": _randn(rng, rows, cols), "dy": _randn(rng, rows, cols)}

    def call(k, x):
        fwd, bwd = k("gelu"), k("gelu_backward")
        return lambda: (fwd(x["x"]), bwd(x["x"], x["dy"]))

    def torch_call(x):
        import torch
        xt, dy = _t(x["x"], True), _t(x["dy"])
        return lambda: torch.autograd.grad(
            torch.nn.functional.gelu(xt, approximate="tanh"), xt, dy)
    return Case("gelu fwd+bwd", f"({rows},{cols})", ("gelu", "gelu_backward"), make, call,
                nbytes=5.0 * rows * cols * 4, torch=torch_call)


def rowwise_cases():
    return ([_softmax_case(*s) for s in ((8192, 64), (16384, 128), (4096, 1024))]
            + [_layer_norm_case(*s) for s in ((2048, 64), (8192, 128), (4096, 1024))]
            + [_cross_entropy_case(*s) for s in ((2048, 64), (8192, 1024), (2048, 8192))]
            + [_gelu_case(*s) for s in ((2048, 256), (8192, 1024))])


# ---------------------------------------------------------------- attention

def _attention_case(label, b, h, t, d):
    scale = 1.0 / math.sqrt(d)

    def make(rng):
        return {name: _randn(rng, b, h, t, d) for name in ("q", "k", "v", "do")}

    def call(k, x):
        fwd, bwd = k("attention"), k("attention_backward")

        def run():
            o, lse = fwd(x["q"], x["k"], x["v"], True, scale, None)
            grads = bwd(x["do"], x["q"], x["k"], x["v"], o, lse, True, scale, None)
            return (o, lse) + tuple(grads)
        return run

    def torch_call(x):
        import torch
        q, kk, v = (_t(x[n], True) for n in ("q", "k", "v"))
        do = _t(x["do"])

        def run():
            o = torch.nn.functional.scaled_dot_product_attention(q, kk, v, is_causal=True,
                                                                 scale=scale)
            return torch.autograd.grad(o, (q, kk, v), do)
        return run
    # FlashAttention's convention: forward 4*B*H*T*T*D, halved by the causal mask;
    # backward 2.5x forward.
    flops = 3.5 * 4.0 * b * h * t * t * d / 2
    # Largest intermediate: the reference materialises (B, H, T, T) float32 scores (and
    # several arrays that size); the fused form keeps one block of keys per row, no T x T.
    scores = b * h * t * t * 4
    note = f"{label}; ref B*H*T*T scores {scores / 2**20:.0f} MiB, fused none"
    extra = {"ref_largest_intermediate_bytes": scores, "ours_largest_intermediate": "no T x T"}
    return Case("attention fwd+bwd", f"B{b} H{h} T{t} D{d} causal",
                ("attention", "attention_backward"), make, call, flops=flops, torch=torch_call,
                note=note, extra=extra)


def attention_cases():
    return [_attention_case("tiny", 32, 4, 64, 16), _attention_case("small", 16, 4, 128, 32),
            _attention_case("long", 2, 4, 1024, 64)]


# ---------------------------------------------------------------- embedding

def _embedding_cases(batch, t, c, vocab, label):
    def make(rng):
        return {"w": _randn(rng, vocab, c), "dout": _randn(rng, batch, t, c),
                "idx": rng.integers(0, vocab, size=(batch, t), dtype=np.int64)}

    def call_fwd(k, x):
        fn = k("embedding")
        return lambda: fn(x["w"], x["idx"])

    def call_bwd(k, x):
        fn = k("embedding_backward")
        return lambda: fn(x["idx"], x["dout"], vocab)

    def torch_fwd(x):
        import torch
        w, idx = _t(x["w"]), torch.from_numpy(x["idx"])
        return lambda: torch.nn.functional.embedding(idx, w)

    def torch_bwd(x):
        import torch
        idx, dout = torch.from_numpy(x["idx"]).reshape(-1), _t(x["dout"]).reshape(-1, c)
        return lambda: torch.zeros(vocab, c).index_add_(0, idx, dout)
    shape = f"idx ({batch},{t}) C={c} V={vocab}"
    n = batch * t
    return [Case("embedding", shape, ("embedding",), make, call_fwd,
                 nbytes=(2.0 * n * c * 4 + n * 8), torch=torch_fwd, note=label),
            Case("embedding_backward", shape, ("embedding_backward",), make, call_bwd,
                 nbytes=(n * c * 4 + n * 8 + vocab * c * 4), torch=torch_bwd, note=label)]


def embedding_cases():
    return (_embedding_cases(32, 64, 64, 64, "tiny") + _embedding_cases(16, 128, 128, 64, "small")
            + _embedding_cases(64, 256, 256, 50257, "GPT-2 vocab"))


# ---------------------------------------------------------------- AdamW

# The tiny model's parameters (GPTConfig.tiny()): wte, wpe, 2 blocks, final LN, head.
_BLOCK = [(64,), (64,), (64, 192), (192,), (64, 64), (64,),
          (64,), (64,), (64, 256), (256,), (256, 64), (64,)]
TINY_PARAM_SHAPES = [(64, 64), (64, 64)] + _BLOCK * 2 + [(64,), (64,), (64, 64)]
HYPER = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1}


def _adamw_case(shapes, label):
    def make(rng):
        return {"state": [(_randn(rng, *s), _randn(rng, *s), np.zeros(s, F32),
                           np.zeros(s, F32)) for s in shapes], "step": [0]}

    def call(k, x):
        fn = k("adamw_update")

        def run():
            x["step"][0] += 1
            for p, g, m, v in x["state"]:
                fn(p, g, m, v, step=x["step"][0], **HYPER)
            return [a for p, _, m, v in x["state"] for a in (p, m, v)]
        return run

    def torch_call(x):
        import torch
        params = []
        for p, g, _, _ in x["state"]:
            params.append(_t(p, True))
            params[-1].grad = _t(g)
        opt = torch.optim.AdamW(params, lr=HYPER["lr"], betas=(HYPER["beta1"], HYPER["beta2"]),
                                eps=HYPER["eps"], weight_decay=HYPER["weight_decay"],
                                fused=True)
        return opt.step
    size = sum(math.prod(s) for s in shapes)
    shape = f"{len(shapes)} tensors, {size:,} elements" if len(shapes) > 1 else f"({size:,},)"
    return Case("adamw_update", shape, ("adamw_update",), make, call, nbytes=7.0 * size * 4,
                torch=torch_call, note=label)


def adamw_cases():
    return [_adamw_case([(4096,)], "tiny wte"), _adamw_case([(12288,)], "tiny qkv"),
            _adamw_case(TINY_PARAM_SHAPES, "tiny model step"),
            _adamw_case([(100_000,)], ""), _adamw_case([(1_000_000,)], "")]


def all_cases():
    """Every benchmark case, in table order."""
    return (matmul_cases() + rowwise_cases() + attention_cases() + embedding_cases()
            + adamw_cases())
