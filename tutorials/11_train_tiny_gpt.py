# %% [markdown]
# # 11. Training a tiny GPT on reversal, and reading its attention
#
# The task: read a digit string, then write it backwards (`31415=51413.`). A decoder-only
# Transformer sees the whole row and predicts each next token; for the answer it must look
# back at the *mirrored* input position. We train a small GPT for a couple of seconds, then
# find the heads that learned to do exactly that. (`attn train` runs the full-size version:
# 600 steps, strings of 8-16 digits.)
#
# **First run:** the engine's Numba kernels compile the first time a cell uses them
# (seconds to a minute on a small machine, with no output meanwhile); they are cached on
# disk, so later runs start at once.

# %%
import tempfile

import numpy as np

from engine import viz
from engine.models import attention_maps
from engine.models.generate import generate
from engine.training import TrainConfig, load_model, train

run_dir = tempfile.TemporaryDirectory(prefix="tutorial11-")
cfg = TrainConfig(task="reverse", task_options={"min_len": 5, "max_len": 5},
                  model="gpt", config="tiny",
                  model_overrides={"n_layer": 2, "n_head": 4, "n_embd": 32, "block_size": 16},
                  steps=150, warmup_steps=20, batch_size=32, lr=3e-3, eval_every=0,
                  eval_examples=50, final_eval_examples=100, ckpt_every=0,
                  out_dir=run_dir.name, seed=0)
history = train(cfg, progress=False)
print("final:", history["final"])
assert history["final"]["exact_match"] >= 0.9  # 100% of 100 held-out strings, seed 0

# %% [markdown]
# ## The loss curve
#
# One value per step in `history["train"]`, drawn as a sparkline: a fast drop once the
# model finds the mirrored position, after the warm-up.

# %%
losses = np.asarray(history["train"]["loss"])
bars = "▁▂▃▄▅▆▇█"
chunks = np.array_split(losses, 50)
means = np.array([c.mean() for c in chunks])
scaled = (means - means.min()) / (means.max() - means.min())
print(f"loss {losses[0]:.2f} ", "".join(bars[round(s * 7)] for s in scaled),
      f" {losses[-1]:.3f}")
assert losses[-10:].mean() < losses[:10].mean() / 5

# %% [markdown]
# ## Ask it something
#
# `load_model` rebuilds the model and its task from the checkpoint; `generate` decodes
# greedily from the prompt `31415=`.

# %%
model, task = load_model(run_dir.name)
digits = task.parse_prompt("31415")
prompt = task.prompt(digits)                                 # the tokens of "31415="
answer = generate(model, prompt[None, :], len(digits) + 1, greedy=True)[0, len(prompt):]
print(task.vocab.decode(prompt), "->", task.vocab.decode(answer))
assert task.vocab.decode(answer) == "51413."

# %% [markdown]
# ## Its attention maps
#
# `attention_maps(model, tokens)` returns every map of any model family; for the GPT,
# `layer.{i}` of shape (B, heads, T, T). Position `=` (index 5) predicts the first answer
# digit, which is input position 4; the next predicts input position 3, and so on. We score
# each head by the weight it puts on those mirrored positions.

# %%
tokens = np.concatenate([prompt, answer])
maps = attention_maps(model, tokens[None, :])
W = task.input_width                                         # 5 input positions
scores = {}
for name, m in maps.items():
    for h in range(m.shape[1]):
        a = m[0, h]                                          # (T, T): query row, key column
        scores[name, h] = np.mean([a[W + t, W - 1 - t] for t in range(len(digits))])
        print(f"{name} head {h}: weight on the mirrored position {scores[name, h]:.2f}")
best = max(scores, key=scores.get)
assert scores[best] > 0.5  # some head reads the mirror (layer 0 ~0.97 here)

# %% [markdown]
# ## The mirror, drawn
#
# The best head's rows for the answer positions against the input columns: the
# anti-diagonal. `attn sample --attention` and `attn demo` draw the same.

# %%
name, h = best
a = maps[name][0, h][W:W + len(digits), :W]                 # (answer positions, inputs)
rows = [task.vocab.itos[t] for t in tokens[W:W + len(digits)]]  # the token at each query
cols = [task.vocab.itos[t] for t in prompt[:W]]
print(viz.heatmap(a, rows, cols, title=f"{name} head {h}: query (row) -> input (column)"))
assert np.all(np.argmax(a, axis=1) == np.arange(len(digits))[::-1])
run_dir.cleanup()

# %% [markdown]
# ## As figures, when matplotlib is installed
#
# The best head's whole layer and the loss curve as matplotlib figures (the optional extra:
# `pip install 'attn-engine[plots]'`; from the command line `attn demo --plot` and
# `attn runs --plot` draw the same): inline in a notebook, saved to files when run as a
# script. Without matplotlib this cell says so and goes on: pictures are never required.

# %%
import os

if viz.have_matplotlib():
    folder = tempfile.gettempdir()
    heads_png = os.path.join(folder, "attn-tutorial11-heads.png")
    loss_png = os.path.join(folder, "attn-tutorial11-loss.png")
    labels = list(task.vocab.decode(tokens))                 # one character per token
    fig = viz.heads_figure(maps[name][0], labels, labels,
                           title=f"31415 -> 51413.: {name}, every head (one scale)")
    viz.show(fig, heads_png)
    viz.show(viz.loss_figure(np.arange(1, len(losses) + 1), losses,
                             title="tiny GPT on reversal"), loss_png)
    assert sum(1 for ax in fig.axes if ax.images) == maps[name].shape[1]  # a panel per head
    if not viz.in_notebook():
        assert os.path.getsize(heads_png) > 0 and os.path.getsize(loss_png) > 0
else:
    print("matplotlib is not installed, so no figures: pip install 'attn-engine[plots]'")

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 11 --exercise` writes a copy with these parts removed;
# `attn tutorial 11 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `mirror_score(a, W, n)`: for one head's (T, T) map `a`, the mean weight that answer
#    position W + t puts on input position W - 1 - t, over t < n (the score used above).
# 2. `focus(a)`: how concentrated a map is: the mean over its rows of the largest weight
#    in the row (1 for a head that always reads one key, 1/T for a uniform one).

# %%
def mirror_score(a, W, n):
    # >>> exercise 1: return a float
    return float(np.mean([a[W + t, W - 1 - t] for t in range(n)]))
    # <<< exercise 1


def focus(a):
    # >>> exercise 2: return a float
    return float(a.max(axis=-1).mean())
    # <<< exercise 2


for (name_, h_), s_ in scores.items():
    assert np.isclose(mirror_score(maps[name_][0, h_], W, len(digits)), s_), (name_, h_)
assert np.isclose(focus(np.eye(4)), 1.0) and np.isclose(focus(np.full((4, 4), 0.25)), 0.25)
print("mirror head focus:", round(focus(maps[name][0, h][W:W + len(digits)]), 2))
