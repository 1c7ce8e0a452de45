"""The seq2seq-transformer's PyTorch twin: nn.Transformer (pre-LN, GELU, the tiny config's
sizes) with nn.Embedding tables, trained on the project's own task rows (SyntheticTask or a
pairs file) with torch.optim.AdamW at its default settings except the learning rate and the
same cosine schedule. Nothing copies our initialisation: PyTorch's defaults throughout."""

import torch
from torch import nn

# exact_match is this twin's greedy decoding, as compare.py calls it
from benchmarks.twins.loop import exact_match, train_seq2seq  # noqa: F401


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


def train(data, *, steps, seed=0, lr=1e-3, batch_size=32, threads=1):
    """Train the twin on `data` (task rows); returns the model."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    model = TwinTransformer(max(64, data.vocab_size), data.input_width,
                            data.seq_len - data.input_width)
    return train_seq2seq(model, data, steps=steps, seed=seed, lr=lr, batch_size=batch_size)
