"""The GPT's fused decoding path: generate() with the KV cache on the CPU numba backend runs
each new token through ops/decode_cpu.gpt_decode_step, one kernel call per token, instead of
~50 Tensor ops. The logits are the model's (tests/models/test_gpt_fused_decode.py); past
block_size, where the cache cannot hold the sequence, it recomputes like the generic decoder.
"""

import numpy as np

import ops
from ops import decode_cpu


def fused_decoder(model, batch_size):
    """A FusedGPTDecoder for `model`, or None where the fused kernel does not apply (another
    device or backend, a dtype other than float32/float64)."""
    w = model.transformer.wte.weight.data
    if (type(w) is not np.ndarray or w.dtype not in (np.float32, np.float64)
            or ops.get_backend() != "numba"):
        return None
    return FusedGPTDecoder(model, batch_size)


def _arrays(block):
    """One block's parameter arrays by decode_cpu.LAYER_KEYS (None for an absent bias)."""
    def data(t):
        return None if t is None else t.data
    parts = {"ln1": block.ln_1, "attn": block.attn.c_attn, "proj": block.attn.c_proj,
             "ln2": block.ln_2, "fc": block.mlp.c_fc, "mlp": block.mlp.c_proj}
    return {f"{k}_{s}": data(getattr(m, "weight" if s == "w" else "bias"))
            for k, m in parts.items() for s in ("w", "b")}


class FusedGPTDecoder:
    """next_logits(tokens (B, T)) -> (B, V), feeding the positions not yet cached one at a
    time (the prompt too) through the fused step. The parameters are stacked per layer when
    the decoder is made: build a new decoder after changing the model."""

    def __init__(self, model, batch_size):
        self.model, cfg, tr = model, model.config, model.transformer
        self.params = decode_cpu.pack_weights(
            tr.wte.weight.data, tr.wpe.weight.data, [_arrays(b) for b in tr.h],
            tr.ln_f.weight.data, None if tr.ln_f.bias is None else tr.ln_f.bias.data,
            model.lm_head.weight.data)
        dtype = self.params[0].dtype
        self.eps = dtype.type(tr.ln_f.eps)
        self.k, self.v = decode_cpu.new_caches(cfg.n_layer, batch_size, cfg.n_head,
                                               cfg.block_size, cfg.n_embd // cfg.n_head, dtype)
        self.logits = decode_cpu.new_logits(batch_size, cfg.vocab_size, dtype)
        self.length = 0

    def next_logits(self, tokens):
        block = self.model.config.block_size
        if tokens.shape[1] > block:  # positions would shift: recompute the last block
            logits, _ = self.model(tokens[:, -block:])
            return np.array(ops.to_host(logits.data[:, -1, :]))
        new = tokens[:, self.length:]
        vocab = self.params[0].shape[0]
        if new.size and (new.min() < 0 or new.max() >= vocab):  # the kernel reads wte[token]
            bad = int(new.min()) if new.min() < 0 else int(new.max())
            raise IndexError(f"embedding: index {bad} out of range for {vocab} rows")
        for pos in range(self.length, tokens.shape[1]):
            column = np.ascontiguousarray(tokens[:, pos], dtype=np.int64)
            decode_cpu.gpt_decode_step(column, pos, *self.params, self.k, self.v, self.eps,
                                       self.logits)
        self.length = tokens.shape[1]
        return self.logits.copy()
