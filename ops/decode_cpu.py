"""One GPT decoding step as a single Numba kernel: the newest token of each sequence through
every layer with the KV cache, to the next-token logits.

Why one kernel: a step feeds one token, so every matrix product is a matrix-vector product of
a few thousand multiply-adds, and through the engine's Tensor ops (about 25 per layer, each a
Python call, a kernel dispatch and a new array) the step cost ~1.8 ms for the tiny GPT, almost
all of it overhead: PyTorch recomputing the whole context was faster. Here the step is one
call: embeddings, then per layer LayerNorm, the fused q/k/v projection, the cache write,
causal attention over the cached keys, the output projection, LayerNorm, the MLP with tanh
GELU and both residuals, then the final LayerNorm and the head. The math is the engine's
(engine/models/gpt.py, engine/nn/transformer.py); tests/models/test_gpt_fused_decode.py
checks its logits against the model's forward.

Why here, among the kernels, and not beside engine/models/gpt_decode.py (which drives it):
it is Numba code, and ops/ is where Numba code lives: built with ops.numba_config.jit (the
project's cache and fastmath flags), compiled ahead by ops/warm.py, whose manifest accepts
only ops modules, and kept out of engine/, which holds no jitted code of its own. It is
the CPU kernel of one model, so it is named for its device like the other kernels.

Layout: per-layer parameters stacked on a leading layer axis, weights (out, in) as the
engine's Linear stores them, so each output is a dot product over a contiguous row; caches
k, v (L, B, H, max_len, D).
"""

import math

import numpy as np

from ops.numba_config import jit


@jit(inline="always")
def _layer_norm(x, w, b, eps, out):
    n = x.shape[0]
    mean = x.dtype.type(0)
    for i in range(n):
        mean += x[i]
    mean = mean / x.dtype.type(n)
    var = x.dtype.type(0)
    for i in range(n):
        d = x[i] - mean
        var += d * d
    rstd = x.dtype.type(1) / math.sqrt(var / x.dtype.type(n) + eps)
    for i in range(n):
        out[i] = (x[i] - mean) * rstd * w[i] + b[i]


@jit(inline="always")
def _matvec(w, x, b, out):
    """out = w @ x + b for w (N, K): one contiguous dot product per output."""
    for o in range(w.shape[0]):
        row = w[o]
        t = x.dtype.type(0)
        for i in range(x.shape[0]):
            t += row[i] * x[i]
        out[o] = t + b[o]


@jit(inline="always")
def _gelu_tanh(f):
    """f = gelu(f), the tanh approximation (as F.gelu), in place."""
    t = f.dtype.type
    for i in range(f.shape[0]):
        x = f[i]
        u = t(0.7978845608028654) * (x + t(0.044715) * x * x * x)
        f[i] = t(0.5) * x * (t(1) + math.tanh(u))


@jit(inline="always")
def _attend(q, kc, vc, n, scale, p, out):
    """out = softmax(q . kc[:n] * scale) @ vc[:n] for one head (kc, vc (max_len, D))."""
    mx = q.dtype.type(-np.inf)
    for j in range(n):
        row = kc[j]
        t = q.dtype.type(0)
        for e in range(q.shape[0]):
            t += q[e] * row[e]
        t *= scale
        p[j] = t
        mx = max(mx, t)
    tot = q.dtype.type(0)
    for j in range(n):
        p[j] = math.exp(p[j] - mx)
        tot += p[j]
    out[:] = 0
    for j in range(n):
        pj = p[j] / tot
        row = vc[j]
        for e in range(out.shape[0]):
            out[e] += pj * row[e]


@jit
def gpt_decode_step(tok, pos, wte, wpe, ln1w, ln1b, aw, ab, pw, pb, ln2w, ln2b, fw, fb, mw, mb,
                    lnfw, lnfb, hw, kc, vc, eps, logits):
    """logits[b] = the next-token logits after token tok[b] at position pos of sequence b,
    whose keys and values at positions < pos are in kc, vc; writes position pos into them."""
    n_layer, n_batch, n_head, _, d = kc.shape
    c = wte.shape[1]
    dt = wte.dtype
    scale = dt.type(1) / math.sqrt(d)
    x, h = np.empty(c, dt), np.empty(c, dt)
    qkv, y, f = np.empty(3 * c, dt), np.empty(c, dt), np.empty(4 * c, dt)
    tmp, p = np.empty(c, dt), np.empty(kc.shape[3], dt)
    for b in range(n_batch):
        for i in range(c):
            x[i] = wte[tok[b], i] + wpe[pos, i]
        for layer in range(n_layer):
            _layer_norm(x, ln1w[layer], ln1b[layer], eps, h)
            _matvec(aw[layer], h, ab[layer], qkv)
            for hd in range(n_head):
                kc[layer, b, hd, pos] = qkv[c + hd * d:c + (hd + 1) * d]
                vc[layer, b, hd, pos] = qkv[2 * c + hd * d:2 * c + (hd + 1) * d]
                _attend(qkv[hd * d:(hd + 1) * d], kc[layer, b, hd], vc[layer, b, hd], pos + 1,
                        scale, p, y[hd * d:(hd + 1) * d])
            _matvec(pw[layer], y, pb[layer], tmp)
            for i in range(c):
                x[i] += tmp[i]
            _layer_norm(x, ln2w[layer], ln2b[layer], eps, h)
            _matvec(fw[layer], h, fb[layer], f)
            _gelu_tanh(f)
            _matvec(mw[layer], f, mb[layer], tmp)
            for i in range(c):
                x[i] += tmp[i]
        _layer_norm(x, lnfw, lnfb, eps, h)
        for v in range(hw.shape[0]):
            row = hw[v]
            t = dt.type(0)
            for i in range(c):
                t += row[i] * h[i]
            logits[b, v] = t


# Host-side preparation (engine/models/gpt_decode.py hands over the parameters' arrays).
LAYER_KEYS = ("ln1_w", "ln1_b", "attn_w", "attn_b", "proj_w", "proj_b", "ln2_w", "ln2_b",
              "fc_w", "fc_b", "mlp_w", "mlp_b")


def pack_weights(wte, wpe, layers, lnf_w, lnf_b, head_w):
    """The argument tuple gpt_decode_step takes after (tok, pos): the embeddings, then each
    of LAYER_KEYS stacked over the layers (a None bias becomes zeros shaped like its weight's
    output axis, or like the LayerNorm weight), then the final LayerNorm and the head."""
    def stacked(key):
        arrays = []
        for layer in layers:
            a = layer[key]
            if a is None:  # bias=False: a zero bias keeps one kernel for both
                a = np.zeros(layer[key[:-2] + "_w"].shape[0], wte.dtype)
            arrays.append(a)
        return np.ascontiguousarray(np.stack(arrays))

    zeros = np.zeros_like(lnf_w)
    return (wte, wpe, *(stacked(k) for k in LAYER_KEYS), lnf_w,
            zeros if lnf_b is None else lnf_b, head_w)


def new_caches(n_layer, batch, n_head, max_len, head_size, dtype):
    """Zeroed key and value caches (L, B, H, max_len, D)."""
    k = np.zeros((n_layer, batch, n_head, max_len, head_size), dtype)
    return k, np.zeros_like(k)


def new_logits(batch, vocab, dtype):
    return np.empty((batch, vocab), dtype)
