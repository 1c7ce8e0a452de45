# %% [markdown]
# # 10. A GPT from parts: embeddings, blocks, the LM head, the loss, AdamW and the loop
#
# Tutorial 9 built one Transformer block. A GPT is that block stacked, with a way in
# (token and position embeddings), a way out (a final layer norm and a linear "LM head"
# giving a score per vocabulary token), a loss (cross-entropy on the next token) and a
# training loop. We write each part, train the model to reverse digit strings
# (`31415926=62951413.`), and take pictures of its attention as it trains: the loss creeps
# down from ln V towards ln 10 ≈ 2.3 (a digit comes next, but which?) and then falls off a
# cliff once one head has learned to read the *mirrored* input position. Tutorial 11 does the same
# with the engine's `train()`.

# %%
import numpy as np

import engine.functional as F
import ops.runtime
from engine import Tensor, nn, no_grad, optim, viz
from engine.data import IGNORE_INDEX, SyntheticTask

# The process tuning `attn` and the trainer apply (Numba's threading layer, one BLAS
# thread): importing the engine leaves your process alone, so a program that trains
# asks for it, as engine.training.train does. See ops/runtime.py.
ops.runtime.configure()

task = SyntheticTask("reverse", min_len=8, max_len=8)
idx, targets = task.get_batch("train", 2, np.random.default_rng(0))   # (B, T) int64 each
print(task.vocab.decode(idx[0]), "| targets (-100 = not scored):", targets[0])
V, T = task.vocab_size, task.seq_len                                   # 14 tokens, 17 positions
assert idx.shape == (2, T) and (targets[0] == IGNORE_INDEX).sum() == 8  # the prompt is not scored

# %% [markdown]
# ## The way in: a vector per token, a vector per position
#
# `wte` (V, C) holds a learned vector for each token; `wpe` (T, C) one for each position.
# Attention itself ignores order (it is a weighted sum over a set), so the position vector
# added to each token's vector is the model's only way to know *where* a digit is: exactly
# what reversing needs.

# %%
C, H, L = 32, 4, 2                                   # channels, heads, blocks
rng = np.random.default_rng(0)
wte = nn.Embedding(V, C, rng=rng, std=0.02)          # (V, C)
wpe = nn.Embedding(T, C, rng=rng, std=0.02)          # (T, C)
x = wte(Tensor(idx)) + wpe(Tensor(np.arange(T)))     # (B, T, C) + (T, C): broadcast over B
print("embedded:", x.shape)
assert np.allclose(x.numpy()[1, 3], wte.weight.numpy()[idx[1, 3]] + wpe.weight.numpy()[3])

# %% [markdown]
# ## The model: embeddings, L blocks, a final norm, the LM head
#
# Each block is tutorial 9's pre-LayerNorm block, written out so that the forward can keep
# every head's attention map when asked. The LM head maps each position's C numbers to V
# scores (*logits*): position t's logits predict token t + 1.
#
# **First run:** the first forward and backward compile the engine's kernels (layer norm,
# attention, matmul, ...), which can take a minute on a small machine; Numba caches them.

# %%
class GPTFromParts(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.wte = nn.Embedding(V, C, rng=rng, std=0.02)
        self.wpe = nn.Embedding(T, C, rng=rng, std=0.02)
        self.blocks = nn.ModuleList([nn.TransformerBlock(C, H, causal=True, rng=rng)
                                     for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)
        self.lm_head = nn.Linear(C, V, bias=False, rng=rng, std=0.02)

    def forward(self, idx, maps=None):
        """idx (B, T) -> logits (B, T, V); with a list `maps`, append each block's (B, H, T, T)."""
        x = self.wte(Tensor(idx)) + self.wpe(Tensor(np.arange(idx.shape[1])))   # (B, T, C)
        for block in self.blocks:
            if maps is None:
                x = x + block.attn(block.ln_1(x))                   # communicate
            else:
                a, weights = block.attn(block.ln_1(x), need_weights=True)
                maps.append(weights.numpy())                        # (B, H, T, T)
                x = x + a
            x = x + block.mlp(block.ln_2(x))                        # compute
        return self.lm_head(self.ln_f(x))                          # (B, T, V)


model = GPTFromParts(np.random.default_rng(0))
logits = model(idx)
print("logits:", logits.shape, "| parameters:", model.num_parameters())
assert logits.shape == (2, T, V)

# %% [markdown]
# ## The loss: cross-entropy on the next token
#
# Softmax turns a position's V logits into probabilities; the loss is -log of the
# probability given to the right next token, averaged over the scored positions (targets
# of -100, the prompt and the padding, count for nothing). An untrained model spreads its
# probability evenly, so its loss starts near ln V.

# %%
flat, tg = logits.reshape(-1, V), targets.reshape(-1)        # (B*T, V), (B*T,)
loss = F.cross_entropy(flat, tg)
z = flat.numpy().astype(np.float64)
logp = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1,
                                                                                keepdims=True))
keep = tg != IGNORE_INDEX
by_hand = -logp[keep, tg[keep]].mean()
print(f"loss {loss.item():.4f} | by hand {by_hand:.4f} | ln V = {np.log(V):.4f}")
assert np.isclose(loss.item(), by_hand, rtol=1e-5) and abs(by_hand - np.log(V)) < 0.1

# %% [markdown]
# ## AdamW, written out
#
# Per parameter, a running mean of the gradient m and of its square v, both corrected for
# starting at zero; the step is m̂ / (√v̂ + ε): every weight moves by about lr, whatever the
# scale of its gradient. Weight decay ("W") shrinks matrices towards 0 separately from the
# gradient (biases and norms are not decayed). One step of ours equals `optim.AdamW`'s.

# %%
def adamw_step(params, state, step, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.01):
    for p in params:
        m, v = state.setdefault(id(p), (np.zeros_like(p.data), np.zeros_like(p.data)))
        m[...] = b1 * m + (1 - b1) * p.grad                     # running mean of g
        v[...] = b2 * v + (1 - b2) * p.grad ** 2                # running mean of g²
        if p.ndim >= 2:
            p.data -= lr * wd * p.data                          # decoupled weight decay
        p.data -= lr * (m / (1 - b1 ** step)) / (np.sqrt(v / (1 - b2 ** step)) + eps)


w0 = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
grads = np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)
ours, theirs = Tensor(w0.copy(), requires_grad=True), Tensor(w0.copy(), requires_grad=True)
state, reference = {}, optim.AdamW([theirs], lr=0.1, weight_decay=0.01)
for step, g in enumerate(grads, 1):
    ours.grad, theirs.grad = g, g.copy()
    adamw_step([ours], state, step, lr=0.1)
    reference.step()
print("after 2 steps, max |ours - optim.AdamW| =", np.abs(ours.data - theirs.data).max())
assert np.allclose(ours.data, theirs.data, atol=1e-6)

# %% [markdown]
# ## The training loop, and pictures on the way
#
# Fifteen lines: draw a batch, forward, loss, zero the gradients, backward, step. Every ten
# steps we also run one fixed example and keep the loss and every head's attention map.
# A head that has learned reversal puts its weight, for answer position t, on input
# position 7 - t: its *mirror score* is the mean weight on those cells.

# %%
probe_digits = np.array([3, 1, 4, 1, 5, 9, 2, 6])
probe = np.concatenate([task.prompt(probe_digits), probe_digits[::-1]])[None]  # (1, 16)
W = task.input_width                                          # 8 input positions


def mirror_scores(maps):
    """{(layer, head): mean weight of the answer rows on their mirrored input}."""
    return {(i, h): float(np.mean([m[0, h, W + t, W - 1 - t] for t in range(W)]))
            for i, m in enumerate(maps) for h in range(m.shape[1])}


model, state, rng = GPTFromParts(np.random.default_rng(0)), {}, np.random.default_rng(0)
params, losses, snapshots = model.parameters(), [], {}
for step in range(1, 121):
    idx, targets = task.get_batch("train", 32, rng)
    logits = model(idx)
    loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
    model.zero_grad()
    loss.backward()
    adamw_step(params, state, step, lr=1e-3)
    losses.append(loss.item())
    if step % 10 == 0:
        maps = []
        with no_grad():
            model(probe, maps)
        snapshots[step] = maps
        print(f"step {step:3}  loss {np.mean(losses[-10:]):.3f}  "
              f"best mirror score {max(mirror_scores(maps).values()):.2f}")
assert np.mean(losses[-10:]) < 0.5

# %% [markdown]
# ## The cliff is the moment the mirror head forms
#
# The loss curve as a sparkline, then the mirror score of the head that ends up best, at
# the same steps. The head forms first (its score's steepest rise), and the loss falls
# right behind it (ten to thirty steps later, depending on the seed), as the layers after
# it learn to use what it reads: when the loss falls fastest, the head is already more than
# half formed. The mirror head is the cause of the cliff.

# %%
steps = sorted(snapshots)
final = mirror_scores(snapshots[steps[-1]])
layer, head = max(final, key=final.get)
score = [mirror_scores(snapshots[s])[layer, head] for s in steps]
loss_at = [np.mean(losses[s - 10:s]) for s in steps]
print(f"loss  {viz.sparkline(loss_at)}  {loss_at[0]:.2f} -> {loss_at[-1]:.2f}")
print(f"score {viz.sparkline(score)}  {score[0]:.2f} -> {score[-1]:.2f}  "
      f"(layer {layer} head {head})")
steepest_fall = int(np.argmin(np.diff(loss_at)))
steepest_rise = int(np.argmax(np.diff(score)))
print(f"steepest loss fall: steps {steps[steepest_fall]}-{steps[steepest_fall + 1]}; "
      f"steepest mirror rise: steps {steps[steepest_rise]}-{steps[steepest_rise + 1]}")
assert score[0] < 0.3 and score[-1] > 0.8
assert 0 <= steepest_fall - steepest_rise <= 3           # the head first, the loss behind
assert score[steepest_fall] > score[-1] / 2              # more than half formed by then

# %% [markdown]
# ## Three snapshots: before, during, after
#
# The mirror head's answer rows (queries) against the input columns (keys). Before the
# cliff its weight is smeared; during it the anti-diagonal appears; after it, it is sharp.
# All three use one shade scale (0 to 1), so they can be compared.

# %%
rows = [str(d) for d in probe_digits[::-1]]
cols = [str(d) for d in probe_digits]
picks = (steps[0], steps[steepest_rise + 1], steps[-1])
for s in picks:
    a = snapshots[s][layer][0, head][W:W + W, :W]             # (answer rows, input columns)
    print(viz.heatmap(a, rows, cols, vmax=1.0,
                      title=f"step {s}, loss {loss_at[steps.index(s)]:.2f}, "
                            f"mirror score {mirror_scores(snapshots[s])[layer, head]:.2f}"))
last = snapshots[steps[-1]][layer][0, head][W:W + W, :W]
assert np.all(last.argmax(axis=1) == np.arange(W)[::-1])      # the anti-diagonal

# %% [markdown]
# ## As a figure, when matplotlib is installed
#
# The loss curve with the snapshot steps marked, above the mirror head at every other
# snapshot, all on one scale from 0 to 1 (`attn runs RUN --attention --plot` draws the same
# for a run of `attn train`, which records these snapshots at each evaluation). Inline in a
# notebook, saved to a file when run as a script; without matplotlib this cell says so.

# %%
import os
import tempfile

if viz.have_matplotlib():
    panels = [(snapshots[s][layer][0, head][W:W + W, :W], rows, cols, f"step {s}")
              for s in steps[1::2]]
    fig = viz.snapshots_figure(np.arange(1, len(losses) + 1), losses, steps, panels,
                               title=f"layer {layer} head {head} as the loss falls")
    viz.show(fig, os.path.join(tempfile.gettempdir(), "attn-tutorial10-snapshots.png"))
    assert sum(1 for ax in fig.axes if ax.images) == len(panels) == 6
else:
    print("matplotlib is not installed, so no figure: pip install 'attn-engine[plots]'")

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 10 --exercise` writes a copy with these parts removed;
# `attn tutorial 10 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `cross_entropy_np(logits, targets)`: the mean of -log softmax at the target, over the
#    rows whose target is not IGNORE_INDEX, in numpy (stable: subtract each row's max).
# 2. `greedy_reverse(model, digits)`: feed the prompt, append the argmax of the last
#    position's logits, repeat until the answer is as long as the input.

# %%
def cross_entropy_np(logits, targets):
    # >>> exercise 1: logits (N, V) float, targets (N,) int; return a float
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    keep = targets != IGNORE_INDEX
    return float(-logp[keep, targets[keep]].mean())
    # <<< exercise 1


def greedy_reverse(model, digits):
    tokens = task.prompt(digits)
    # >>> exercise 2: extend `tokens` one argmax at a time (use `with no_grad():`)
    with no_grad():
        for _ in range(len(digits)):
            logits = model(tokens[None]).numpy()              # (1, t, V)
            tokens = np.append(tokens, logits[0, -1].argmax())
    # <<< exercise 2
    return tokens[len(task.prompt(digits)):]


idx, targets = task.get_batch("val", 8, np.random.default_rng(5))
with no_grad():
    logits = model(idx)
want = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1)).item()
assert np.isclose(cross_entropy_np(logits.numpy().reshape(-1, V).astype(np.float64),
                                   targets.reshape(-1)), want, rtol=1e-4), "cross-entropy"
answer = greedy_reverse(model, probe_digits)
print("31415926 ->", task.vocab.decode(answer))
assert task.vocab.decode(answer) == "62951413", "greedy decoding did not reverse the input"
