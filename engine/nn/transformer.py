"""Transformer building blocks: the MLP and the pre-LayerNorm block."""

import numpy as np

import engine.functional as F
from engine.nn.attention import MultiHeadAttention
from engine.nn.layers import Dropout, LayerNorm, Linear
from engine.nn.module import Module, as_rng


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
