"""The GPT's fused decoding path: generate() with the KV cache on the CPU numba backend runs
each new token through ops/decode_cpu.gpt_decode_step, one kernel call per token, instead of
~50 Tensor ops. The logits are the model's (tests/models/test_gpt_fused_decode.py); past
block_size, where the cache cannot hold the sequence, it recomputes like the generic decoder.
"""

import numpy as np

import ops
from ops.decode_cpu import gpt_decode_step


def _data(tensor, like):
    """A parameter's array, or zeros shaped like `like` for an absent bias."""
    return np.zeros_like(like) if tensor is None else tensor.data


def fused_decoder(model, batch_size):
    """A FusedGPTDecoder for `model`, or None where the fused kernel does not apply (another
    device or backend, a dtype other than float32/float64)."""
    w = model.transformer.wte.weight.data
    if (type(w) is not np.ndarray or w.dtype not in (np.float32, np.float64)
            or ops.get_backend() != "numba"):
        return None
    return FusedGPTDecoder(model, batch_size)


class FusedGPTDecoder:
    """next_logits(tokens (B, T)) -> (B, V), feeding the positions not yet cached one at a
    time (the prompt too) through the fused step. The parameters are stacked per layer when
    the decoder is made: build a new decoder after changing the model."""

    def __init__(self, model, batch_size):
        self.model, cfg = model, model.config
        tr, blocks = model.transformer, model.transformer.h

        def stack(get):
            return np.ascontiguousarray(np.stack([get(b) for b in blocks]))

        ln = [(b.ln_1, b.ln_2) for b in blocks]
        self.params = (
            tr.wte.weight.data, tr.wpe.weight.data,
            stack(lambda b: b.ln_1.weight.data), stack(lambda b: _data(b.ln_1.bias, b.ln_1.weight.data)),
            stack(lambda b: b.attn.c_attn.weight.data),
            stack(lambda b: _data(b.attn.c_attn.bias, b.attn.c_attn.weight.data[:, 0])),
            stack(lambda b: b.attn.c_proj.weight.data),
            stack(lambda b: _data(b.attn.c_proj.bias, b.attn.c_proj.weight.data[:, 0])),
            stack(lambda b: b.ln_2.weight.data), stack(lambda b: _data(b.ln_2.bias, b.ln_2.weight.data)),
            stack(lambda b: b.mlp.c_fc.weight.data),
            stack(lambda b: _data(b.mlp.c_fc.bias, b.mlp.c_fc.weight.data[:, 0])),
            stack(lambda b: b.mlp.c_proj.weight.data),
            stack(lambda b: _data(b.mlp.c_proj.bias, b.mlp.c_proj.weight.data[:, 0])),
            tr.ln_f.weight.data, _data(tr.ln_f.bias, tr.ln_f.weight.data),
            model.lm_head.weight.data)
        self.eps = self.params[0].dtype.type(ln[0][0].eps) if ln else np.float32(1e-5)
        shape = (cfg.n_layer, batch_size, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head)
        self.k = np.zeros(shape, self.params[0].dtype)
        self.v = np.zeros_like(self.k)
        self.length = 0
        self.logits = np.empty((batch_size, cfg.vocab_size), self.params[0].dtype)

    def next_logits(self, tokens):
        block = self.model.config.block_size
        if tokens.shape[1] > block:  # positions would shift: recompute the last block
            logits, _ = self.model(tokens[:, -block:])
            return np.array(ops.to_host(logits.data[:, -1, :]))
        for pos in range(self.length, tokens.shape[1]):
            column = np.ascontiguousarray(tokens[:, pos], dtype=np.int64)
            gpt_decode_step(column, pos, *self.params, self.k, self.v, self.eps, self.logits)
        self.length = tokens.shape[1]
        return self.logits.copy()
