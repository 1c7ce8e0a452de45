"""Attention snapshots: a model's attention on one fixed held-out example, taken at each
evaluation step, so that `attn runs RUN --attention` can replay how the maps formed.

File `attention.npz` in the run directory, rewritten whole at each snapshot: a temporary
file in the same directory (created exclusively, fsynced) moved into place with os.replace,
which swaps the directory entry, so a reader sees the old file or the new one and a symlink
put in its place is replaced, never written through. Read with allow_pickle=False.

    format  int64 ()         FORMAT
    steps   int64 (S,)       the training step of each snapshot, increasing
    labels  str (T,)         the probe's tokens as text (absent for image data)
    names   str (M,)         the map names of engine.models.attention_maps ("layer.0", ...)
    map.{i} float16 (S, ...) map i of the probe (its batch axis dropped) at each step;
                             every axis cut to MAX_TOKENS entries

Bounded: at most MAX_SNAPSHOTS snapshots (when full, every second one after the first is
dropped, so a long run keeps an even sample of its whole course) and MAX_BYTES in all (maps
that would pass it are left out, listed in `names` only when kept).
"""

import os
import re
import tempfile

import numpy as np

FILE, FORMAT = "attention.npz", 1
_TEMP = re.compile(r"\.attention\..+\.tmp$")  # what _write leaves if killed midway
MAX_SNAPSHOTS, MAX_TOKENS, MAX_BYTES = 48, 64, 4 << 20


def probe(data, seed):
    """(inputs (1, ...), labels or None): the first held-out example of the run's data, the
    same at every snapshot (and on resume)."""
    inputs = data.get_batch("val", 1, np.random.default_rng([seed, 5]))[0]
    vocab = getattr(data, "vocab", None)
    if vocab is None or not np.issubdtype(np.asarray(inputs).dtype, np.integer):
        return inputs, None
    return inputs, [vocab.itos[int(t)] for t in np.asarray(inputs)[0][:MAX_TOKENS]]


def take(model, inputs):
    """{name: float16 map of the probe, batch axis dropped, each axis cut to MAX_TOKENS}."""
    from engine.models import attention_maps
    from engine.nn import eval_mode
    with eval_mode(model):
        maps = attention_maps(model, inputs)
    cut = tuple(slice(0, MAX_TOKENS) for _ in range(8))
    return {name: np.asarray(m[0][cut[:m.ndim - 1]], dtype=np.float16)
            for name, m in maps.items()}


def snapshot_run(run):
    """Record the attention of `run` (engine.training.run.Run) at its current step in its
    directory; returns None, or a warning line when it could not (training goes on). A
    model family without attention maps (the registry does not require them) records none."""
    if not hasattr(run.model, "attention_maps"):
        return None
    try:
        if getattr(run, "attention_probe", None) is None:
            run.attention_probe = probe(run.data, run.cfg.seed)
        inputs, labels = run.attention_probe
        maps = take(run.model, inputs)
        if maps:
            record(run.cfg.out_dir, run.step, maps, labels)
    except (OSError, ValueError) as e:
        return f"could not record the attention snapshot of step {run.step}: {e}"
    return None


def record(run_dir, step, maps, labels):
    """Add the snapshot of `step` to run_dir/attention.npz (created on the first call)."""
    old = None
    if os.path.exists(os.path.join(run_dir, FILE)):
        try:
            old = load(run_dir)
        except SnapshotError:
            old = None  # unreadable: start again rather than stop the training run
    if old is not None and not set(old["names"]) <= set(maps):
        old = None  # another model wrote it: start again
    if old is not None:  # a map left out for size stays out
        maps = {n: maps[n] for n in old["names"]}
    steps = [] if old is None else list(old["steps"])
    series = {name: ([] if old is None else list(old["maps"][name])) for name in maps}
    if steps and steps[-1] >= step:  # a resumed run repeats steps: keep the newer ones
        keep = [i for i, s in enumerate(steps) if s < step]
        steps = [steps[i] for i in keep]
        series = {n: [v[i] for i in keep] for n, v in series.items()}
    steps.append(step)
    for name, m in maps.items():
        series[name].append(m)
    if len(steps) > MAX_SNAPSHOTS:
        keep = sorted(set(range(0, len(steps), 2)) | {len(steps) - 1})
        steps = [steps[i] for i in keep]
        series = {n: [v[i] for i in keep] for n, v in series.items()}
    _write(run_dir, steps, series, labels)


def _write(run_dir, steps, series, labels):
    arrays = {"format": np.int64(FORMAT), "steps": np.asarray(steps, np.int64)}
    total, names = 0, []
    for name, values in series.items():
        stacked = np.stack(values).astype(np.float16)
        if total + stacked.nbytes > MAX_BYTES:
            continue
        total += stacked.nbytes
        arrays[f"map.{len(names)}"] = stacked
        names.append(name)
    arrays["names"] = np.asarray(names, dtype=str)
    if labels is not None:
        arrays["labels"] = np.asarray(labels, dtype=str)
    for name in os.listdir(run_dir):  # the run holds the directory's lock: these are stale
        if _TEMP.match(name):
            os.unlink(os.path.join(run_dir, name))
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=".attention.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(run_dir, FILE))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class SnapshotError(ValueError):
    """attention.npz is missing, unreadable or not of this format (the message names it)."""


def load(run_dir):
    """{"steps" (S,), "names" [M], "labels" [T] or None, "maps" {name: (S, ...) float32}}."""
    path = os.path.join(run_dir, FILE)
    if not os.path.isfile(path):
        raise SnapshotError(f"no attention snapshots in '{run_dir}' (runs record them at "
                            f"each evaluation, eval_every > 0)")
    if os.path.getsize(path) > 2 * MAX_BYTES:
        raise SnapshotError(f"'{path}' is larger than snapshots ever are: not ours")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if int(arrays["format"]) != FORMAT:
            raise ValueError(f"format {int(arrays['format'])}, this version reads {FORMAT}")
        steps, names = arrays["steps"].astype(np.int64), [str(n) for n in arrays["names"]]
        maps = {n: arrays[f"map.{i}"].astype(np.float32) for i, n in enumerate(names)}
        if steps.ndim != 1 or any(m.shape[0] != len(steps) for m in maps.values()):
            raise ValueError("the steps and the maps disagree in length")
    except Exception as e:  # noqa: BLE001  (zip, format, key and shape errors: a bad file)
        raise SnapshotError(f"attention snapshots '{path}' are unreadable "
                            f"({type(e).__name__}: {e})") from None
    labels = [str(t) for t in arrays["labels"]] if "labels" in arrays else None
    return {"steps": steps, "names": names, "labels": labels, "maps": maps}
