"""The seq2seq-transformer's PyTorch twin: nn.Transformer (pre-LN, GELU, the tiny config's
sizes) with nn.Embedding tables, trained on the project's own task rows (SyntheticTask or a
pairs file) with torch.optim.AdamW at its default settings except the learning rate and the
same cosine schedule. Nothing copies our initialisation: PyTorch's defaults throughout."""

import math

import numpy as np
import torch
from torch import nn

IGNORE = -100


class TwinTransformer(nn.Module):
    def __init__(self, vocab, src_len, max_tgt_len, n_embd=64, n_head=4, layers=2):
        super().__init__()
        self.src_len = src_len
        self.src_embed, self.tgt_embed = nn.Embedding(vocab, n_embd), nn.Embedding(vocab, n_embd)
        self.src_pos = nn.Embedding(src_len, n_embd)
        self.tgt_pos = nn.Embedding(max_tgt_len, n_embd)
        self.core = nn.Transformer(n_embd, n_head, layers, layers, 4 * n_embd, dropout=0.0,
                                   activation="gelu", batch_first=True, norm_first=True)
        self.head = nn.Linear(n_embd, vocab, bias=False)

    def forward(self, idx, pad_id):
        src, dec = idx[:, :self.src_len], idx[:, self.src_len:]
        s = self.src_embed(src) + self.src_pos(torch.arange(src.shape[1]))
        t = self.tgt_embed(dec) + self.tgt_pos(torch.arange(dec.shape[1]))
        mask = nn.Transformer.generate_square_subsequent_mask(dec.shape[1])
        pad = src == pad_id
        h = self.core(s, t, tgt_mask=mask, src_key_padding_mask=pad,
                      memory_key_padding_mask=pad, tgt_is_causal=True)
        return self.head(h)  # (B, T, V)


def _lr(step, steps, lr, warmup=50):
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return lr / 10 + 0.5 * (lr - lr / 10) * (1 + math.cos(math.pi * frac))


def train(data, *, steps, seed=0, lr=1e-3, batch_size=32, threads=1):
    """Train the twin on `data` (task rows); returns the model."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    model = TwinTransformer(max(64, data.vocab_size), data.input_width,
                            data.seq_len - data.input_width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = _lr(step, steps, lr)
        idx, targets = data.get_batch("train", batch_size, rng)
        logits = model(torch.from_numpy(idx), data.pad_id)
        t = torch.from_numpy(targets[:, data.input_width:]).reshape(-1)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), t,
                                           ignore_index=IGNORE)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model


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
