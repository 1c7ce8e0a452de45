"""Transformer building blocks: the MLP, the pre-LayerNorm block (causal for a decoder-only
model, bidirectional for an encoder) and the encoder-decoder's decoder block."""

import numpy as np

import engine.functional as F
from engine.nn.attention import CrossAttention, MultiHeadAttention
from engine.nn.layers import Dropout, LayerNorm, Linear
from engine.nn.module import Module, as_rng, check_sizes


class MLP(Module):
    """Linear (C -> 4C), GELU (tanh form), Linear (4C -> C), dropout."""

    def __init__(self, n_embd, *, bias=True, dropout=0.0, rng=None, std=None, proj_std=None,
                 dtype=np.float32):
        super().__init__()
        check_sizes("MLP", n_embd=n_embd)
        rng = as_rng(rng)
        self.c_fc = Linear(n_embd, 4 * n_embd, bias, rng=rng, std=std, dtype=dtype)
        self.c_proj = Linear(4 * n_embd, n_embd, bias, rng=rng, std=proj_std, dtype=dtype)
        self.dropout = Dropout(dropout, rng=rng.spawn(1)[0])

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))  # (B, T, C)


class TransformerBlock(Module):
    """Pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)). causal=False for an encoder
    (every position sees every other, except keys the key_padding_mask marks as padding)."""

    def __init__(self, n_embd, n_head, *, causal=True, bias=True, dropout=0.0, rng=None,
                 std=None, proj_std=None, dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        kw = {"bias": bias, "dropout": dropout, "rng": rng, "std": std, "proj_std": proj_std,
              "dtype": dtype}
        self.ln_1 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.attn = MultiHeadAttention(n_embd, n_head, causal=causal, **kw)
        self.ln_2 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.mlp = MLP(n_embd, **kw)

    def forward(self, x, need_weights=False, kv_cache=None, key_padding_mask=None):
        a = self.attn(self.ln_1(x), need_weights=need_weights, kv_cache=kv_cache,
                      key_padding_mask=key_padding_mask)
        a, weights = a if need_weights else (a, None)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return (x, weights) if need_weights else x


class DecoderBlock(Module):
    """The encoder-decoder's pre-LN decoder block (Vaswani et al. 2017, pre-LN):
    x + causal self-attn(ln_1(x)), then x + cross-attn(ln_2(x), memory), then x + mlp(ln_3(x)).

    forward(x (B, T, C), memory_kv, key_padding_mask=None, kv_cache=None, need_weights=False)
    -> x, or (x, (self weights (B, nh, T, T'), cross weights (B, nh, T, S))); memory_kv is
    `block.cross_attn.project_memory(memory)`, computed once per source.
    """

    def __init__(self, n_embd, n_head, *, bias=True, dropout=0.0, rng=None, std=None,
                 proj_std=None, dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        kw = {"bias": bias, "dropout": dropout, "rng": rng, "std": std, "proj_std": proj_std,
              "dtype": dtype}
        self.ln_1 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.attn = MultiHeadAttention(n_embd, n_head, causal=True, **kw)
        self.ln_2 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.cross_attn = CrossAttention(n_embd, n_head, **kw)
        self.ln_3 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.mlp = MLP(n_embd, **kw)

    def forward(self, x, memory_kv, key_padding_mask=None, kv_cache=None, need_weights=False):
        a = self.attn(self.ln_1(x), need_weights=need_weights, kv_cache=kv_cache)
        a, self_w = a if need_weights else (a, None)
        x = x + a
        c = self.cross_attn(self.ln_2(x), memory_kv=memory_kv,
                            key_padding_mask=key_padding_mask, need_weights=need_weights)
        c, cross_w = c if need_weights else (c, None)
        x = x + c
        x = x + self.mlp(self.ln_3(x))
        return (x, (self_w, cross_w)) if need_weights else x
