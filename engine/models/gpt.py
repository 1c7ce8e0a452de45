"""The GPT model family (nanoGPT layout): its config and the model, registered as "gpt"."""

import math
import numbers
from dataclasses import asdict, dataclass, fields

import numpy as np

import engine.functional as F
from engine.autograd import no_grad
from engine.models.registry import register_model
from engine.nn import Dropout, Embedding, KVCache, LayerNorm, Linear, TransformerBlock
from engine.nn.module import Module, ModuleDict, ModuleList, as_rng, token_ids


@dataclass
class GPTConfig:
    """GPT hyper-parameters; `tiny()` and `small()` are the canonical configs (the two sizes
    `attn train --config` offers, tiny by default)."""

    vocab_size: int
    block_size: int
    n_embd: int
    n_head: int
    n_layer: int
    dropout: float = 0.0
    bias: bool = True
    tie_weights: bool = False

    def __post_init__(self):
        for key in ("vocab_size", "block_size", "n_embd", "n_head", "n_layer"):
            v = getattr(self, key)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
                raise ValueError(f"GPTConfig: {key} must be a positive integer, got {v!r}")
        if (not isinstance(self.dropout, numbers.Real) or isinstance(self.dropout, bool)
                or not 0 <= self.dropout < 1):
            raise ValueError(f"GPTConfig: dropout must be a number in [0, 1), got "
                             f"{self.dropout!r}")
        for key in ("bias", "tie_weights"):
            if not isinstance(getattr(self, key), bool):
                raise TypeError(f"GPTConfig: {key} must be true or false, got "
                                 f"{getattr(self, key)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")

    @classmethod
    def tiny(cls, **overrides):
        """vocab 64, block 64, n_embd 64, 4 heads, 2 layers: 112,384 params (untied head)."""
        base = {"vocab_size": 64, "block_size": 64, "n_embd": 64, "n_head": 4, "n_layer": 2}
        return cls(**{**base, **overrides})

    @classmethod
    def small(cls, **overrides):
        """vocab 64, block 128, n_embd 128, 4 heads, 4 layers: 826,112 params (untied head)."""
        base = {"vocab_size": 64, "block_size": 128, "n_embd": 128, "n_head": 4, "n_layer": 4}
        return cls(**{**base, **overrides})

    @classmethod
    def from_name(cls, name, **overrides):
        if name not in ("tiny", "small"):
            raise ValueError(f"unknown config {name!r}; use 'tiny' or 'small'")
        return getattr(cls, name)(**overrides)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"GPTConfig.from_dict: unknown keys {unknown}")
        return cls(**d)

    def num_parameters(self):
        """The parameter count of GPT(self), computed without building it (tiny: 112,384)."""
        c, v = self.n_embd, self.vocab_size
        per_layer = 12 * c * c + (13 * c if self.bias else 2 * c)  # 2 LayerNorms, attn, MLP
        head = 0 if self.tie_weights else v * c
        return v * c + self.block_size * c + self.n_layer * per_layer + c * (
            1 + self.bias) + head

    def step_bytes(self, batch_size, seq_len):
        """A rough lower bound of a training step's float32 activations (bytes): about 20
        values of width C per token and layer, and the logits with their gradients."""
        c = self.n_embd
        return 4 * batch_size * seq_len * (self.n_layer * 20 * c + 3 * self.vocab_size + 4 * c)

    @property
    def context_length(self):
        """The longest sequence the model takes (block_size); see engine.models.registry."""
        return self.block_size

    def for_data(self, data):
        """A copy fitted to token data (engine.models.registry): vocab_size grown to
        data.vocab_size when the data has more tokens (kept otherwise, so the canonical 64
        stays), and a ValueError when data.seq_len does not fit in block_size."""
        if not hasattr(data, "seq_len") or not hasattr(data, "vocab_size"):
            raise ValueError("the gpt model needs token data (a sequence task or --text); "
                             "for images use --model vit")
        if data.seq_len > self.block_size:
            raise ValueError(f"the data has sequences of {data.seq_len} tokens; the model's "
                             f"block_size is {self.block_size}")
        vocab_size = max(self.vocab_size, int(data.vocab_size))
        return type(self).from_dict({**self.to_dict(), "vocab_size": vocab_size})


class GPT(Module):
    """A GPT language model (nanoGPT layout): forward(idx, targets=None) -> (logits, loss).

    Construction is reproducible: `rng` is an int seed or np.random.Generator (None: the
    engine's default generator, see engine.manual_seed). Init as GPT-2: Linear/Embedding
    weights normal(0, 0.02), residual projections (attn.c_proj, mlp.c_proj)
    normal(0, 0.02/sqrt(2 n_layer)), biases 0, LayerNorm 1 and 0.
    Parameter counts: tiny 112,384 (108,288 tied), small 826,112 (817,920 tied).

    State dict names and shapes (C = n_embd, V = vocab_size, weights (out, in) as PyTorch):
      transformer.wte.weight (V, C)            transformer.wpe.weight (block_size, C)
      transformer.h.{i}.ln_1.weight (C,)       transformer.h.{i}.ln_1.bias (C,)
      transformer.h.{i}.attn.c_attn.weight (3C, C)  transformer.h.{i}.attn.c_attn.bias (3C,)
      transformer.h.{i}.attn.c_proj.weight (C, C)   transformer.h.{i}.attn.c_proj.bias (C,)
      transformer.h.{i}.ln_2.weight (C,)       transformer.h.{i}.ln_2.bias (C,)
      transformer.h.{i}.mlp.c_fc.weight (4C, C)     transformer.h.{i}.mlp.c_fc.bias (4C,)
      transformer.h.{i}.mlp.c_proj.weight (C, 4C)   transformer.h.{i}.mlp.c_proj.bias (C,)
      transformer.ln_f.weight (C,)             transformer.ln_f.bias (C,)
      lm_head.weight (V, C)   (no bias; with tie_weights the same array as wte, both keys kept)
    Bias entries are absent when config.bias is False.

    Incremental decoding: `cache = model.make_cache(B)`, then `model(idx, kv_cache=cache)`
    feeds the newest tokens only; positions continue from the cache length (it must stay
    <= block_size). See engine.models.generate.
    """

    def __init__(self, config, *, rng=None, dtype=np.float32):
        super().__init__()
        self.config = config
        rng = as_rng(rng)
        c = config
        kw = {"bias": c.bias, "dropout": c.dropout, "rng": rng, "std": 0.02,
              "proj_std": 0.02 / math.sqrt(2 * c.n_layer), "dtype": dtype}
        self.transformer = ModuleDict({
            "wte": Embedding(c.vocab_size, c.n_embd, rng=rng, std=0.02, dtype=dtype),
            "wpe": Embedding(c.block_size, c.n_embd, rng=rng, std=0.02, dtype=dtype),
            "drop": Dropout(c.dropout, rng=rng.spawn(1)[0]),
            "h": ModuleList([TransformerBlock(c.n_embd, c.n_head, **kw)
                             for _ in range(c.n_layer)]),
            "ln_f": LayerNorm(c.n_embd, bias=c.bias, dtype=dtype),
        })
        self.lm_head = Linear(c.n_embd, c.vocab_size, bias=False, rng=rng, std=0.02, dtype=dtype)
        if c.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx, targets=None, kv_cache=None):
        """idx int (B, T) -> (logits (B, T, V), loss or None); targets int (B, T), -100 ignored.

        With `kv_cache` (from make_cache), idx holds only tokens not yet cached.
        """
        device = self._device()
        idx = self._tokens("idx", idx, device)
        B, T = idx.shape
        start = kv_cache[0].length if kv_cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"GPT: sequence length {start + T} (cached {start} + new {T}) "
                             f"exceeds block_size {self.config.block_size}")
        x = self._embed(idx, start, device)  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            x = block(x, kv_cache=None if kv_cache is None else kv_cache[i])  # (B, T, C)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, V)
        if targets is None:
            return logits, None
        targets = self._tokens("targets", targets, device)
        if targets.shape != (B, T):
            raise ValueError(f"GPT: targets shape {targets.shape} != idx shape {(B, T)}")
        V = logits.shape[-1]
        loss = F.cross_entropy(logits.reshape(B * T, V), device.xp.reshape(targets, (B * T,)))
        return logits, loss

    @staticmethod
    def _tokens(what, x, device):
        """Token ids (B, T) as an int64 array of the model's device (host input moves in)."""
        return token_ids("GPT", what, x, device)

    def _embed(self, idx, start, device):
        """Token plus position embeddings of idx (B, T) at positions start.., then dropout."""
        T, tr = idx.shape[1], self.transformer
        pos = device.xp.arange(start, start + T, dtype=device.xp.int64,
                               device=device.array_device)  # (T,)
        return tr.drop(tr.wte(idx) + tr.wpe(pos))  # (B, T, C) + (T, C)

    def fused_decoder(self, batch_size):
        """The one-kernel-per-token decoder generate() uses with the KV cache on the CPU
        numba backend (engine/models/gpt_decode.py), or None where it does not apply."""
        from engine.models.gpt_decode import fused_decoder
        return fused_decoder(self, batch_size)

    def make_cache(self, batch_size):
        """One empty KVCache per layer, each (batch_size, n_head, block_size, head_size)."""
        c, device = self.config, self._device()
        dtype = device.dtype_name(self.transformer.wte.weight.data.dtype)
        return [KVCache(batch_size, c.n_head, c.block_size, c.n_embd // c.n_head, dtype, device)
                for _ in range(c.n_layer)]

    def attention_maps(self, idx):
        """Attention probabilities per layer, each a host numpy array (B, nh, T, T)."""
        device = self._device()
        idx = self._tokens("idx", idx, device)
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"GPT: sequence length {T} exceeds block_size "
                             f"{self.config.block_size}")
        maps = []
        with no_grad():
            x = self._embed(idx, 0, device)  # (B, T, C)
            for block in self.transformer.h:
                x, w = block(x, need_weights=True)  # w (B, nh, T, T)
                maps.append(np.array(w.numpy()))  # a copy on the host
        return maps

    def extra_repr(self):
        c = self.config
        return (f"vocab={c.vocab_size}, block={c.block_size}, n_embd={c.n_embd}, "
                f"n_head={c.n_head}, n_layer={c.n_layer}, tied={c.tie_weights}")


register_model("gpt", GPT, GPTConfig)
