# %% [markdown]
# # 4. Autodiff from the inside: Functions and the backward walk, written out
#
# Tutorials 1-3 *used* `backward()`. Here we build it: a node that remembers how it was
# made, three `Function`s (mul, tanh and a whole layer norm) with forward and backward side
# by side, and the walk that visits the graph in reverse topological order applying the
# chain rule. Everything runs in float64 and is checked twice: against the engine and
# against finite differences. Then we read the engine's own `engine/autograd.py` and find
# the same forty lines in it.

# %%
import inspect

import numpy as np

import engine.functional as F
from engine import Tensor, autograd


class Ctx:
    """What a forward leaves for its backward (the engine's `ctx`)."""

    def save_for_backward(self, *arrays):
        self.saved = arrays


class Node:
    """A value in our graph: its data, its gradient, and the Function and inputs that made it."""

    def __init__(self, data, fn=None, ctx=None, prev=()):
        self.data = np.asarray(data, dtype=np.float64)
        self.grad = None
        self._fn, self._ctx, self._prev = fn, ctx, prev   # prev: a tuple, in argument order


def apply(fn, *inputs, **params):
    """Run fn.forward on the inputs' arrays and record the node (the engine's Function.apply)."""
    ctx = Ctx()
    out = fn.forward(ctx, *[n.data for n in inputs], **params)
    return Node(out, fn, ctx, inputs)


def sum_to(g, shape):
    """Sum a broadcast gradient back to `shape` (tutorial 3's rule: the engine's unbroadcast)."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    return g.sum(axis=tuple(i for i, s in enumerate(shape) if s == 1), keepdims=True)


print("a node knows its maker:", Node(1.0)._fn, "(a leaf)")
assert sum_to(np.ones((4, 3)), (3,)).tolist() == [4.0, 4.0, 4.0]

# %% [markdown]
# ## Three Functions, forward and backward side by side
#
# A Function's `backward(ctx, g)` gets d loss / d output and returns d loss / d input for
# each input: the incoming gradient times the op's local derivative.
#
# | op | forward | backward |
# |---|---|---|
# | mul | a · b | g · b, g · a (summed back to each shape) |
# | tanh | t = tanh a | g · (1 - t²) |
# | sum | Σ a | g copied to every element |
# | layer norm | x̂ = (x-μ)/σ, y = x̂w + b | dx = (ĝ - mean ĝ - x̂ mean(ĝx̂))/σ, ĝ = gw |
#
# The layer norm's backward is one fused formula, not the dozen small ops its forward
# would be: that is why engines make it a single Function.

# %%
class Mul:
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        return sum_to(g * b, a.shape), sum_to(g * a, b.shape)


class Tanh:
    @staticmethod
    def forward(ctx, a):
        t = np.tanh(a)
        ctx.save_for_backward(t)          # the output is all backward needs
        return t

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved
        return (g * (1 - t * t),)


class Sum:
    @staticmethod
    def forward(ctx, a):
        ctx.shape = a.shape
        return a.sum()

    @staticmethod
    def backward(ctx, g):
        return (np.broadcast_to(g, ctx.shape),)


class LayerNorm:
    """Over the last axis: x (N, C), weight and bias (C,)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps=1e-5):
        mu = x.mean(axis=-1, keepdims=True)                       # (N, 1)
        rstd = 1 / np.sqrt(x.var(axis=-1, keepdims=True) + eps)   # (N, 1): 1 / sigma
        xhat = (x - mu) * rstd                                    # (N, C)
        ctx.save_for_backward(xhat, rstd, weight)
        return xhat * weight + bias

    @staticmethod
    def backward(ctx, g):
        xhat, rstd, weight = ctx.saved
        gh = g * weight                                           # d loss / d xhat
        dx = rstd * (gh - gh.mean(-1, keepdims=True)
                     - xhat * (gh * xhat).mean(-1, keepdims=True))
        return dx, (g * xhat).sum(axis=0), g.sum(axis=0)


x_ = Node(np.arange(6.0).reshape(2, 3))
y_ = apply(Tanh, apply(Mul, x_, Node(0.1)))
print("tanh(0.1 x) =", np.round(y_.data, 3), "| made by", y_._fn.__name__)
assert y_._prev[0]._fn is Mul and y_._prev[0]._prev[0] is x_

# %% [markdown]
# ## The backward walk
#
# `loss` depends on its inputs, which depend on theirs: a node's gradient is complete only
# when every node that uses it has passed its share back. So we first list the nodes in
# *topological order* (each after everything it depends on), then walk that list backwards.
# The sort is iterative (a deep graph would overflow Python's recursion) and follows the
# parents in argument order, so every run visits the nodes in the same order.

# %%
def topological_order(root):
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)                    # all its parents are already in `order`
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))            # come back after the parents
            stack.extend((p, False) for p in reversed(node._prev))
    return order


def backward(root):
    grads = {id(root): np.ones_like(root.data)}   # d loss / d loss = 1
    for node in reversed(topological_order(root)):
        g = grads.pop(id(node), None)
        if g is None:
            continue                              # the loss does not depend on it
        if node._fn is None:                      # a leaf: keep its gradient
            node.grad = g if node.grad is None else node.grad + g
            continue
        for parent, pg in zip(node._prev, node._fn.backward(node._ctx, g)):
            grads[id(parent)] = grads[id(parent)] + pg if id(parent) in grads else pg


a = Node([3.0])
diamond = apply(Sum, apply(Mul, apply(Mul, a, a), a))   # a³: a is used three times
backward(diamond)
print("d(a^3)/da at 3 =", a.grad, "| visit order:",
      [n._fn.__name__ if n._fn else "leaf" for n in topological_order(diamond)])
assert np.allclose(a.grad, 3 * 3.0 ** 2)                 # every path summed

# %% [markdown]
# ## Check one: against the engine
#
# A small network, loss = Σ tanh(LayerNorm(x) · v), in our graph and in the engine's, from
# the same float64 arrays. The gradients of all four inputs must agree to rounding.

# %%
rng = np.random.default_rng(0)
X, Wt, Bs, V = (rng.standard_normal(s) for s in [(4, 5), (5,), (5,), (4, 5)])


def our_loss(x, w, b, v):
    return apply(Sum, apply(Tanh, apply(Mul, apply(LayerNorm, x, w, b), v)))


ours = [Node(a) for a in (X, Wt, Bs, V)]
loss = our_loss(*ours)
backward(loss)

theirs = [Tensor(a, requires_grad=True) for a in (X, Wt, Bs, V)]
engine_loss = (F.tanh(F.layer_norm(theirs[0], theirs[1], theirs[2]) * theirs[3])).sum()
engine_loss.backward()
print(f"loss: ours {loss.data:.6f}, engine {engine_loss.item():.6f}")
for name, mine, eng in zip("xwbv", ours, theirs):
    print(f"d loss/d {name}: max |ours - engine| = {np.abs(mine.grad - eng.grad).max():.1e}")
    assert np.allclose(mine.grad, eng.grad, rtol=1e-9, atol=1e-10)

# %% [markdown]
# ## Check two: against finite differences
#
# The engine could share our mistake. Numbers cannot: nudge one element by ±ε, rerun the
# forward, and (f(x + ε) - f(x - ε)) / 2ε is the derivative to about ε² (float64, ε = 1e-6).

# %%
def numeric_grad(f, arrays, i, eps=1e-6):
    grad = np.zeros_like(arrays[i])
    for j in np.ndindex(arrays[i].shape):
        bumped = [a.copy() for a in arrays]
        bumped[i][j] += eps
        up = f(*[Node(a) for a in bumped]).data
        bumped[i][j] -= 2 * eps
        grad[j] = (up - f(*[Node(a) for a in bumped]).data) / (2 * eps)
    return grad


for i, name in enumerate("xwbv"):
    num = numeric_grad(our_loss, [X, Wt, Bs, V], i)
    err = np.abs(num - ours[i].grad).max()
    print(f"d loss/d {name}: max |analytic - numeric| = {err:.1e}")
    assert np.allclose(ours[i].grad, num, rtol=1e-6, atol=1e-7)

# %% [markdown]
# ## Now read the engine's autograd
#
# `engine/autograd.py` is the same design. Its `topological_order` and `backward` are below;
# what it adds to ours:
# - `grads.pop` frees each intermediate gradient as soon as it has been used;
# - `ctx.needs_input_grad` lets a backward skip gradients nobody asked for;
# - `retain_graph=False` frees the saved arrays (`ctx.free()`), so a second backward
#   through the same graph fails with a clear message instead of reading stale data;
# - `detect_anomaly` names the first op that turned finite numbers into NaN or inf.

# %%
print(inspect.getsource(autograd.topological_order))
print(inspect.getsource(autograd.backward))
assert "reversed(order)" in inspect.getsource(autograd.backward)

# %% [markdown]
# ## Our Function inside the engine
#
# The engine's `Function` has the same two static methods plus a `name` and a one-line
# `formula` (what `attn graph` prints). Subclass it and our `Mul` runs in the engine's
# graph, with the engine's walk; the gradients match its own `*`.

# %%
class EngineMul(autograd.Function):
    name, formula = "my_mul", "d(a b) = b da + a db"
    forward, backward = Mul.forward, Mul.backward


a_t, b_t = Tensor(X, requires_grad=True), Tensor(Wt, requires_grad=True)
EngineMul.apply(a_t, b_t).tanh().sum().backward()
a_ref, b_ref = Tensor(X, requires_grad=True), Tensor(Wt, requires_grad=True)
(a_ref * b_ref).tanh().sum().backward()
print("EngineMul in the engine's graph: grads equal to the engine's own mul:",
      np.allclose(a_t.grad, a_ref.grad) and np.allclose(b_t.grad, b_ref.grad))
assert np.allclose(a_t.grad, a_ref.grad) and np.allclose(b_t.grad, b_ref.grad)

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 4 --exercise` writes a copy with these parts removed;
# `attn tutorial 4 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `Exp`: forward returns exp(a); backward needs only what forward returned.
# 2. `Div`: a / b with broadcasting. d(a/b)/da = 1/b, d(a/b)/db = -a/b²; sum each
#    gradient back to its input's shape.

# %%
class Exp:
    @staticmethod
    def forward(ctx, a):
        # >>> exercise 1: compute exp(a), save what backward needs, return it
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out
        # <<< exercise 1

    @staticmethod
    def backward(ctx, g):
        # >>> exercise 1: return a tuple with d loss / d a
        (out,) = ctx.saved
        return (g * out,)
        # <<< exercise 1


class Div:
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        # >>> exercise 2: return (d loss / d a, d loss / d b), each in its input's shape
        a, b = ctx.saved
        return sum_to(g / b, a.shape), sum_to(-g * a / (b * b), b.shape)
        # <<< exercise 2


def exercise_loss(x, w):
    return apply(Sum, apply(Exp, apply(Div, x, w)))


Wpos = np.abs(Wt) + 1.0                                   # (5,): keep the divisor away from 0
mine = [Node(X), Node(Wpos)]
backward(exercise_loss(*mine))
for i, name in enumerate("xw"):
    num = numeric_grad(exercise_loss, [X, Wpos], i)
    assert mine[i].grad.shape == num.shape, f"d loss/d {name} has the wrong shape"
    assert np.allclose(mine[i].grad, num, rtol=1e-6, atol=1e-7), f"d loss/d {name} is wrong"
print("Exp and Div agree with finite differences")
