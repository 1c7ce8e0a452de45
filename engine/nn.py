"""Layers and a GPT built on engine.functional, ordered bottom-up as in nanoGPT."""

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

import engine.functional as F
from engine.module import Module, ModuleDict, ModuleList, as_rng, new_parameter
from engine.tensor import Tensor

__all__ = [
    "GPT", "MLP", "Dropout", "Embedding", "GPTConfig", "KVCache", "LayerNorm", "Linear",
    "Module", "ModuleDict", "ModuleList", "MultiHeadAttention", "TransformerBlock",
]


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features) as in PyTorch.

    Init: normal(0, std) when `std` is given, else PyTorch's uniform(+-1/sqrt(in_features));
    the bias starts at zero when `std` is given, else uniform like the weight.
    """

    def __init__(self, in_features, out_features, bias=True, *, rng=None, std=None,
                 dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        self.in_features, self.out_features = in_features, out_features
        if std is None:
            bound = 1.0 / math.sqrt(in_features)
            w = rng.uniform(-bound, bound, (out_features, in_features))
            b = rng.uniform(-bound, bound, out_features)
        else:
            w = rng.normal(0.0, std, (out_features, in_features))
            b = np.zeros(out_features)
        self.weight = new_parameter(w, dtype)
        self.bias = new_parameter(b, dtype) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in={self.in_features}, out={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: weight (num_embeddings, embedding_dim), rows drawn from normal(0, std)."""

    def __init__(self, num_embeddings, embedding_dim, *, rng=None, std=1.0, dtype=np.float32):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        w = as_rng(rng).normal(0.0, std, (num_embeddings, embedding_dim))
        self.weight = new_parameter(w, dtype)

    def forward(self, idx):
        return F.embedding(idx, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalise over the last axis, then scale by weight (ones) and shift by bias (zeros)."""

    def __init__(self, ndim, bias=True, eps=1e-5, dtype=np.float32):
        super().__init__()
        self.ndim, self.eps = ndim, eps
        self.weight = new_parameter(np.ones(ndim), dtype)
        self.bias = new_parameter(np.zeros(ndim), dtype) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight, self.bias, eps=self.eps)  # bias None: no shift

    def extra_repr(self):
        return f"{self.ndim}, eps={self.eps}, bias={self.bias is not None}"


class Dropout(Module):
    """Zero each element with probability p in training mode (scaling the rest by 1/(1-p))."""

    def __init__(self, p=0.0, *, rng=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.rng = None if rng is None else as_rng(rng)  # None: the engine's default generator

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training, generator=self.rng)

    def extra_repr(self):
        return f"p={self.p}"


class KVCache:
    """Keys and values of one attention layer for incremental decoding (inference only).

    `k`, `v`: preallocated (B, nh, max_len, hs) arrays; positions [0, length) are filled.
    Gradients do not flow into cached entries.
    """

    def __init__(self, batch_size, n_head, max_len, head_size, dtype=np.float32):
        self.k = np.zeros((batch_size, n_head, max_len, head_size), dtype=dtype)
        self.v = np.zeros_like(self.k)
        self.length = 0

    @property
    def max_len(self):
        return self.k.shape[2]

    def append(self, k, v):
        """Store new keys/values (B, nh, T, hs); return all cached ones, each (B, nh, L, hs)."""
        t = k.shape[2]
        if self.length + t > self.max_len:
            raise ValueError(f"KVCache full: {self.length} cached + {t} new > {self.max_len}")
        self.k[:, :, self.length:self.length + t] = k
        self.v[:, :, self.length:self.length + t] = v
        self.length += t
        return self.k[:, :, :self.length], self.v[:, :, :self.length]

    def reset(self):
        self.length = 0


class MultiHeadAttention(Module):
    """Multi-head self-attention with one fused QKV projection (c_attn) and an output one.

    forward(x, need_weights=False, kv_cache=None): x (B, T, C) -> y (B, T, C), or
    (y, weights (B, nh, T, Tk)) when need_weights. With a KVCache, x holds the T newest
    tokens; their keys/values are appended and the queries attend over everything cached.
    """

    def __init__(self, n_embd, n_head, *, causal=True, bias=True, dropout=0.0, rng=None,
                 std=None, proj_std=None, dtype=np.float32):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} is not divisible by n_head={n_head}")
        rng = as_rng(rng)
        self.n_embd, self.n_head, self.causal, self.dropout = n_embd, n_head, causal, dropout
        self.c_attn = Linear(n_embd, 3 * n_embd, bias, rng=rng, std=std, dtype=dtype)
        self.c_proj = Linear(n_embd, n_embd, bias, rng=rng, std=proj_std, dtype=dtype)
        self.attn_dropout = Dropout(dropout, rng=rng.spawn(1)[0])
        self.resid_dropout = Dropout(dropout, rng=rng.spawn(1)[0])

    def forward(self, x, need_weights=False, kv_cache=None):
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        q, k, v = F.split(self.c_attn(x), 3, axis=2)  # each (B, T, C)
        q = q.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        if kv_cache is not None:
            k_all, v_all = kv_cache.append(k.data, v.data)  # each (B, nh, L, hs), L >= T
            k, v = Tensor(k_all), Tensor(v_all)
        weights = None
        if self.training and self.dropout > 0.0:
            # Dropout on the probabilities needs them materialised: the composite path.
            weights = F.attention_weights(q, k, causal=self.causal)  # (B, nh, T, L)
            y = self.attn_dropout(weights) @ v  # (B, nh, T, hs)
        else:
            y = F.scaled_dot_product_attention(q, k, v, causal=self.causal)  # (B, nh, T, hs)
            if need_weights:
                weights = F.attention_weights(q, k, causal=self.causal)  # (B, nh, T, L)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, nh, hs) -> (B, T, C)
        y = self.resid_dropout(self.c_proj(y))
        return (y, weights) if need_weights else y

    def extra_repr(self):
        return f"n_embd={self.n_embd}, n_head={self.n_head}, causal={self.causal}"


class MLP(Module):
    """Linear (C -> 4C), GELU (tanh form), Linear (4C -> C), dropout."""

    def __init__(self, n_embd, *, bias=True, dropout=0.0, rng=None, std=None, proj_std=None,
                 dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        self.c_fc = Linear(n_embd, 4 * n_embd, bias, rng=rng, std=std, dtype=dtype)
        self.c_proj = Linear(4 * n_embd, n_embd, bias, rng=rng, std=proj_std, dtype=dtype)
        self.dropout = Dropout(dropout, rng=rng.spawn(1)[0])

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))  # (B, T, C)


class TransformerBlock(Module):
    """Pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, n_embd, n_head, *, bias=True, dropout=0.0, rng=None, std=None,
                 proj_std=None, dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        kw = {"bias": bias, "dropout": dropout, "rng": rng, "std": std, "proj_std": proj_std,
              "dtype": dtype}
        self.ln_1 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.attn = MultiHeadAttention(n_embd, n_head, causal=True, **kw)
        self.ln_2 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.mlp = MLP(n_embd, **kw)

    def forward(self, x, need_weights=False, kv_cache=None):
        a = self.attn(self.ln_1(x), need_weights=need_weights, kv_cache=kv_cache)
        a, weights = a if need_weights else (a, None)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return (x, weights) if need_weights else x


@dataclass
class GPTConfig:
    """GPT hyper-parameters; `tiny()` and `small()` are the canonical configs (DESIGN.md)."""

    vocab_size: int
    block_size: int
    n_embd: int
    n_head: int
    n_layer: int
    dropout: float = 0.0
    bias: bool = True
    tie_weights: bool = False

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")

    @classmethod
    def tiny(cls, **overrides):
        """vocab 64, block 64, n_embd 64, 4 heads, 2 layers: 112,384 params (untied head)."""
        base = {"vocab_size": 64, "block_size": 64, "n_embd": 64, "n_head": 4, "n_layer": 2}
        return cls(**{**base, **overrides})

    @classmethod
    def small(cls, **overrides):
        """vocab 64, block 128, n_embd 128, 4 heads, 4 layers: 826,112 params (untied head)."""
        base = {"vocab_size": 64, "block_size": 128, "n_embd": 128, "n_head": 4, "n_layer": 4}
        return cls(**{**base, **overrides})

    @classmethod
    def from_name(cls, name, **overrides):
        if name not in ("tiny", "small"):
            raise ValueError(f"unknown config {name!r}; use 'tiny' or 'small'")
        return getattr(cls, name)(**overrides)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"GPTConfig.from_dict: unknown keys {unknown}")
        return cls(**d)


class GPT(Module):
    """A GPT language model (nanoGPT layout): forward(idx, targets=None) -> (logits, loss).

    Construction is reproducible: `rng` is an int seed or np.random.Generator (None: the
    engine's default generator, see engine.manual_seed). Init as GPT-2: Linear/Embedding weights normal(0, 0.02), residual projections
    (attn.c_proj, mlp.c_proj) normal(0, 0.02/sqrt(2 n_layer)), biases 0, LayerNorm 1 and 0.
    Parameter counts: tiny 112,384 (108,288 tied), small 826,112 (817,920 tied).

    State dict names and shapes (C = n_embd, V = vocab_size, weights (out, in) as PyTorch):
      transformer.wte.weight (V, C)            transformer.wpe.weight (block_size, C)
      transformer.h.{i}.ln_1.weight (C,)       transformer.h.{i}.ln_1.bias (C,)
      transformer.h.{i}.attn.c_attn.weight (3C, C)  transformer.h.{i}.attn.c_attn.bias (3C,)
      transformer.h.{i}.attn.c_proj.weight (C, C)   transformer.h.{i}.attn.c_proj.bias (C,)
      transformer.h.{i}.ln_2.weight (C,)       transformer.h.{i}.ln_2.bias (C,)
      transformer.h.{i}.mlp.c_fc.weight (4C, C)     transformer.h.{i}.mlp.c_fc.bias (4C,)
      transformer.h.{i}.mlp.c_proj.weight (C, 4C)   transformer.h.{i}.mlp.c_proj.bias (C,)
      transformer.ln_f.weight (C,)             transformer.ln_f.bias (C,)
      lm_head.weight (V, C)   (no bias; with tie_weights the same array as wte, both keys kept)
    Bias entries are absent when config.bias is False.

    Incremental decoding: `cache = model.make_cache(B)`, then `model(idx, kv_cache=cache)`
    feeds the newest tokens only; positions continue from the cache length (it must stay
    <= block_size). See engine.generate.
    """

    def __init__(self, config, *, rng=None, dtype=np.float32):
        super().__init__()
        self.config = config
        rng = as_rng(rng)
        c = config
        kw = {"bias": c.bias, "dropout": c.dropout, "rng": rng, "std": 0.02,
              "proj_std": 0.02 / math.sqrt(2 * c.n_layer), "dtype": dtype}
        self.transformer = ModuleDict({
            "wte": Embedding(c.vocab_size, c.n_embd, rng=rng, std=0.02, dtype=dtype),
            "wpe": Embedding(c.block_size, c.n_embd, rng=rng, std=0.02, dtype=dtype),
            "drop": Dropout(c.dropout, rng=rng.spawn(1)[0]),
            "h": ModuleList([TransformerBlock(c.n_embd, c.n_head, **kw)
                             for _ in range(c.n_layer)]),
            "ln_f": LayerNorm(c.n_embd, bias=c.bias, dtype=dtype),
        })
        self.lm_head = Linear(c.n_embd, c.vocab_size, bias=False, rng=rng, std=0.02, dtype=dtype)
        if c.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx, targets=None, kv_cache=None):
        """idx int (B, T) -> (logits (B, T, V), loss or None); targets int (B, T), -100 ignored.

        With `kv_cache` (from make_cache), idx holds only tokens not yet cached.
        """
        idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
        if idx.ndim != 2 or idx.dtype.kind not in "iu":
            raise ValueError(f"GPT: idx must be a 2-D integer array (B, T), got "
                             f"shape {idx.shape} dtype {idx.dtype}")
        B, T = idx.shape
        start = kv_cache[0].length if kv_cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"GPT: sequence length {start + T} (cached {start} + new {T}) "
                             f"exceeds block_size {self.config.block_size}")
        pos = np.arange(start, start + T, dtype=np.int64)  # (T,)
        tr = self.transformer
        x = tr.drop(tr.wte(idx.astype(np.int64)) + tr.wpe(pos))  # (B, T, C) + (T, C)
        for i, block in enumerate(tr.h):
            x = block(x, kv_cache=None if kv_cache is None else kv_cache[i])  # (B, T, C)
        logits = self.lm_head(tr.ln_f(x))  # (B, T, V)
        if targets is None:
            return logits, None
        targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
        if targets.shape != (B, T):
            raise ValueError(f"GPT: targets shape {targets.shape} != idx shape {(B, T)}")
        V = logits.shape[-1]
        loss = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T).astype(np.int64))
        return logits, loss

    def make_cache(self, batch_size):
        """One empty KVCache per layer, each (batch_size, n_head, block_size, head_size)."""
        c = self.config
        dtype = self.transformer.wte.weight.data.dtype
        return [KVCache(batch_size, c.n_head, c.block_size, c.n_embd // c.n_head, dtype)
                for _ in range(c.n_layer)]

    def attention_maps(self, idx):
        """Attention probabilities per layer, each numpy (B, nh, T, T), for visualisation."""
        from engine import no_grad

        idx = np.asarray(idx, dtype=np.int64)
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"GPT: sequence length {T} exceeds block_size "
                             f"{self.config.block_size}")
        maps = []
        with no_grad():
            tr = self.transformer
            x = tr.drop(tr.wte(idx) + tr.wpe(np.arange(T, dtype=np.int64)))  # (B, T, C)
            for block in tr.h:
                x, w = block(x, need_weights=True)  # w (B, nh, T, T)
                maps.append(w.data.copy())
        return maps

    def extra_repr(self):
        c = self.config
        return (f"vocab={c.vocab_size}, block={c.block_size}, n_embd={c.n_embd}, "
                f"n_head={c.n_head}, n_layer={c.n_layer}, tied={c.tie_weights}")
