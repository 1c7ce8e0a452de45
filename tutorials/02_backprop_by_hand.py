# %% [markdown]
# # 2. Backprop by hand, against the engine, and gradcheck
#
# Reverse-mode autodiff is the chain rule applied one op at a time, from the loss back to
# the inputs. Here we do it by hand for a tiny network, `loss = sum(tanh(x @ w + b) ** 2)`,
# compare every step with what `backward()` computes, then check both against finite
# differences with `engine.gradcheck`.
#
# **First run:** the engine's Numba kernels compile the first time a cell uses them
# (seconds to a minute on a small machine, with no output meanwhile); they are cached on
# disk, so later runs start at once.

# %%
import numpy as np

import engine.functional as F
from engine import GradcheckError, Tensor, gradcheck

rng = np.random.default_rng(0)
X, W, B = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
x = Tensor(X, requires_grad=True)   # (4, 3) float64: gradient checks want float64
w = Tensor(W, requires_grad=True)   # (3, 2)
b = Tensor(B, requires_grad=True)   # (2,)
assert x.dtype == np.float64

# %% [markdown]
# ## Forward, keeping every intermediate
#
# Each line is one op of the graph. We keep the intermediates because the backward pass of
# each op needs them (that is what `ctx.save_for_backward` does inside the engine).

# %%
z = X @ W + B           # (4, 2)  matmul, then add (b broadcast over the rows)
h = np.tanh(z)          # (4, 2)
s = h ** 2              # (4, 2)
loss_by_hand = s.sum()  # ()
loss = (F.tanh(x @ w + b) ** 2).sum()
print("loss by hand", loss_by_hand, "| engine", loss.item())
assert np.isclose(loss.item(), loss_by_hand)

# %% [markdown]
# ## Backward, one op at a time
#
# Start from d loss / d loss = 1 and walk back: the gradient of each op's input is the
# gradient of its output times the op's local derivative.
#
# | op | local rule |
# |---|---|
# | `sum` | ds = dloss, copied to every element |
# | `pow 2` | dh = 2 h · ds |
# | `tanh` | dz = (1 - h²) · dh |
# | `add` | dB = dz summed over the rows (b was broadcast), d(xw) = dz |
# | `matmul` | dX = d(xw) Wᵀ, dW = Xᵀ d(xw) |

# %%
ds = np.ones_like(s)
dh = 2 * h * ds
dz = (1 - h ** 2) * dh
dB = dz.sum(axis=0)
dX, dW = dz @ W.T, X.T @ dz

loss.backward()
for name, mine, theirs in [("x", dX, x.grad), ("w", dW, w.grad), ("b", dB, b.grad)]:
    print(f"d loss/d {name}: max |by hand - engine| = {np.abs(mine - theirs).max():.1e}")
    assert np.allclose(mine, theirs, rtol=1e-12, atol=1e-12)

# %% [markdown]
# ## Gradients accumulate
#
# `backward()` *adds* into `.grad`, so a second call doubles it: zero the gradients between
# steps (`optimizer.zero_grad()` does it for a model).

# %%
loss = (F.tanh(x @ w + b) ** 2).sum()
loss.backward()
assert np.allclose(w.grad, 2 * dW)
x.grad = w.grad = b.grad = None
print("after two backward calls w.grad was 2x; reset to None")

# %% [markdown]
# ## gradcheck: trust numbers, not derivations
#
# `gradcheck(fn, *inputs)` compares the analytic gradient with central differences
# (f(x + ε) - f(x - ε)) / 2ε for every element of every input, in float64.

# %%
report = gradcheck(lambda x, w, b: (F.tanh(x @ w + b) ** 2).sum(), x, w, b)
print(report)
assert max(report.max_rel_error) < 1e-6

# %% [markdown]
# ## And it catches a wrong derivative
#
# A function whose backward is wrong on purpose: `x * stop(x)` treats the second factor as a
# constant (`.detach()`), so its "gradient" is x instead of 2x. gradcheck names the element.

# %%
try:
    gradcheck(lambda x: (x * x.detach()).sum(), x)
    raise AssertionError("gradcheck missed a wrong gradient")
except GradcheckError as e:
    print("gradcheck refused it:", e)
    assert "analytic" in str(e) and "numeric" in str(e)

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 2 --exercise` writes a copy with these parts removed;
# `attn tutorial 2 --check FILE` runs this tutorial's asserts against your version.
#
# 1. Backprop by hand through `loss = sum(relu(X @ W) * Cw)` (Cw a fixed weight):
#    return dX and dW. relu passes the gradient where its input was positive.

# %%
Cw = rng.standard_normal((4, 2))


def relu_net_grads(X, W, Cw):
    # >>> exercise 1: forward keeping the intermediates, then backward; return (dX, dW)
    z = X @ W
    dz = Cw * (z > 0)
    return dz @ W.T, X.T @ dz
    # <<< exercise 1


xe, we = Tensor(X, requires_grad=True), Tensor(W, requires_grad=True)
((xe @ we).relu() * Tensor(Cw)).sum().backward()
dX_mine, dW_mine = relu_net_grads(X, W, Cw)
assert np.allclose(dX_mine, xe.grad) and np.allclose(dW_mine, we.grad), "dX or dW is wrong"
print("relu network: by hand == engine")
