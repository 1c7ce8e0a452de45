"""The seq2seq-gru's PyTorch twin: the same Bahdanau model (bidirectional nn.GRU encoder, a
bridge from the forward encoder's last state, additive attention, nn.GRUCell decoder, a deep
output over [state; context; embedding]) at the tiny config's sizes, every layer at PyTorch's
default initialisation, trained on our task rows with torch.optim.AdamW at its defaults
except the learning rate, and our warm-up and cosine schedule."""

import numpy as np
import torch
from torch import nn

# exact_match is this twin's greedy decoding, as compare.py calls it
from benchmarks.twins.loop import exact_match, train_seq2seq  # noqa: F401


class TwinGRU(nn.Module):
    def __init__(self, vocab, src_len, n_embd=32, hidden=64, attn=64):
        super().__init__()
        self.src_len, H = src_len, hidden
        self.src_embed, self.tgt_embed = nn.Embedding(vocab, n_embd), nn.Embedding(vocab, n_embd)
        self.encoder = nn.GRU(n_embd, H, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(H, H)
        self.q, self.k = nn.Linear(H, attn, bias=False), nn.Linear(2 * H, attn)
        self.v = nn.Linear(attn, 1, bias=False)
        self.cell = nn.GRUCell(n_embd + 2 * H, H)
        self.out = nn.Linear(3 * H + n_embd, vocab)

    def forward(self, idx, pad_id, alignments=None):
        src, dec = idx[:, :self.src_len], idx[:, self.src_len:]
        states, final = self.encoder(self.src_embed(src))  # (B, S, 2H), (2, B, H)
        keys, pad = self.k(states), src == pad_id
        s = torch.tanh(self.bridge(final[0]))
        emb, feats = self.tgt_embed(dec), []
        for t in range(dec.shape[1]):
            scores = self.v(torch.tanh(keys + self.q(s)[:, None])).squeeze(-1)
            w = torch.softmax(scores.masked_fill(pad, float("-inf")), -1)  # (B, S)
            ctx = (w[:, :, None] * states).sum(1)
            s = self.cell(torch.cat([emb[:, t], ctx], -1), s)
            feats.append(torch.cat([s, ctx, emb[:, t]], -1))
            if alignments is not None:
                alignments.append(w)
        return self.out(torch.stack(feats, 1))  # (B, T, V)


def train(data, *, steps, seed=0, lr=3e-3, batch_size=32, threads=1):
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    model = TwinGRU(max(64, data.vocab_size), data.input_width)
    return train_seq2seq(model, data, steps=steps, seed=seed, lr=lr, batch_size=batch_size)


@torch.no_grad()
def mirrored_mass(model, data, inputs):
    """Reverse: the mean attention weight each answer step puts on the mirrored source
    position (as scripts/quality.py measures ours), teacher-forced."""
    model.eval()
    idx, _ = data.batch_of(inputs)
    steps = []
    model(torch.from_numpy(idx), data.pad_id, alignments=steps)
    w = torch.stack(steps, 1).numpy()  # (B, T, S)
    W = data.input_width
    return float(np.mean([w[b, j, W - 1 - j] for b, x in enumerate(inputs)
                          for j in range(len(x))]))
