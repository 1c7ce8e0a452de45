"""Plain-text pictures of attention and images, for terminals and logs (no colour needed).

`heatmap(weights, rows, cols)` draws a matrix of values in [0, 1] with a five-step shade
per cell (" ", "░", "▒", "▓", "█"), row labels on the left and column labels on top; the
shade is relative to the largest value unless `vmax` is given. `image(img)` draws a grey
image with a ten-step ASCII ramp, two characters per pixel so it keeps its aspect.
`alignment(model, task, inputs)` picks, for any sequence model, the map from answer tokens
to input tokens that shows what it attends to (see its docstring).
"""

import numpy as np

SHADES = " ░▒▓█"
RAMP = " .:-=+*#%@"


def _shade(v, vmax):
    if not np.isfinite(v) or vmax <= 0:
        return SHADES[0]
    return SHADES[min(len(SHADES) - 1, round(v / vmax * (len(SHADES) - 1)))]


def heatmap(weights, rows=None, cols=None, *, title=None, vmax=None):
    """A (R, C) matrix as text: one line per row, `rows`/`cols` label the axes (strings,
    default the indices; column labels longer than one character are written vertically)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"heatmap: weights must be 2-D, got shape {w.shape}")
    rows = [str(i) for i in range(w.shape[0])] if rows is None else [str(r) for r in rows]
    cols = [str(j) for j in range(w.shape[1])] if cols is None else [str(c) for c in cols]
    if len(rows) != w.shape[0] or len(cols) != w.shape[1]:
        raise ValueError(f"heatmap: {len(rows)} row and {len(cols)} column labels for a "
                         f"{w.shape[0]}x{w.shape[1]} matrix")
    vmax = float(np.nanmax(w)) if vmax is None and w.size else (vmax or 0.0)
    pad = max((len(r) for r in rows), default=0)
    lines = [title] if title else []
    depth = max((len(c) for c in cols), default=0)
    for k in range(depth):  # column labels, top-aligned, one character per line
        lines.append(" " * (pad + 1) + "".join((c[k] if k < len(c) else " ") + " "
                                               for c in cols).rstrip())
    for label, row in zip(rows, w):
        lines.append(label.rjust(pad) + " " + "".join(_shade(v, vmax) * 2 for v in row))
    return "\n".join(lines)


def image(img):
    """A grey image (H, W) with values in [0, 1] as text, two characters per pixel."""
    img = np.clip(np.asarray(img, dtype=np.float64), 0, 1)
    if img.ndim != 2:
        raise ValueError(f"image: must be 2-D, got shape {img.shape}")
    top = len(RAMP) - 1
    return "\n".join("".join(RAMP[round(v * top)] * 2 for v in row) for row in img)


def patch_grid(weights, grid):
    """A ViT's per-patch values (N,) as a (grid, grid) heatmap, patches row by row."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (grid * grid,):
        raise ValueError(f"patch_grid: {w.shape[0]} values for a {grid}x{grid} grid")
    return heatmap(w.reshape(grid, grid), rows=[""] * grid, cols=[""] * grid)


def alignment(model, tokens, src_len):
    """The answer-to-input attention of a sequence model for one token row (T,): a matrix
    (answer positions, input positions), averaged over heads. seq2seq-gru: its additive
    alignment; seq2seq-transformer: the last decoder block's cross-attention; GPT: its last
    layer's self-attention from the answer positions to the input positions. The input
    field is tokens[:src_len]; the answer starts after the separator at src_len."""
    from engine.models import attention_maps
    tokens = np.asarray(tokens, dtype=np.int64)[None, :]
    maps = attention_maps(model, tokens)
    if "alignment" in maps:
        return maps["alignment"][0]  # (T_dec, S): decoder step t predicts answer token t
    def deepest(names):  # the last layer's name: "layer.{i}" or "decoder.{i}.cross"
        return max(names, key=lambda k: int(k.split(".")[1]), default=None)

    cross = deepest([k for k in maps if k.endswith(".cross")])
    if cross is not None:
        return maps[cross][0].mean(axis=0)  # (T_dec, S)
    heads = maps[deepest([k for k in maps if k.startswith("layer.")])][0].mean(axis=0)
    return heads[src_len:, :src_len]  # position src_len ('=') predicts answer token 0
