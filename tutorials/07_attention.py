# %% [markdown]
# # 7. Scaled dot-product attention, masks, and the flash-style kernel
#
# Attention lets each query position read a weighted mix of the value vectors, weighted by
# how well its query matches each key: softmax(q kᵀ / √D) v. Shapes are (B, H, T, D):
# batch, heads, positions, features per head.
#
# **First run:** the engine's Numba kernels compile the first time a cell uses them
# (seconds to a minute on a small machine, with no output meanwhile); they are cached on
# disk, so later runs start at once.

# %%
import tracemalloc

import numpy as np

import engine.functional as F
import ops
from engine import Tensor, gradcheck

rng = np.random.default_rng(0)
B, H, T, D = 1, 1, 4, 8
q, k, v = (Tensor(rng.standard_normal((B, H, T, D)).astype(np.float32)) for _ in range(3))
scores = (q @ k.transpose(-2, -1)) / np.sqrt(D)          # (B, H, T, T): every query x key
by_hand = F.softmax(scores, axis=-1) @ v                 # (B, H, T, D)
out = F.scaled_dot_product_attention(q, k, v)
print("output", out.shape, "| max |by hand - fused| =",
      f"{np.abs(out.numpy() - by_hand.numpy()).max():.1e}")
assert out.shape == (B, H, T, D) and np.allclose(out.numpy(), by_hand.numpy(), atol=1e-5)

# %% [markdown]
# ## Why divide by √D
#
# A dot product of two random D-dimensional vectors has variance D. Unscaled, scores grow
# with the head size and the softmax saturates into a one-hot choice whose gradient is
# almost zero. Dividing by √D keeps the scores' variance near 1 for any D.

# %%
for d in (4, 64, 1024):
    a, b = rng.standard_normal((2, 10000, d))
    dots = (a * b).sum(axis=-1)
    print(f"D={d:5}: std of q.k = {dots.std():6.2f}, after / sqrt(D): "
          f"{(dots / np.sqrt(d)).std():.2f}")
    assert abs((dots / np.sqrt(d)).std() - 1.0) < 0.05

# %% [markdown]
# ## The causal mask
#
# A language model must not read the future: query i may only see keys j <= i. `causal=True`
# sets the other scores to -inf before the softmax, so their weights are exactly 0.

# %%
w = F.attention_weights(q, k, causal=True).numpy()[0, 0]   # (T, T)
print(np.round(w, 2))
assert np.all(np.triu(w, k=1) == 0) and np.allclose(w.sum(axis=-1), 1.0)

# %% [markdown]
# ## Any other mask: True = may attend
#
# A boolean mask broadcast to (B, H, Tq, Tk) hides keys, e.g. padding. A query that sees no
# key at all gets a zero output, not NaN.

# %%
allowed = np.array([True, True, False, False])            # the last two keys are padding
out = F.scaled_dot_product_attention(q, k, v, mask=allowed)
w = F.attention_weights(q, k, mask=allowed).numpy()[0, 0]
assert np.all(w[:, 2:] == 0)
nobody = F.scaled_dot_product_attention(q, k, v, mask=np.zeros(4, dtype=bool))
print("weights with keys 2, 3 masked:\n", np.round(w, 2))
assert np.all(nobody.numpy() == 0)

# %% [markdown]
# ## Memory without the T×T buffer
#
# The reference kernel materialises the (B, H, T, T) scores and probabilities: memory
# quadratic in T. The fused kernel (`ops/attention_cpu.py`) walks the keys in tiles, keeps a
# running max and sum per query row (the online softmax), and saves only the per-row
# log-sum-exp for the backward pass, which recomputes each probability tile. Causal and
# unmasked attention take this path; an explicit mask goes through the reference.
# tracemalloc counts the numpy allocations of each call:

# %%
B, H, T, D = 1, 2, 512, 16
q_, k_, v_ = (rng.standard_normal((B, H, T, D)).astype(np.float32) for _ in range(3))
one_buffer = B * H * T * T * 4  # bytes of one float32 (B, H, T, T) array
peaks = {}
for backend in ("numpy", "numba"):
    kernel = ops.kernel("attention", backend=backend)
    kernel(q_, k_, v_, True, D ** -0.5, None)  # compile / warm up first
    tracemalloc.start()
    o, lse = kernel(q_, k_, v_, True, D ** -0.5, None)
    peaks[backend] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{backend:>5}: peak {peaks[backend] / 2**20:6.2f} MiB "
          f"(one T x T buffer: {one_buffer / 2**20:.2f} MiB); keeps o {o.shape}, lse {lse.shape}")
assert peaks["numpy"] >= one_buffer > peaks["numba"]
assert lse.shape == (B, H, T)  # what backward needs besides o: one number per query row

# %% [markdown]
# ## The fused kernel's gradient
#
# Checked like every op: float64 finite differences, causal, and with queries that are
# fewer than the keys (a decoder step attending over a cache).

# %%
small = [Tensor(rng.standard_normal(s), requires_grad=True)
         for s in [(1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 3)]]
report = gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=True),
                   *small)
print(report)

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 7 --exercise` writes a copy with these parts removed;
# `attn tutorial 7 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `causal_mask(T)`: a (T, T) boolean array, True where query i may see key j.
# 2. `attention_np(q, k, v, allowed)`: attention in numpy for q, k, v (T, D) and a boolean
#    (T, T) mask (True = may attend); a query that may see no key gets a zero output.

# %%
def causal_mask(T):
    # >>> exercise 1: return the (T, T) boolean mask
    return np.tril(np.ones((T, T), dtype=bool))
    # <<< exercise 1


def attention_np(q, k, v, allowed):
    # >>> exercise 2: scores, mask, a stable softmax per row, then the weighted values
    s = np.where(allowed, q @ k.T / np.sqrt(q.shape[-1]), -np.inf)
    top = s.max(axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(top), top, 0.0))
    total = e.sum(axis=-1, keepdims=True)
    return (e / np.where(total > 0, total, 1.0)) @ v
    # <<< exercise 2


qe, ke, ve = (rng.standard_normal((5, 4)) for _ in range(3))
assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True] * 3]
out = F.scaled_dot_product_attention(*(Tensor(a[None, None]) for a in (qe, ke, ve)),
                                     causal=True).numpy()[0, 0]
assert np.allclose(attention_np(qe, ke, ve, causal_mask(5)), out), "causal attention"
allowed = causal_mask(5) & np.array([False, True, True, True, True])   # key 0 hidden
assert np.all(attention_np(qe, ke, ve, allowed)[0] == 0), "a query seeing no key gives 0"
print("numpy attention agrees with the engine, masked rows included")
