# %% [markdown]
# # 6. Softmax: overflow, the stable form, the fused kernel, its gradient
#
# softmax(x)_i = exp(x_i) / Σ_j exp(x_j) turns a row of scores into probabilities. Written
# that way it breaks on the scores attention produces; this tutorial fixes it, runs the
# engine's fused Numba kernel against the numpy reference, and derives the backward pass.
#
# **First run:** the engine's Numba kernels compile the first time a cell uses them
# (seconds to a minute on a small machine, with no output meanwhile); they are cached on
# disk, so later runs start at once.

# %%
import time

import numpy as np

import engine.functional as F
import ops
from engine import Tensor, gradcheck

x = np.array([1000.0, 1001.0, 1002.0], dtype=np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(x) / np.exp(x).sum()
    print("float32 tops out at", np.finfo(np.float32).max, "and exp(89) is already",
          np.exp(np.float32(89.0)))
print("naive softmax of", x, "->", naive)
assert np.isnan(naive).all()  # exp overflows to inf, and inf / inf is NaN

# %% [markdown]
# ## The stable form
#
# Softmax does not change when a constant is subtracted from every score (it cancels in the
# ratio). Subtracting the row's maximum makes the largest exponent exp(0) = 1: nothing
# overflows, and at least one term of the sum is 1, so nothing divides by zero.

# %%
def stable_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


p = stable_softmax(x)
print("stable:", p)
assert np.allclose(p, stable_softmax(x - 1000.0)) and np.isclose(p.sum(), 1.0)
assert np.allclose(F.softmax(Tensor(x)).numpy(), p)  # the engine uses the stable form

# %% [markdown]
# ## The fused kernel
#
# The numpy reference makes several passes over memory (max, subtract, exp, sum, divide),
# each writing a temporary array. The Numba kernel (`ops/softmax.py`) makes one pass per
# row in registers, threads over rows, and uses a vectorisable exponential. Same numbers;
# the timing below is printed for interest, never asserted (the machine may be busy).

# %%
rows = np.random.default_rng(0).standard_normal((2048, 64)).astype(np.float32) * 10
reference = ops.kernel("softmax", backend="numpy")
fused = ops.kernel("softmax", backend="numba")
assert np.allclose(fused(rows), reference(rows), rtol=1e-5, atol=1e-7)


def best_of(fn, repeat=5):
    fn(rows)  # warm up (and compile, the first time)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(rows)
        times.append(time.perf_counter() - t)
    return min(times)


t_ref, t_fused = best_of(reference), best_of(fused)
print(f"(2048, 64): numpy reference {t_ref * 1e6:.0f} us, fused {t_fused * 1e6:.0f} us")

# %% [markdown]
# ## The gradient
#
# The Jacobian of y = softmax(x) is dy_i/dx_j = y_i (δ_ij - y_j), i.e. diag(y) - y yᵀ.
# Multiplying an incoming gradient g by it needs no matrix: dx = y ⊙ (g - Σ_k g_k y_k).
# That is the one-line formula the engine's `Softmax` carries and its fused backward uses.

# %%
xs = np.random.default_rng(1).standard_normal(5)
y, g = stable_softmax(xs), np.random.default_rng(2).standard_normal(5)
jacobian = np.diag(y) - np.outer(y, y)
dx = y * (g - (g * y).sum())
t = Tensor(xs, requires_grad=True)
out = F.softmax(t)
out.backward(g)
print("formula:", out._op.formula)
assert np.allclose(jacobian @ g, dx) and np.allclose(t.grad, dx)
assert np.isclose(dx.sum(), 0.0)  # shifting every score equally changes nothing

# %% [markdown]
# ## And gradcheck agrees, also on rows with a huge offset

# %%
big = Tensor(np.random.default_rng(3).standard_normal((3, 4)) + 1e4, requires_grad=True)
report = gradcheck(lambda a: F.softmax(a, axis=-1), big, eps=1e-4, rtol=1e-3, atol=1e-6)
print(report)
with ops.use_backend("numpy"):
    gradcheck(lambda a: F.log_softmax(a), Tensor(big.data - 1e4, requires_grad=True))

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 6 --exercise` writes a copy with these parts removed;
# `attn tutorial 6 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `stable_log_softmax(x)`: log softmax over the last axis that neither overflows nor
#    takes the log of 0 (hint: x - max - log Σ exp(x - max)).
# 2. `softmax_vjp(y, g)`: the gradient with respect to the scores, given the softmax
#    output `y` and the incoming gradient `g` (last axis), without building the Jacobian.

# %%
def stable_log_softmax(x):
    # >>> exercise 1: return log softmax(x) over the last axis
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    # <<< exercise 1


def softmax_vjp(y, g):
    # >>> exercise 2: return dx
    return y * (g - (g * y).sum(axis=-1, keepdims=True))
    # <<< exercise 2


scores = np.random.default_rng(4).standard_normal((3, 6)) * 50 + 1e4
with ops.use_backend("numpy"):
    want = F.log_softmax(Tensor(scores)).numpy()
assert np.all(np.isfinite(stable_log_softmax(scores))), "log softmax overflowed"
assert np.allclose(stable_log_softmax(scores), want), "log softmax is wrong"
ts = Tensor(scores - 1e4, requires_grad=True)
gs = np.random.default_rng(5).standard_normal((3, 6))
F.softmax(ts, axis=-1).backward(gs)
assert np.allclose(softmax_vjp(stable_softmax(scores - 1e4), gs), ts.grad), "softmax_vjp"
print("log softmax and the softmax gradient agree with the engine")
