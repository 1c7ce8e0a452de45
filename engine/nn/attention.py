"""Multi-head self-attention with a fused QKV projection, and its KV cache for decoding."""

import numpy as np

import engine.functional as F
import ops
from engine.nn.layers import Dropout, Linear
from engine.nn.module import Module, as_rng
from engine.tensor import Tensor


class KVCache:
    """Keys and values of one attention layer for incremental decoding (inference only).

    `k`, `v`: preallocated (B, nh, max_len, hs) arrays on `device`; positions [0, length) are
    filled. Gradients do not flow into cached entries.
    """

    def __init__(self, batch_size, n_head, max_len, head_size, dtype=np.float32, device="cpu"):
        device = ops.get_device(device)
        shape = (batch_size, n_head, max_len, head_size)
        dtype = device.dtype(ops.dtype_name(dtype, device))
        self.k = device.xp.zeros(shape, dtype=dtype, device=device.array_device)
        self.v = device.xp.zeros_like(self.k)
        self.length = 0

    @property
    def max_len(self):
        return self.k.shape[2]

    def append(self, k, v):
        """Store new keys/values (B, nh, T, hs); return all cached ones, each (B, nh, L, hs)."""
        t = k.shape[2]
        if self.length + t > self.max_len:
            raise ValueError(f"KVCache full: {self.length} cached + {t} new > {self.max_len}")
        self.k[:, :, self.length:self.length + t, ...] = k
        self.v[:, :, self.length:self.length + t, ...] = v
        self.length += t
        return self.k[:, :, :self.length, ...], self.v[:, :, :self.length, ...]

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
