# %% [markdown]
# # 3. Broadcasting, and why gradients are summed back
#
# `x + b` with x (4, 3) and b (3,) adds b to every row: numpy *broadcasts* b, as if it were
# copied four times. Each of those copies touched the loss, so b's gradient is the sum of
# the gradients of all its copies. The engine does this in one helper (`unbroadcast`):
# sum over the axes that broadcasting added or stretched, so `b.grad` has b's shape.
#
# **First run:** the engine's Numba kernels compile the first time a cell uses them
# (seconds to a minute on a small machine, with no output meanwhile); they are cached on
# disk, so later runs start at once.

# %%
import numpy as np

import engine.functional as F
from engine import Tensor, gradcheck

rng = np.random.default_rng(0)
x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)   # (4, 3)
b = Tensor(rng.standard_normal(3), requires_grad=True)        # (3,)
y = x + b                                                     # (4, 3): b added to each row
print("x", x.shape, "+ b", b.shape, "->", y.shape)
assert y.shape == (4, 3)

# %% [markdown]
# ## The rule
#
# Align shapes from the right; a dimension of size 1 (or a missing one) stretches to match.
# (4, 3) with (3,): b is read as (1, 3), then stretched to (4, 3).

# %%
for sa, sb in [((4, 3), (3,)), ((4, 1), (1, 3)), ((2, 1, 3), (4, 1)), ((), (5,))]:
    out = (Tensor(np.zeros(sa)) + Tensor(np.zeros(sb))).shape
    print(f"{sa!s:>10} + {sb!s:<8} -> {out}")
    assert out == np.broadcast_shapes(sa, sb)

# %% [markdown]
# ## Gradients come back in the input's shape
#
# With loss = sum(w * (x + b)) for a fixed weight w, d loss / d y = w. x gets w itself; b
# was used in all four rows, so it gets w summed over the rows.

# %%
w = rng.standard_normal((4, 3))
loss = (Tensor(w) * (x + b)).sum()
loss.backward()
print("b.grad", b.grad, "shape", b.grad.shape)
assert x.grad.shape == (4, 3) and np.allclose(x.grad, w)
assert b.grad.shape == (3,) and np.allclose(b.grad, w.sum(axis=0))

# %% [markdown]
# ## Size-1 axes are summed with keepdims
#
# A column (4, 1) against a row (1, 3) makes a (4, 3) table (an outer sum). The column's
# gradient sums over the columns it was stretched across, and keeps its size-1 axis.

# %%
col = Tensor(rng.standard_normal((4, 1)), requires_grad=True)
row = Tensor(rng.standard_normal((1, 3)), requires_grad=True)
(Tensor(w) * (col + row)).sum().backward()
print("col.grad", col.grad.shape, "row.grad", row.grad.shape)
assert col.grad.shape == (4, 1) and np.allclose(col.grad, w.sum(axis=1, keepdims=True))
assert row.grad.shape == (1, 3) and np.allclose(row.grad, w.sum(axis=0, keepdims=True))

# %% [markdown]
# ## A familiar case: the bias of a linear layer
#
# `F.linear(x, W, b)` on a batch (B, T, C) adds b (out,) to every position of every
# sequence: its gradient sums over both B and T. gradcheck confirms it for every broadcast
# pair the engine's tests use.

# %%
xs = Tensor(rng.standard_normal((2, 5, 3)), requires_grad=True)   # (B, T, C)
Wt = Tensor(rng.standard_normal((4, 3)), requires_grad=True)      # (out, C)
bt = Tensor(rng.standard_normal(4), requires_grad=True)           # (out,)
F.linear(xs, Wt, bt).sum().backward()
assert np.allclose(bt.grad, np.full(4, 2 * 5))  # ones summed over B*T = 10 positions
for sa, sb in [((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)), ((), (4,))]:
    a_, b_ = (Tensor(rng.standard_normal(s), requires_grad=True) for s in (sa, sb))
    report = gradcheck(lambda a, b: a * b + b, a_, b_)
    print(f"gradcheck a{sa} * b{sb}: worst rel err {max(report.max_rel_error):.1e}")

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 3 --exercise` writes a copy with these parts removed;
# `attn tutorial 3 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `unbroadcast(g, shape)`: sum the gradient `g` (of the broadcast result) back to
#    `shape`: over the leading axes broadcasting added, and (keeping them) over the axes
#    where `shape` has size 1.

# %%
def unbroadcast(g, shape):
    # >>> exercise 1: return an array of exactly `shape`
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g
    # <<< exercise 1


for sa, sb in [((4, 3), (3,)), ((4, 1), (1, 3)), ((2, 1, 3), (4, 1)), ((), (5,))]:
    a_, b_ = (Tensor(rng.standard_normal(s), requires_grad=True) for s in (sa, sb))
    w_ = rng.standard_normal(np.broadcast_shapes(sa, sb))
    (Tensor(w_) * (a_ + b_)).sum().backward()
    for t, s in ((a_, sa), (b_, sb)):
        mine = unbroadcast(w_, s)
        assert np.shape(mine) == s and np.allclose(mine, t.grad), f"unbroadcast to {s}"
print("unbroadcast matches the engine for every pair")
