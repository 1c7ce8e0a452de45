"""What the two encoder-decoder families (seq2seq-gru, seq2seq-transformer) share: how they
read the task data, their config conventions, and incremental decoding for engine.models.generate.

Data. They train on the same synthetic tasks as the GPT, batch for batch: a task example is
one token row "input = answer ." whose input is right-aligned in a field of `src_len` tokens
(left-padded with the pad token). An encoder-decoder splits that row at `src_len`: the
source is `idx[:, :src_len]` (pad positions masked out of attention), the decoder reads
`idx[:, src_len:]`, which starts with '=' (the start token) followed by the answer, and is
trained on `targets[:, src_len:]`, the answer and '.' shifted by one. The logits it returns
are the decoder's, (B, T - src_len, V): the task's teacher-forced exact match compares them
with the last positions of the targets (engine.data.tasks).

Decoding. `model.decoder(batch_size, use_cache)` gives engine.models.generate what it needs for any
token model: `next_logits(tokens)` for the token after the prompt-plus-answer-so-far. With the
cache, the source is encoded once (and, for the transformer, its cross-attention keys and
values computed once per layer) and each step feeds only the newest token; without it, each
step reruns the teacher-forced forward, and both give the same tokens.
"""

from dataclasses import replace

import numpy as np

import engine.functional as F
import ops
from engine.models.registry import NamedConfig
from engine.nn.module import token_ids


class EncoderDecoderConfig(NamedConfig):
    """Conventions of the encoder-decoder configs (dataclasses that inherit this; the
    registry's NamedConfig gives from_name, to_dict and from_dict): `src_len`, `vocab_size`
    and `pad_id` are fitted to the task by for_data; `max_tgt_len` bounds the decoder
    positions."""

    @property
    def context_length(self):
        """The longest token row the model takes: source field plus decoder positions."""
        return self.src_len + self.max_tgt_len

    def for_data(self, data):
        """A copy fitted to a synthetic task (see the module docstring); a ValueError for
        data without an input field (text, images)."""
        width = getattr(data, "input_width", None)
        if width is None or not hasattr(data, "pad_id"):
            raise ValueError(f"the {self.family} model needs a task with an input and an "
                             f"answer (reverse, copy, sort or add)")
        tgt_len = data.seq_len - width
        if tgt_len > self.max_tgt_len:
            raise ValueError(f"the answers take {tgt_len} decoder positions; the model has "
                             f"max_tgt_len {self.max_tgt_len}")
        return replace(self, vocab_size=max(self.vocab_size, int(data.vocab_size)),
                       src_len=int(width), pad_id=int(data.pad_id))


class EncoderDecoder:
    """Mixin of the encoder-decoder models: input checks, the source/decoder split, and the
    decoder object that engine.models.generate drives. A model provides encode(src) -> memory
    state, decode(memory, dec_idx, cache) -> logits (B, T, V), and new_cache(memory)."""

    def _split(self, idx, device):
        """(src (B, S), decoder tokens (B, T)) int64 arrays of the device, from a token row."""
        name, S = type(self).__name__, self.config.src_len
        idx = token_ids(name, "idx", idx, device)
        if idx.shape[1] <= S:
            raise ValueError(f"{name}: a token row needs the {S} source tokens and at least "
                             f"the start token, got {idx.shape[1]} tokens")
        if idx.shape[1] - S > self.config.max_tgt_len:
            raise ValueError(f"{name}: {idx.shape[1] - S} decoder positions exceed "
                             f"max_tgt_len {self.config.max_tgt_len}")
        return idx[:, :S], idx[:, S:]

    def _loss(self, logits, targets, device):
        B, T, V = logits.shape
        t = token_ids(type(self).__name__, "targets", targets, device)
        if t.shape != (B, self.config.src_len + T):
            raise ValueError(f"{type(self).__name__}: targets shape {tuple(t.shape)} != idx "
                             f"shape {(B, self.config.src_len + T)}")
        t = device.xp.reshape(t[:, self.config.src_len:], (B * T,))
        return F.cross_entropy(logits.reshape(B * T, V), t)

    def forward(self, idx, targets=None):
        """idx int (B, src_len + T) -> (decoder logits (B, T, V), loss or None)."""
        device = self._device()
        src, dec = self._split(idx, device)
        logits = self.decode(self.encode(src), dec)
        return logits, (None if targets is None else self._loss(logits, targets, device))

    def decoder(self, batch_size, use_cache=True):
        """The incremental decoder engine.models.generate drives (see the module docstring)."""
        return _Decoder(self, use_cache)


class _Decoder:
    def __init__(self, model, use_cache):
        self.model, self.use_cache = model, use_cache
        self.memory = self.cache = None
        self.fed = 0  # decoder tokens already in the cache

    def next_logits(self, tokens):
        """Logits (B, V) of the token after `tokens` (B, src_len + T), on the host."""
        model, device = self.model, self.model._device()
        src, dec = model._split(tokens, device)
        if not self.use_cache:
            logits = model.decode(model.encode(src), dec)  # (B, T, V)
        else:
            if self.memory is None:
                self.memory = model.encode(src)
                self.cache = model.new_cache(self.memory)
            logits = model.decode(self.memory, dec[:, self.fed:], self.cache)  # (B, new, V)
            self.fed = dec.shape[1]
        return np.array(ops.to_host(logits.data[:, -1, :]))  # (B, V), copied to the host


def attention_maps(model, inputs):
    """Every attention map of `model` for `inputs`, one call for any family: a dict from a
    name to a host numpy array. GPT: "layer.{i}" (B, nh, T, T); seq2seq-gru: "alignment"
    (B, T, S); seq2seq-transformer: "encoder.{i}", "decoder.{i}.self", "decoder.{i}.cross";
    vit: "layer.{i}", "cls" (B, N) and "rollout" (B, N)."""
    maps = model.attention_maps(inputs)
    if isinstance(maps, list):  # the GPT's per-layer list
        return {f"layer.{i}": m for i, m in enumerate(maps)}
    return maps


__all__ = ["EncoderDecoder", "EncoderDecoderConfig", "attention_maps"]
