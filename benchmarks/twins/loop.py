"""What every PyTorch twin shares: our warm-up and cosine schedule (the run's own warm-up and
floor, as TrainConfig resolves them) over torch.optim.AdamW at its defaults (but the learning
rate), clipping at 1.0, and for the seq2seq twins the training
on task rows and greedy exact match."""

import math

import numpy as np
import torch
from torch import nn

IGNORE = -100


def _lr(step, steps, lr, warmup=50, min_lr=None):
    min_lr = lr / 10 if min_lr is None else min_lr
    warmup = min(warmup, steps)
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * frac))


def fit(model, batch_loss, *, steps, lr, warmup=50, min_lr=None):
    """Train `model` for `steps` steps; batch_loss(step) -> the loss of that step's batch.
    The schedule is TrainConfig's: `warmup` steps up to lr, cosine down to min_lr (None:
    lr / 10)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = _lr(step, steps, lr, warmup, min_lr)
        loss = batch_loss(step)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model


def train_seq2seq(model, data, *, steps, seed, lr, batch_size):
    """Train a seq2seq twin (model(idx, pad_id) -> answer logits) on task rows."""
    rng = np.random.default_rng(seed)

    def batch_loss(step):
        idx, targets = data.get_batch("train", batch_size, rng)
        logits = model(torch.from_numpy(idx), data.pad_id)
        t = torch.from_numpy(targets[:, data.input_width:]).reshape(-1)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), t,
                                           ignore_index=IGNORE)
    return fit(model, batch_loss, steps=steps, lr=lr)


@torch.no_grad()
def exact_match(model, data, inputs):
    """Greedy decoding of the held-out inputs: the fraction whose answer and end are right."""
    model.eval()
    prompts = np.stack([data.prompt(x) for x in inputs])
    wants = [np.append(data.answer(x), data_end(data)) for x in inputs]
    tokens = torch.from_numpy(prompts)
    for _ in range(max(len(w) for w in wants)):
        nxt = model(tokens, data.pad_id)[:, -1].argmax(-1, keepdim=True)
        tokens = torch.cat([tokens, nxt], 1)
    out = tokens[:, prompts.shape[1]:].numpy()
    return float(np.mean([np.array_equal(o[:len(w)], w) for o, w in zip(out, wants)]))


def data_end(data):
    from engine.data.tasks import END
    return END
