"""`attn runs RUN --attention`: replay the attention snapshots a run recorded at its
evaluations (engine.training.snapshots) beside its loss curve, to watch a head form."""

import numpy as np

from commands import CliError

SHOWN = 4  # snapshots drawn as maps in the terminal (and panels in the figure: 2 x SHOWN)


def focus(a):
    """How sharply a map (R, C) attends: the mean, over rows that see at least two keys, of
    the row's largest weight (1: one key per row; 1/C: uniform)."""
    a = np.asarray(a, dtype=np.float64)
    rows = a[(a > 0).sum(axis=-1) >= 2]
    return float(rows.max(axis=-1).mean()) if len(rows) else 0.0


def heads(snap):
    """[(label, name, head or None, series (S, R, C))] for every 2-D map of the snapshots."""
    out = []
    for name, m in snap["maps"].items():
        if m.ndim == 4:  # (S, H, R, C)
            out += [(f"{name} head {h}", name, h, m[:, h]) for h in range(m.shape[1])]
        elif m.ndim == 3:  # (S, R, C)
            out.append((name, name, None, m))
    return out


def choose(snap):
    """(label, series (S, R, C), focus per step) of the map most focused at the last step."""
    found = heads(snap)
    if not found:
        raise CliError("the run's attention snapshots hold no 2-D map to show")
    label, _, _, series = max(found, key=lambda f: focus(f[3][-1]))
    return label, series, [focus(s) for s in series]


def picks(steps, focuses, n):
    """Indices of up to n snapshots to draw: the first, the steepest rise of focus, evenly
    spaced others, and the last."""
    s = len(steps)
    chosen = {0, s - 1}
    if s > 2:
        chosen.add(int(np.argmax(np.diff(focuses))) + 1)
    for i in np.linspace(0, s - 1, n).round().astype(int):
        if len(chosen) >= n:
            break
        chosen.add(int(i))
    return sorted(chosen)[:n] if s > n else list(range(s))


def loss_near(history, step, width=10):
    """The mean training loss of the `width` steps up to `step` (None when not logged)."""
    train = history["train"]
    values = [loss for st, loss in zip(train["step"], train["loss"]) if step - width <= st < step]
    return float(np.mean(values)) if values else None


def replay(path, history, console):
    """Print the replay; returns (snapshots, label, series, focuses) for --plot."""
    from engine import viz
    from engine.training import snapshots
    try:
        snap = snapshots.load(path)
    except snapshots.SnapshotError as e:
        raise CliError(str(e)) from None
    steps = [int(s) for s in snap["steps"]]
    label, series, focuses = choose(snap)
    console.print(f"attention snapshots: {len(steps)}, steps {steps[0]} to {steps[-1]}; "
                  f"the map most focused at the end: {label} (focus {focuses[-1]:.2f})")
    losses = history["train"]["loss"]
    if losses:
        line = viz.sparkline(losses)
        marks = [" "] * len(line)
        for st in steps:
            marks[min(len(line) - 1, int((st - 1) / max(1, len(losses)) * len(line)))] = "^"
        console.print(f"loss  {line}\nsnaps {''.join(marks)}", markup=False)
    for st, f in zip(steps, focuses):
        near = loss_near(history, st)
        loss = f"loss {near:.3f}" if near is not None else "loss -"
        console.print(f"  step {st:>6}  {loss:<11} focus {f:.2f} {'#' * round(20 * f)}",
                      markup=False)
    for i in picks(steps, focuses, SHOWN):
        a = series[i]
        console.print(viz.heatmap(a, _labels(snap, a.shape[0]), _labels(snap, a.shape[1]),
                                  vmax=1.0, title=f"{label} at step {steps[i]} (focus "
                                                  f"{focuses[i]:.2f}; shade 0 to 1)"),
                      markup=False)
    return snap, label, series, focuses


def _labels(snap, n):
    labels = snap["labels"]
    return labels[:n] if labels is not None and len(labels) >= n else [str(i) for i in range(n)]


def figure(path, history, replayed, plot_path):
    """The loss curve with the snapshot steps marked, and the chosen map at up to 2 x SHOWN
    steps on one shared 0-1 scale (engine.viz.snapshots_figure)."""
    from functools import partial

    from commands import plots
    from engine import viz
    snap, label, series, focuses = replayed
    steps = [int(s) for s in snap["steps"]]
    chosen = picks(steps, focuses, 2 * SHOWN)
    panels = [(series[i], _labels(snap, series[i].shape[0]), _labels(snap, series[i].shape[1]),
               f"step {steps[i]}, focus {focuses[i]:.2f}") for i in chosen]
    train = history["train"]
    plots.save(partial(viz.snapshots_figure, [s + 1 for s in train["step"]], train["loss"],
                       steps, panels, title=f"{path}: {label} as it formed"), plot_path)
