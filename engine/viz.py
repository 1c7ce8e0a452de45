"""Plain-text pictures of attention and images, for terminals and logs (no colour needed).

`heatmap(weights, rows, cols)` draws a matrix of values in [0, 1] with a five-step shade
per cell (" ", "░", "▒", "▓", "█"), row labels on the left and column labels on top; the
shade is relative to the largest value unless `vmax` is given. `image(img)` draws a grey
image with a ten-step ASCII ramp, two characters per pixel so it keeps its aspect.
`alignments(model, tokens, src_len)` gives, for any sequence model, every head's map from
answer tokens to input tokens, the most focused first (`focus` says how sharp a map is).
`sparkline(values)` is a curve in one line of text.

Figures (`maps_figure`, `heads_figure`, `loss_figure`) need matplotlib, an optional extra
(`pip install 'attn-engine[plots]'`): it is imported only when one is drawn, never at the top
of a module, and without it they raise ImportError saying how to install it.

Why this lives in engine/ and not beside the commands: it is public library API, not CLI code.
The tutorials and notebooks draw with it (`from engine import viz`) on models they train
themselves; the `attn` commands are only some of its callers. It imports nothing from the
commands, and engine.models only inside `alignments`.
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


def focus(weights):
    """How sharply a map (R, C) attends: the mean, over the rows that give weight to at
    least two columns, of the row's largest weight (1: each row reads one column; 1/C:
    uniform). Rows with one column or none (the first rows of a causal map) say nothing."""
    w = np.asarray(weights, dtype=np.float64)
    rows = w[(w > 0).sum(axis=-1) >= 2]
    return float(rows.max(axis=-1).mean()) if len(rows) else 0.0


def alignments(model, tokens, src_len):
    """Every answer-to-input map of a sequence model for one token row (T,), one per head
    (never a mean of heads, which blurs a sharp head into its neighbours), the most focused
    first: [(label, (answer positions, input positions) matrix, focus)]. seq2seq-gru: its
    additive alignment; seq2seq-transformer: each decoder block's cross-attention heads;
    GPT: every layer's heads, rows from the separator at src_len on (it predicts answer
    token 0), columns the input field tokens[:src_len]."""
    from engine.models import attention_maps
    tokens = np.asarray(tokens, dtype=np.int64)[None, :]
    maps = attention_maps(model, tokens)
    if "alignment" in maps:  # (T_dec, S): decoder step t predicts answer token t
        found = [("alignment", maps["alignment"][0])]
    else:
        cross = [k for k in maps if k.endswith(".cross")]
        names = cross or [k for k in maps if k.startswith("layer.")]
        cut = (slice(None), slice(None)) if cross else (slice(src_len, None), slice(0, src_len))
        found = [(f"{name} head {h}", heads[cut]) for name in names
                 for h, heads in enumerate(maps[name][0])]
    ranked = [(label, a, focus(a)) for label, a in found]
    return sorted(ranked, key=lambda r: -r[2])


def alignment(model, tokens, src_len):
    """The most focused of `alignments(model, tokens, src_len)`: its (answer, input) map."""
    return alignments(model, tokens, src_len)[0][1]


# ---- curves in the terminal, figures with matplotlib (optional: the [plots] extra) -------

SPARKS = "▁▂▃▄▅▆▇█"
PLOTS_HINT = "pip install 'attn-engine[plots]' (or pip install matplotlib)"


def sparkline(values, width=60):
    """A curve as one line of block characters: `values` averaged into `width` buckets,
    the lowest bucket ▁ and the highest █ (all ▁ when the values are constant)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ""
    means = np.array([c.mean() for c in np.array_split(v, min(width, v.size))])
    span = means.max() - means.min()
    scaled = (means - means.min()) / span if span > 0 else np.zeros_like(means)
    return "".join(SPARKS[round(s * (len(SPARKS) - 1))] for s in scaled)


def have_matplotlib():
    """Whether matplotlib can be imported (figures are optional; nothing needs them)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _new_figure(**kwargs):
    """A matplotlib Figure that needs no pyplot (no window, no global backend change, so a
    notebook's own backend is left alone); ImportError saying how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"figures need matplotlib, which is not installed: "
                          f"{PLOTS_HINT}") from None
    return Figure(layout="constrained", **kwargs)


def maps_figure(panels, *, title=None, path=None, columns=4, vmax=None, scale="shared"):
    """Attention maps as heatmaps side by side: `panels` is a list of (weights (R, C), row
    labels, column labels, panel title); rows read columns, as in `heatmap`. scale="shared":
    every panel on one colour scale, 0 to `vmax` (default: the largest weight of all
    panels), with one colorbar true for each; scale="each": each panel on its own scale
    (0 to its largest weight) with its own colorbar, for maps of different kinds. Saved to
    `path` (PNG unless its extension names another format) when given; returns the Figure."""
    if scale not in ("shared", "each"):
        raise ValueError(f"maps_figure: scale must be 'shared' or 'each', got {scale!r}")
    n = len(panels)
    if n == 0:
        raise ValueError("maps_figure: no panels")
    cols = min(columns, n)
    grid_rows = -(-n // cols)
    size = max(max(np.shape(w)) for w, *_ in panels)
    cell = min(4.0, max(2.2, 0.22 * size))
    fig = _new_figure(figsize=(cell * cols + 0.8, cell * grid_rows + (0.5 if title else 0)))
    axes = np.atleast_1d(fig.subplots(grid_rows, cols, squeeze=False)).ravel()
    if scale == "each":
        for ax, panel in zip(axes, panels):
            fig.colorbar(_draw_panels([ax], [panel], _shared_vmax([panel], None)), ax=ax,
                         shrink=0.8)
        for ax in axes[n:]:
            ax.set_visible(False)
    else:
        image = _draw_panels(axes, panels, _shared_vmax(panels, vmax))
        fig.colorbar(image, ax=axes[:n].tolist(), shrink=0.8, label="attention weight")
    if title:
        fig.suptitle(title)
    return _saved(fig, path)


def _shared_vmax(panels, vmax):
    if vmax is not None:
        return float(vmax)
    return max(max(float(np.nanmax(np.asarray(w, dtype=np.float64))) for w, *_ in panels), 1e-9)


def _draw_panels(axes, panels, vmax):
    """Each panel on its axes, all on the scale 0..vmax; the other axes hidden."""
    for ax, (w, rows, columns_, name) in zip(axes, panels):
        w = np.asarray(w, dtype=np.float64)
        image = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto",
                          interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(w.shape[1]), [str(c) for c in columns_], fontsize=6)
        ax.set_yticks(range(w.shape[0]), [str(r) for r in rows], fontsize=6)
        ax.tick_params(length=0)
        ax.xaxis.tick_top()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return image


def _saved(fig, path):
    if path is not None:
        fig.savefig(path, dpi=120, format=None if _has_extension(path) else "png")
    return fig


def snapshots_figure(steps, losses, snap_steps, panels, *, title=None, path=None):
    """A loss curve with the snapshot steps marked, above one map at those steps (`panels`
    as in maps_figure), all maps on one 0-1 scale with one colorbar; returns the Figure."""
    n = len(panels)
    if n == 0:
        raise ValueError("snapshots_figure: no panels")
    fig = _new_figure(figsize=(max(7.0, 2.4 * n + 0.8), 6.5))
    grid = fig.add_gridspec(2, n, height_ratios=[1, 1.3])
    ax = fig.add_subplot(grid[0, :])
    ax.plot(steps, losses, lw=1, label="training loss")
    for st in snap_steps:
        ax.axvline(st, color="grey", lw=0.6, alpha=0.5)
    ax.set_xlabel("step (grey lines: attention snapshots)")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    axes = np.array([fig.add_subplot(grid[1, i]) for i in range(n)])
    image = _draw_panels(axes, panels, 1.0)
    fig.colorbar(image, ax=axes.tolist(), shrink=0.8, label="attention weight")
    if title:
        fig.suptitle(title)
    return _saved(fig, path)


def heads_figure(heads, rows, cols, *, title=None, path=None):
    """Every head of one attention map (H, R, C) as its own heatmap (see maps_figure)."""
    heads = np.asarray(heads)
    return maps_figure([(h, rows, cols, f"head {i}") for i, h in enumerate(heads)],
                       title=title, path=path)


def loss_figure(steps, losses, *, evals=(), title=None, path=None):
    """A training loss curve (and the evaluations' validation loss as points: `evals` is a
    list of {"step", "val_loss"} rows); saved to `path` when given; returns the Figure."""
    fig = _new_figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(steps, losses, lw=1, label="training loss")
    points = [(e["step"], e["val_loss"]) for e in evals if "val_loss" in e]
    if points:
        ax.plot(*zip(*points), "o", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if len(losses) and min(losses) > 0:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    if path is not None:
        fig.savefig(path, dpi=120, format=None if _has_extension(path) else "png")
    return fig


def in_notebook():
    """Whether this runs in a Jupyter kernel (where a figure can be shown inline)."""
    import sys
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show(fig, path):
    """Show a figure where the reader is: inline in a Jupyter notebook, else saved to `path`
    (PNG unless its extension says otherwise) with a line naming the file. Returns the path
    written, or None when shown inline. Tutorials draw every figure through this."""
    if in_notebook():
        import io

        from IPython.display import Image, display
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=100, format="png")
        display(Image(data=buffer.getvalue()))
        return None
    _saved(fig, path)
    print("figure saved to", path)
    return path


def _has_extension(path):
    import os
    return bool(os.path.splitext(str(path))[1])
