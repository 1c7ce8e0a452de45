# %% [markdown]
# # 9. Multi-head attention and the Transformer block, shapes at every line
#
# One attention head compares whole C-dimensional vectors. Multi-head attention splits C
# into H heads of size C/H, lets each attend on its own (one may track position, another
# content), then mixes their outputs again. We rebuild `nn.MultiHeadAttention` from its own
# weights, line by line, then the pre-LayerNorm `nn.TransformerBlock` around it.
#
# **First run:** the engine's Numba kernels compile the first time a cell uses them
# (seconds to a minute on a small machine, with no output meanwhile); they are cached on
# disk, so later runs start at once.

# %%
import numpy as np

import engine.functional as F
from engine import Tensor, nn

B, T, C, H = 2, 5, 16, 4                         # batch, positions, channels, heads
hs = C // H                                      # head size: 4
mha = nn.MultiHeadAttention(C, H, causal=True, rng=0)
x = Tensor(np.random.default_rng(0).standard_normal((B, T, C)).astype(np.float32))
print("x", x.shape, "| c_attn.weight", mha.c_attn.weight.shape,
      "| c_proj.weight", mha.c_proj.weight.shape)
assert mha.c_attn.weight.shape == (3 * C, C)    # q, k and v projections fused in one matmul

# %% [markdown]
# ## Project once, split three ways, then into heads
#
# Each (B, T, C) projection is reshaped to (B, T, H, hs) and transposed to (B, H, T, hs):
# the heads become a batch dimension, so one attention call serves all of them.

# %%
qkv = F.linear(x, mha.c_attn.weight, mha.c_attn.bias)     # (B, T, 3C)
q, k, v = F.split(qkv, 3, axis=2)                         # each (B, T, C)
q = q.reshape(B, T, H, hs).transpose(1, 2)                # (B, H, T, hs)
k = k.reshape(B, T, H, hs).transpose(1, 2)                # (B, H, T, hs)
v = v.reshape(B, T, H, hs).transpose(1, 2)                # (B, H, T, hs)
print("qkv", qkv.shape, "-> q, k, v", q.shape)
assert q.shape == k.shape == v.shape == (B, H, T, hs)

# %% [markdown]
# ## Attend per head, then put the heads back side by side

# %%
y = F.scaled_dot_product_attention(q, k, v, causal=True)   # (B, H, T, hs)
y = y.transpose(1, 2).reshape(B, T, C)                     # (B, T, H, hs) -> (B, T, C)
y = F.linear(y, mha.c_proj.weight, mha.c_proj.bias)        # (B, T, C): heads mixed
print("by hand", y.shape)
assert np.allclose(y.numpy(), mha(x).numpy(), atol=1e-5)   # exactly what the module does

# %% [markdown]
# ## Each head has its own map
#
# `need_weights=True` also returns the probabilities (B, H, T, T). Every row sums to 1 and
# the causal mask zeroes the future in every head.

# %%
_, weights = mha(x, need_weights=True)
w = weights.numpy()
print("weights", w.shape, "| head 0 of example 0:\n", np.round(w[0, 0], 2))
assert w.shape == (B, H, T, T) and np.allclose(w.sum(-1), 1.0, atol=1e-5)
assert np.all(np.triu(w, k=1) == 0)
assert not np.allclose(w[0, 0], w[0, 1])                   # heads differ

# %% [markdown]
# ## The block: attention to communicate, an MLP to compute
#
# Pre-LayerNorm: x + attn(ln_1(x)), then x + mlp(ln_2(x)). The residual path keeps the
# shape (B, T, C) end to end, so blocks stack; the MLP widens to 4C and back.

# %%
block = nn.TransformerBlock(C, H, causal=True, rng=1)
h = x + block.attn(block.ln_1(x))                          # (B, T, C)
out = h + block.mlp(block.ln_2(h))                         # (B, T, C)
print("block out", out.shape, "| MLP hidden", block.mlp.c_fc.weight.shape[0])
assert np.allclose(out.numpy(), block(x).numpy(), atol=1e-5)
assert block.mlp.c_fc.weight.shape == (4 * C, C)

# %% [markdown]
# ## Where the parameters are
#
# Per block: 4C² + 4C for attention (q, k, v, output), 8C² + 5C for the MLP, 4C for two
# layer norms: 12C² + 13C in all.

# %%
counts = {name: p.size for name, p in block.named_parameters()}
for name, n in counts.items():
    print(f"{name:24} {n:6}")
assert sum(counts.values()) == block.num_parameters() == 12 * C * C + 13 * C

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 9 --exercise` writes a copy with these parts removed;
# `attn tutorial 9 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `split_heads(a, H)`: a numpy (B, T, C) array to (B, H, T, C // H), and
#    `merge_heads(a)` back; merge_heads(split_heads(a, H)) must give `a` again.
# 2. `block_params(C)`: the parameter count of one block, from the formula above.

# %%
def split_heads(a, H):
    # >>> exercise 1: reshape then transpose; return (B, H, T, C // H)
    B_, T_, C_ = a.shape
    return a.reshape(B_, T_, H, C_ // H).transpose(0, 2, 1, 3)
    # <<< exercise 1


def merge_heads(a):
    # >>> exercise 1: the inverse of split_heads; return (B, T, C)
    B_, H_, T_, hs_ = a.shape
    return a.transpose(0, 2, 1, 3).reshape(B_, T_, H_ * hs_)
    # <<< exercise 1


def block_params(C):
    # >>> exercise 2: return the count as an int
    return 12 * C * C + 13 * C
    # <<< exercise 2


qx = F.linear(x, mha.c_attn.weight, mha.c_attn.bias).numpy()[..., :C]     # the queries
assert np.allclose(split_heads(qx, H), q.numpy()), "split_heads differs from q"
assert np.array_equal(merge_heads(split_heads(qx, H)), qx), "merge_heads does not invert"
for c in (8, 16, 48):
    assert block_params(c) == nn.TransformerBlock(c, 4, rng=0).num_parameters(), c
print("heads split and merged; block sizes counted")
