# %% [markdown]
# # 1. Tensors and the graph they build
#
# A `Tensor` wraps a numpy array. Every operation on tensors that require gradients
# records *how* its result was made: the op, its inputs, and the formula of its derivative.
# That record is the computation graph; `loss.backward()` walks it in reverse.
# Run this file plainly (`python tutorials/01_tensors_and_graph.py`), open it as a
# notebook, or step through it with `attn tutorial 1`.
#
# **First run:** the engine's Numba kernels compile the first time a cell uses them
# (seconds to a minute on a small machine, with no output meanwhile); they are cached on
# disk, so later runs start at once.

# %%
import numpy as np

from engine import Tensor
from engine.graph import count_ops, render_tree, to_dot

x = Tensor([[1.0, 2.0, 3.0]], requires_grad=True)   # (1, 3)
print(x, x.shape, x.dtype)
assert x.dtype == np.float32  # Python floats become float32 (a float64 array stays float64)
assert x.grad is None         # nothing has flowed back yet

# %% [markdown]
# ## A leaf and an op
#
# `x` is a *leaf*: made by you, not by an op. Multiplying it makes a new tensor that
# remembers its parents (`_prev`) and the op that made it (`_op`).

# %%
w = Tensor([[0.5], [-1.0], [0.25]], requires_grad=True)  # (3, 1)
y = x @ w                                                           # (1, 1)
print("y =", y)
print("made by:", y._op.name, "| its derivative:", y._op.formula)
assert y._op.name == "matmul"
assert y._prev[0] is x and y._prev[1] is w  # parents in argument order

# %% [markdown]
# ## The symbolic view
#
# `render_tree` prints the graph behind a tensor, root first, one line per node, with each
# op's derivative formula. `attn graph "tanh(x @ w) ** 2" --shape x=1,3 --shape w=3,1`
# prints the same from the command line.

# %%
loss = ((x @ w).tanh() ** 2).sum()
print(render_tree(loss))
assert count_ops(loss) == {"matmul": 1, "pow": 1, "sum": 1, "tanh": 1}

# %% [markdown]
# ## Gradients flow back through that graph
#
# `backward()` visits the nodes in reverse topological order and applies each formula
# (the chain rule). For this loss, d loss / d x = 2 tanh(z) (1 - tanh(z)^2) w^T with z = x w.

# %%
loss.backward()
z = (x.data @ w.data).item()
by_hand = 2 * np.tanh(z) * (1 - np.tanh(z) ** 2) * w.data.T
print("engine:", x.grad, "\nby hand:", by_hand)
assert np.allclose(x.grad, by_hand, rtol=1e-5)

# %% [markdown]
# ## A node used twice
#
# When a tensor feeds two ops (a "diamond"), its gradient is the sum of both paths. The
# tree prints the second visit as `(see above)`; Graphviz DOT (`to_dot`) draws both edges.

# %%
a = Tensor([3.0], requires_grad=True)
b = a * a + a          # a appears three times
b.sum().backward()
print(render_tree(b))
assert a.grad[0] == 2 * 3.0 + 1  # d(a^2 + a)/da = 2a + 1: every path summed
dot = to_dot(b)
assert dot.count("->") == 4      # mul takes a twice, add takes mul and a
print(dot.splitlines()[0], "...", len(dot.splitlines()), "lines of DOT")

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 1 --exercise` writes a copy with these parts removed;
# `attn tutorial 1 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `leaves(t)`: the distinct leaf tensors `t` depends on (those with no `_prev`), in the
#    order a walk from `t` through `_prev` first meets them. Use a loop, not recursion.
# 2. `cube_grad(values)`: d/dx of sum(x ** 3) by hand, for the numpy array `values`.

# %%
def leaves(t):
    # >>> exercise 1: walk t._prev (a stack or queue); return a list of the leaves
    found, seen, todo = [], set(), [t]
    while todo:
        node = todo.pop(0)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if not node._prev:
            found.append(node)
        todo.extend(node._prev)
    return found
    # <<< exercise 1


def cube_grad(values):
    # >>> exercise 2: return the gradient array
    return 3 * values ** 2
    # <<< exercise 2


found = leaves(((x @ w).tanh() ** 2).sum())
assert len(found) == 2 and found[0] is x and found[1] is w, "leaves should be [x, w]"
assert [t is a for t in leaves(a * a + a)] == [True], "a diamond has one leaf"
c = Tensor([[1.0, -2.0, 0.5]], requires_grad=True)
(c ** 3).sum().backward()
assert np.allclose(cube_grad(c.data), c.grad), "d sum(x^3) / dx is 3 x^2"
print("leaves and cube_grad agree with the graph and the engine")
