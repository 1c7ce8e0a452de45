"""Autoregressive sampling from a token model: greedy, temperature and top-k, with a KV cache.

Any model that continues token rows: the GPT (its KV cache, here), or a model with its own
`decoder(batch_size, use_cache)` giving `next_logits(tokens)` (the encoder-decoders, see
engine.models.encoder_decoder).

The model and its KV cache stay on the model's device; tokens live on the host. Each step
moves the newest tokens in and copies the newest logits (B, V) out, explicitly, and picks the
next token on the host.

It lives with the models because it drives their decoding protocol (the GPT's KV cache, an
encoder-decoder's `decoder()`); it imports only engine.nn. engine.data's tasks import it to
score a model by greedy decoding (their final evaluation), which adds no cycle: the models
import nothing from engine.data.
"""

import numpy as np

import ops
from engine.nn.module import as_rng


def generate(model, idx, max_new_tokens, *, temperature=1.0, top_k=None, greedy=False,
             rng=None, use_cache=True, return_logits=False, stop_token=None):
    """Extend idx (B, T) by max_new_tokens tokens; returns int64 (B, T + max_new_tokens).

    greedy: argmax at every step. Otherwise sample from softmax(logits / temperature),
    restricted to the top_k largest logits when top_k is given (ties with the k-th kept).
    temperature == 0 means greedy; a negative or non-finite temperature is a ValueError.
    rng: None, an int seed or np.random.Generator (same seed -> same tokens).

    use_cache: the prompt is run once into a per-layer KVCache, then each step feeds only the
    newest token; tokens and logits match decoding without the cache. Once the sequence is
    longer than block_size the cache cannot hold it (positions would shift), so each later
    step recomputes on the last block_size tokens, exactly as without the cache.
    Runs under no_grad in eval mode, restoring the model's previous mode. With return_logits,
    returns (tokens, logits (B, max_new_tokens, V)), the logits each token was chosen from.
    stop_token: decoding ends early, once every row has produced this token (rows are then
    shorter than T + max_new_tokens; a row that ended goes on with whatever is picked).
    Logits that are NaN or +inf, or a row with no finite logit, raise FloatingPointError:
    they would otherwise become an arbitrary token.
    """
    from engine import no_grad

    idx = np.asarray(idx)
    if idx.ndim != 2 or idx.shape[1] < 1 or idx.dtype.kind not in "iu":
        raise ValueError(f"generate: idx must be a non-empty 2-D integer array (B, T), got "
                         f"shape {idx.shape} dtype {idx.dtype}")
    greedy = _check_sampling(temperature, top_k, greedy)
    rng = as_rng(rng)
    if int(max_new_tokens) != max_new_tokens or max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be an integer >= 0, got "
                         f"{max_new_tokens!r}")
    tokens = idx.astype(np.int64)
    ended = np.zeros(tokens.shape[0], dtype=bool)
    chosen_logits = []
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            decoder = _decoder(model, tokens.shape[0], use_cache)
            for _ in range(max_new_tokens):
                logits = decoder.next_logits(tokens)  # (B, V)
                chosen_logits.append(logits)
                _check_finite(logits, tokens.shape[1])
                nxt = _pick(logits, greedy, temperature, top_k, rng)  # (B,)
                tokens = np.concatenate([tokens, nxt[:, None]], axis=1)  # (B, T + 1)
                if stop_token is not None:
                    ended |= nxt == stop_token
                    if ended.all():
                        break
    finally:
        model.train(was_training)
    if return_logits:
        vocab = model.config.vocab_size
        stacked = (np.stack(chosen_logits, axis=1) if chosen_logits
                   else np.zeros((tokens.shape[0], 0, vocab)))
        return tokens, stacked
    return tokens


def _check_finite(logits, length):
    """FloatingPointError when the next-token logits (B, V) hold NaN or +inf, or a row has no
    finite logit (-inf alone is a masked token, and fine)."""
    if np.isnan(logits).any() or np.isposinf(logits).any() or not np.isfinite(
            logits).any(axis=-1).all():
        raise FloatingPointError(f"generate: the model's logits after {length} tokens are not "
                                 f"finite (NaN or inf); no token can be chosen from them")


def _check_sampling(temperature, top_k, greedy):
    """Validate the sampling settings; returns whether decoding is greedy."""
    if not greedy:
        if not np.isfinite(temperature) or temperature < 0:
            raise ValueError(f"generate: temperature must be a finite number >= 0 (0 means "
                             f"greedy), got {temperature}")
        greedy = temperature == 0
    if top_k is not None and (int(top_k) != top_k or top_k < 1):
        raise ValueError(f"generate: top_k must be a positive integer or None, got {top_k}")
    return greedy


def _decoder(model, batch_size, use_cache):
    """The model's own decoder (encoder-decoders), the GPT's fused one (cached, CPU numba),
    or the generic one."""
    if hasattr(model, "decoder"):
        return model.decoder(batch_size, use_cache)
    fused = model.fused_decoder(batch_size) if use_cache and hasattr(
        model, "fused_decoder") else None
    return fused or _Decoder(model, batch_size, use_cache)


class _Decoder:
    """Produces next-token logits for a growing token array, with or without a KV cache."""

    def __init__(self, model, batch_size, use_cache):
        self.model = model
        self.block_size = model.config.block_size
        self.cache = model.make_cache(batch_size) if use_cache else None

    def next_logits(self, tokens):
        """Logits (B, V) for the token after tokens (B, T)."""
        T = tokens.shape[1]
        if self.cache is None or T > self.block_size:
            logits, _ = self.model(tokens[:, -self.block_size:])  # (B, min(T, bs), V)
        else:
            cached = self.cache[0].length  # tokens[:, :cached] are already in the cache
            logits, _ = self.model(tokens[:, cached:], kv_cache=self.cache)  # (B, T - cached, V)
        return np.array(ops.to_host(logits.data[:, -1, :]))  # (B, V), copied to the host


def _pick(logits, greedy, temperature, top_k, rng):
    """Choose one token per row of logits (B, V): argmax, or a sample (inverse CDF)."""
    if greedy:
        return np.argmax(logits, axis=-1).astype(np.int64)
    z = logits.astype(np.float64) / temperature  # (B, V)
    if top_k is not None and top_k < z.shape[-1]:
        kth = np.sort(z, axis=-1)[:, -int(top_k)][:, None]  # (B, 1) k-th largest
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max(axis=-1, keepdims=True))  # (B, V), unnormalised
    cdf = np.cumsum(p, axis=-1)  # (B, V)
    u = rng.random((z.shape[0], 1)) * cdf[:, -1:]  # (B, 1), uniform on [0, total)
    # The chosen index i has cdf[i-1] <= u < cdf[i]; zero-probability tokens never qualify.
    choice = np.sum(cdf <= u, axis=-1)
    return np.minimum(choice, z.shape[-1] - 1).astype(np.int64)
