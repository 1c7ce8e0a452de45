"""Attention layers: multi-head self-attention (fused QKV, with its KV cache for decoding),
multi-head cross-attention (queries from one sequence, keys and values from another), and
Bahdanau's additive attention.

Masks follow PyTorch: `key_padding_mask` (B, Tk) is a boolean array of the model's device,
True where the key is padding (never attended to); SDPA's own `mask` is True = may attend.
"""

import math

import numpy as np

import engine.functional as F
import ops
from engine.autograd import is_tensor
from engine.nn.layers import Dropout, Linear
from engine.nn.module import Module, as_rng, check_sizes
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

    forward(x, need_weights=False, kv_cache=None, key_padding_mask=None): x (B, T, C) ->
    y (B, T, C), or (y, weights (B, nh, T, Tk)) when need_weights. With a KVCache, x holds
    the T newest tokens; their keys/values are appended and the queries attend over
    everything cached. key_padding_mask (B, Tk), True = padding: those keys are never seen.
    """

    def __init__(self, n_embd, n_head, *, causal=True, bias=True, dropout=0.0, rng=None,
                 std=None, proj_std=None, dtype=np.float32):
        super().__init__()
        check_sizes("MultiHeadAttention", n_embd=n_embd, n_head=n_head)
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} is not divisible by n_head={n_head}")
        rng = as_rng(rng)
        self.n_embd, self.n_head, self.causal, self.dropout = n_embd, n_head, causal, dropout
        self.c_attn = Linear(n_embd, 3 * n_embd, bias, rng=rng, std=std, dtype=dtype)
        self.c_proj = Linear(n_embd, n_embd, bias, rng=rng, std=proj_std, dtype=dtype)
        self.attn_dropout = Dropout(dropout, rng=rng.spawn(1)[0])
        self.resid_dropout = Dropout(dropout, rng=rng.spawn(1)[0])

    def forward(self, x, need_weights=False, kv_cache=None, key_padding_mask=None):
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        if (kv_cache is None and key_padding_mask is None and not need_weights
                and not (self.training and self.dropout > 0.0)):
            # the common training path: attention reads q, k, v in place from the fused
            # projection and writes the heads side by side (no split, transposes or copies)
            y = F.self_attention(self.c_attn(x), nh, causal=self.causal)  # (B, T, C)
            return self.resid_dropout(self.c_proj(y))
        q, k, v = F.split(self.c_attn(x), 3, axis=2)  # each (B, T, C)
        q = q.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        if kv_cache is not None:
            k_all, v_all = kv_cache.append(k.data, v.data)  # each (B, nh, L, hs), L >= T
            k, v = Tensor(k_all), Tensor(v_all)
        mask = attend_mask(key_padding_mask, B, k.shape[2])
        y, weights = _attend(self, q, k, v, mask, self.causal, need_weights)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, nh, hs) -> (B, T, C)
        y = self.resid_dropout(self.c_proj(y))
        return (y, weights) if need_weights else y

    def extra_repr(self):
        return f"n_embd={self.n_embd}, n_head={self.n_head}, causal={self.causal}"


def padding_mask(key_padding_mask, batch, keys):
    """A key padding mask (B, Tk), True = padding, validated: a boolean array of the device."""
    m = key_padding_mask.data if is_tensor(key_padding_mask) else key_padding_mask
    if tuple(m.shape) != (batch, keys):
        raise ValueError(f"attention: key_padding_mask must be (B, Tk) = ({batch}, {keys}), "
                         f"got {tuple(m.shape)}")
    xp = ops.array_namespace(m)
    if m.dtype != xp.bool:
        raise TypeError(f"attention: key_padding_mask must be boolean (True = padding), got "
                        f"{ops.dtype_name(m.dtype)}")
    return m


def attend_mask(key_padding_mask, batch, keys):
    """SDPA's boolean mask (B, 1, 1, Tk), True = may attend, from a key padding mask (B, Tk)
    (True = padding); None stays None."""
    if key_padding_mask is None:
        return None
    m = padding_mask(key_padding_mask, batch, keys)
    return ops.array_namespace(m).reshape(~m, (batch, 1, 1, keys))


def _attend(layer, q, k, v, mask, causal, need_weights):
    """(y (B, nh, Tq, hs), weights or None): fused attention, or the composite path when
    the probabilities must exist (dropout on them in training, or asked for)."""
    weights = None
    if layer.training and layer.dropout > 0.0:
        weights = F.attention_weights(q, k, mask=mask, causal=causal)  # (B, nh, Tq, Tk)
        return layer.attn_dropout(weights) @ v, weights
    y = F.scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)  # (B, nh, Tq, hs)
    if need_weights:
        weights = F.attention_weights(q, k, mask=mask, causal=causal)  # (B, nh, Tq, Tk)
    return y, weights


class CrossAttention(Module):
    """Multi-head attention of queries from x over keys and values from another sequence.

    forward(x (B, T, C), memory (B, S, C), key_padding_mask=None, need_weights=False,
    memory_kv=None) -> y (B, T, C), or (y, weights (B, nh, T, S)). When decoding, compute
    the memory's keys and values once with `memory_kv = layer.project_memory(memory)` and
    pass them at every step instead of `memory`.
    """

    def __init__(self, n_embd, n_head, *, bias=True, dropout=0.0, rng=None, std=None,
                 proj_std=None, dtype=np.float32):
        super().__init__()
        check_sizes("CrossAttention", n_embd=n_embd, n_head=n_head)
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} is not divisible by n_head={n_head}")
        rng = as_rng(rng)
        self.n_embd, self.n_head, self.dropout = n_embd, n_head, dropout
        self.q_proj = Linear(n_embd, n_embd, bias, rng=rng, std=std, dtype=dtype)
        self.kv_proj = Linear(n_embd, 2 * n_embd, bias, rng=rng, std=std, dtype=dtype)
        self.c_proj = Linear(n_embd, n_embd, bias, rng=rng, std=proj_std, dtype=dtype)
        self.attn_dropout = Dropout(dropout, rng=rng.spawn(1)[0])
        self.resid_dropout = Dropout(dropout, rng=rng.spawn(1)[0])

    def _heads(self, x):
        B, T, C = x.shape
        return x.reshape(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)

    def project_memory(self, memory):
        """The memory's keys and values, each (B, nh, S, hs)."""
        if memory.ndim != 3 or memory.shape[2] != self.n_embd:
            raise ValueError(f"CrossAttention: memory must be (B, S, {self.n_embd}), got "
                             f"{memory.shape}")
        k, v = F.split(self.kv_proj(memory), 2, axis=2)  # each (B, S, C)
        return self._heads(k), self._heads(v)

    def forward(self, x, memory=None, key_padding_mask=None, need_weights=False,
                memory_kv=None):
        if x.ndim != 3 or x.shape[2] != self.n_embd:
            raise ValueError(f"CrossAttention: x must be (B, T, {self.n_embd}), got {x.shape}")
        if (memory is None) == (memory_kv is None):
            raise ValueError("CrossAttention: pass exactly one of memory and memory_kv")
        k, v = self.project_memory(memory) if memory_kv is None else memory_kv
        B, T, C = x.shape
        if k.shape[0] != B:
            raise ValueError(f"CrossAttention: x has batch {B}, memory batch {k.shape[0]}")
        q = self._heads(self.q_proj(x))  # (B, nh, T, hs)
        mask = attend_mask(key_padding_mask, B, k.shape[2])
        y, weights = _attend(self, q, k, v, mask, False, need_weights)
        y = self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))
        return (y, weights) if need_weights else y

    def extra_repr(self):
        return f"n_embd={self.n_embd}, n_head={self.n_head}"


class AdditiveAttention(Module):
    """Bahdanau (additive) attention: score_j = v^T tanh(W_q q + W_k k_j + b), softmax over
    the source positions that the mask allows, context = sum_j weight_j value_j.

    forward(query (B, Dq), keys (B, S, Dk), values=None (= keys), key_padding_mask=None
    (B, S) True = padding, projected_keys=None) -> (context (B, Dv), weights (B, S)).
    A decoder calls it once per step over the same keys: project them once with
    `project_keys(keys)` and pass `projected_keys`.
    """

    def __init__(self, query_size, key_size, attn_size, *, rng=None, dtype=np.float32):
        super().__init__()
        check_sizes("AdditiveAttention", query_size=query_size, key_size=key_size,
                    attn_size=attn_size)
        rng = as_rng(rng)
        self.query_size, self.key_size, self.attn_size = query_size, key_size, attn_size
        self.query_proj = Linear(query_size, attn_size, bias=False, rng=rng, dtype=dtype)
        self.key_proj = Linear(key_size, attn_size, bias=True, rng=rng, dtype=dtype)
        self.v = Linear(attn_size, 1, bias=False, rng=rng, dtype=dtype)

    def project_keys(self, keys):
        """W_k keys + b, (B, S, attn_size)."""
        if keys.ndim != 3 or keys.shape[2] != self.key_size:
            raise ValueError(f"AdditiveAttention: keys must be (B, S, {self.key_size}), got "
                             f"{keys.shape}")
        return self.key_proj(keys)

    def forward(self, query, keys, values=None, key_padding_mask=None, projected_keys=None):
        pk = self.project_keys(keys) if projected_keys is None else projected_keys
        values = keys if values is None else values
        B, S, A = pk.shape
        if query.shape != (B, self.query_size):
            raise ValueError(f"AdditiveAttention: query must be ({B}, {self.query_size}), got "
                             f"{query.shape}")
        if values.ndim != 3 or values.shape[:2] != (B, S):
            raise ValueError(f"AdditiveAttention: values must be ({B}, {S}, Dv), got "
                             f"{values.shape}")
        q = self.query_proj(query).reshape(B, 1, A)  # (B, 1, A)
        scores = self.v(F.tanh(pk + q)).reshape(B, S)  # (B, S)
        if key_padding_mask is not None:
            scores = F.masked_fill(scores, padding_mask(key_padding_mask, B, S), -math.inf)
        weights = F.softmax(scores, axis=-1)  # (B, S)
        context = (weights.reshape(B, 1, S) @ values).reshape(B, values.shape[2])  # (B, Dv)
        return context, weights

    def extra_repr(self):
        return f"query={self.query_size}, key={self.key_size}, attn={self.attn_size}"
