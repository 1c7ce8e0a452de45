# %% [markdown]
# # 12. Bahdanau, the Transformer, the ViT: one idea three times
#
# Attention is a soft lookup: a query scores every key, the softmax turns the scores into
# weights, the output is the weighted mix of the values. The three models below differ in
# where queries, keys and values come from and how a score is computed:
#
# | model | queries | keys/values | score |
# |---|---|---|---|
# | seq2seq-gru (Bahdanau 2014) | decoder GRU state | encoder GRU states | vᵀ tanh(W q + U k) |
# | seq2seq-transformer (2017) | decoder positions | encoder positions (cross) | q·k / √d |
# | vit (2020) | image patches and a class token | the same (self-attention) | q·k / √d |
#
# We train each briefly on data the project generates and read its attention with the same
# call: `attention_maps(model, inputs)`.
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

FAST = {"eval_every": 0, "eval_examples": 50, "final_eval_examples": 100, "ckpt_every": 0,
        "warmup_steps": 20, "seed": 0}


def train_briefly(model, task, overrides, steps, lr, **options):
    """Train `model` on `task` for a few seconds; return (model, data, history)."""
    out = tempfile.TemporaryDirectory(prefix="tutorial12-")
    RUNS.append(out)  # removed at the end
    history = train(TrainConfig(task=task, model=model, model_overrides=overrides,
                                steps=steps, batch_size=32, lr=lr, out_dir=out.name,
                                **options, **FAST), progress=False)
    return (*load_model(out.name), history)


def reverse_with(model, task, text):
    """Decode `text` reversed; return the tokens (prompt + answer) and the answer text."""
    digits = task.parse_prompt(text)
    prompt = task.prompt(digits)                              # "31415=" as tokens
    answer = generate(model, prompt[None, :], len(digits) + 1, greedy=True)[0, len(prompt):]
    return np.concatenate([prompt, answer]), task.vocab.decode(answer)


REVERSE5 = {"task_options": {"min_len": 5, "max_len": 5}}
RUNS = []
print("ready")

# %% [markdown]
# ## 1. Bahdanau: additive attention between two GRUs
#
# A bidirectional GRU reads the digits; at each output step the decoder's state scores
# every encoder state, and the weighted sum (the *context*) helps predict the next digit.
# Its map, `alignment` (B, decoder steps, source positions), is the learned alignment.

# %%
gru, task, history = train_briefly("seq2seq-gru", "reverse",
                                   {"n_embd": 16, "hidden": 32, "attn_size": 32}, 80, 1e-2,
                                   **REVERSE5)
tokens, text = reverse_with(gru, task, "31415")
maps = attention_maps(gru, tokens[None, :])
print("exact match", history["final"]["exact_match"], "| 31415 ->", text,
      "| maps:", {k: v.shape for k, v in maps.items()})
a = maps["alignment"][0][:5]                                  # (answer digits, source)
src = [task.vocab.itos[t] for t in tokens[:5]]
print(viz.heatmap(a, list(text[:5]), src, title="seq2seq-gru: answer digit -> source"))
assert text == "51413." and np.all(a.argmax(axis=1) == [4, 3, 2, 1, 0])  # the anti-diagonal

# %% [markdown]
# ## 2. The Transformer: cross-attention, several heads
#
# No recurrence: the encoder is self-attention blocks (no causal mask), and each decoder
# block attends causally to its own past, then *across* to the encoder's output. Maps:
# `encoder.{i}` (B, H, S, S), `decoder.{i}.self` (B, H, T, T), `decoder.{i}.cross`
# (B, H, T, S); averaged over heads, the cross map shows the same mirror.

# %%
tr, task, history = train_briefly("seq2seq-transformer", "reverse",
                                  {"n_embd": 32, "n_enc_layer": 1, "n_dec_layer": 1}, 150,
                                  3e-3, **REVERSE5)
tokens, text = reverse_with(tr, task, "31415")
maps = attention_maps(tr, tokens[None, :])
print("exact match", history["final"]["exact_match"], "| 31415 ->", text,
      "| maps:", {k: v.shape for k, v in maps.items()})
cross = maps["decoder.0.cross"][0].mean(axis=0)[:5]           # (answer digits, source)
print(viz.heatmap(cross, list(text[:5]), src, title="cross-attention, mean of the heads"))
assert text == "51413." and cross[0].argmax() == 4 and cross[4].argmax() == 0

# %% [markdown]
# ## 3. The ViT: attention over image patches
#
# A 16×16 image becomes 16 patches of 4×4 pixels, each a token, plus a learned class token
# whose final state is classified. Its map `cls` (B, patches) says which patches the class
# token read in the last layer; `rollout` follows attention through all the layers. A few
# seconds of training only starts to learn the ten glyph classes (`attn train --model vit`
# runs 1,000 steps at batch 192), but the maps have their final shape already.

# %%
vit, glyphs, history = train_briefly("vit", "glyphs", {"n_layer": 1, "n_embd": 32}, 40, 3e-3)
losses = np.asarray(history["train"]["loss"])
print(f"loss {losses[:10].mean():.2f} -> {losses[-10:].mean():.2f} in 40 steps")
images, labels = glyphs.held_out(1)
maps = attention_maps(vit, images)
print({k: v.shape for k, v in maps.items()})
print(viz.image(images[0]))
print("class token -> patches (last layer):")
print(viz.patch_grid(maps["cls"][0], vit.config.image_size // vit.config.patch_size))
assert maps["cls"].shape == (1, 16) and np.isclose(maps["layer.0"][0, 0, 0].sum(), 1.0)
assert losses[-10:].mean() < losses[:10].mean()
for run in RUNS:
    run.cleanup()

# %% [markdown]
# ## The three maps side by side, when matplotlib is installed
#
# The same three pictures as one figure (`pip install 'attn-engine[plots]'`): two
# anti-diagonals, one for each model that learned to reverse, and the ViT's class token
# over its 4×4 patches, each panel on its own scale with its own colorbar (a class token's
# weights over 17 tokens are small beside an alignment's). Inline in a notebook, saved to a
# file when run as a script; without matplotlib this cell says so and goes on.

# %%
import os

if viz.have_matplotlib():
    grid = vit.config.image_size // vit.config.patch_size
    patches = maps["cls"][0].reshape(grid, grid)              # row by row, as patch_grid
    path = os.path.join(tempfile.gettempdir(), "attn-tutorial12-maps.png")
    fig = viz.maps_figure([(a, list("51413"), src, "seq2seq-gru: alignment"),
                           (cross, list("51413"), src, "transformer: cross, mean of heads"),
                           (patches, range(grid), range(grid), "vit: class token -> patches")],
                          title="rows attend to columns", scale="each")
    viz.show(fig, path)
    assert sum(1 for ax in fig.axes if ax.images) == 3
    assert viz.in_notebook() or os.path.getsize(path) > 0
else:
    print("matplotlib is not installed, so no figure: pip install 'attn-engine[plots]'")

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 12 --exercise` writes a copy with these parts removed;
# `attn tutorial 12 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `additive_weights(q, K, Wq, Wk, bk, v)`: Bahdanau's weights for one query q (Dq,)
#    over keys K (S, Dk): softmax over j of vᵀ tanh(Wq q + Wk k_j + bk), in numpy (weights
#    stored as (out, in), as `nn.Linear` stores them).
# 2. `dot_weights(q, K)`: the Transformer's weights for the same query against the same
#    keys (q and K of one size D): softmax of q·k_j / √D.

# %%
def additive_weights(q, K, Wq, Wk, bk, v):
    # >>> exercise 1: return (S,) weights
    s = np.tanh(K @ Wk.T + bk + Wq @ q) @ v
    e = np.exp(s - s.max())
    return e / e.sum()
    # <<< exercise 1


def dot_weights(q, K):
    # >>> exercise 2: return (S,) weights
    s = K @ q / np.sqrt(len(q))
    e = np.exp(s - s.max())
    return e / e.sum()
    # <<< exercise 2


import engine.functional as F  # for the checks below
from engine import Tensor, nn

additive = nn.AdditiveAttention(6, 5, 8, rng=0)
qa = np.random.default_rng(1).standard_normal(6).astype(np.float32)
Ka = np.random.default_rng(2).standard_normal((7, 5)).astype(np.float32)
_, want = additive(Tensor(qa[None]), Tensor(Ka[None]))
mine = additive_weights(qa, Ka, additive.query_proj.weight.numpy(),
                        additive.key_proj.weight.numpy(), additive.key_proj.bias.numpy(),
                        additive.v.weight.numpy()[0])
assert np.allclose(mine, want.numpy()[0], atol=1e-5), "additive weights differ from nn's"
Kd = Ka[:, :4].astype(np.float64)
qd = np.random.default_rng(3).standard_normal(4)
want = F.attention_weights(Tensor(qd[None, None, None]), Tensor(Kd[None, None])).numpy()
assert np.allclose(dot_weights(qd, Kd), want[0, 0, 0]), "dot-product weights"
print("Bahdanau's and the Transformer's weights, by hand")
