"""The metrics log: metrics.jsonl next to the checkpoint, one JSON object per line, append-only.

Rows, in the order they happened:
  {"kind": "train", "step": s, "loss": ..., "lr": ..., "grad_norm": ...}   one per step s
      (s counts from 0: the row of step s is written once s + 1 steps are done)
  {"kind": "eval", "step": n, "val_loss": ..., <the dataset's metrics>}     after n steps
  {"kind": "final", "step": n, ...}                                          end of a run
Rows are kept in memory and appended at each checkpoint save, before the checkpoint itself;
the checkpoint records how many bytes (and rows) of the file it covers. A crash between the
append and the save therefore leaves rows beyond the checkpoint (steps at or past its step),
and resuming cuts the file back to the recorded size, so the file matches the checkpoint.
A format-1 checkpoint kept the whole history in config.json instead; resuming one writes
that history as the first rows of a new metrics.jsonl.
"""

import json
import os

from engine.training.checkpoint import CheckpointError

METRICS_FILE = "metrics.jsonl"
TRAIN_COLUMNS = ("step", "loss", "lr", "grad_norm")


def new_history():
    """The in-memory history `train()` returns (see its docstring)."""
    return {"train": {k: [] for k in TRAIN_COLUMNS}, "eval": [], "final": None,
            "interrupted": False}


class Metrics:
    """A run's metrics: the full history in memory, and the rows not yet in metrics.jsonl.

    size and rows: how much of metrics.jsonl is already written (bytes, lines).
    """

    def __init__(self, history=None, pending=(), size=0, rows=0):
        self.history = history if history is not None else new_history()
        self.pending, self.size, self.rows = list(pending), size, rows

    def train_step(self, step, loss, lr, grad_norm):
        row = {"kind": "train", "step": int(step), "loss": float(loss), "lr": float(lr),
               "grad_norm": float(grad_norm)}
        for k in TRAIN_COLUMNS:
            self.history["train"][k].append(row[k])
        self.pending.append(row)

    def evaluation(self, result, *, final=False):
        if final:
            self.history["final"] = result
        else:
            self.history["eval"].append(result)
        self.pending.append({"kind": "final" if final else "eval", **result})

    def flush(self, directory):
        """Append the pending rows to `directory`/metrics.jsonl, fsynced, after the first
        `size` bytes (anything beyond them, left by an earlier crash, is dropped)."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, METRICS_FILE)
        data = "".join(json.dumps(row) + "\n" for row in self.pending).encode("utf-8")
        # never through a symbolic link (it would overwrite the file it points at)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        with open(fd, "r+b") as f:
            f.seek(self.size)
            f.truncate()
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.size += len(data)
        self.rows += len(self.pending)
        self.pending = []
        return {"file": METRICS_FILE, "bytes": self.size, "rows": self.rows}

    @classmethod
    def resume(cls, directory, train_state):
        """The metrics of the checkpoint in `directory` whose train_state is given; cuts
        metrics.jsonl back to what the checkpoint covers."""
        if "history" in train_state:  # format 1: the history lives in config.json
            history = train_state["history"]
            rows = check_history(os.path.join(directory, "config.json"), history)
            return cls(history, pending=rows)
        saved = train_state["metrics"]
        path = os.path.join(directory, saved["file"])
        rows = read_rows(path, saved["bytes"], saved["rows"])
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
        except OSError as e:
            raise CheckpointError(f"cannot write checkpoint file '{path}': "
                                  f"{e.strerror or e}") from None
        try:
            os.ftruncate(fd, saved["bytes"])
        finally:
            os.close(fd)
        history = history_from_rows(rows, train_state["step"])
        history["interrupted"] = bool(train_state.get("interrupted", False))
        return cls(history, size=saved["bytes"], rows=saved["rows"])


def read_rows(path, size=None, expect_rows=None):
    """The rows in the first `size` bytes of metrics.jsonl at `path` (all when None);
    CheckpointError naming the file when it is missing, shorter, or not JSON lines."""
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
            data = f.read() if size is None else f.read(size)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file '{path}' is missing") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint file '{path}': {e}") from None
    if size is not None and len(data) < size:
        raise CheckpointError(f"checkpoint file '{path}' is truncated: {len(data)} bytes, "
                              f"the checkpoint covers {size}")
    rows = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise CheckpointError(f"checkpoint file '{path}' is corrupted: line {number} "
                                  f"is not JSON") from None
        problem = _row_problem(rows[-1])
        if problem:
            raise CheckpointError(f"checkpoint file '{path}' is corrupted: line {number} is "
                                  f"not a metrics row ({problem})")
    if expect_rows is not None and len(rows) != expect_rows:
        raise CheckpointError(f"checkpoint file '{path}' holds {len(rows)} rows where the "
                              f"checkpoint covers {expect_rows}")
    return rows


def _row_problem(row):
    """What is wrong with one parsed metrics.jsonl line, or None for a good row: an object of
    a known kind, an integer step >= 0, numbers for the rest (a train row: all its columns)."""
    if not isinstance(row, dict) or row.get("kind") not in ("train", "eval", "final"):
        return "not an object with kind train, eval or final"
    step = row.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return f"step {step!r}"
    need = TRAIN_COLUMNS if row["kind"] == "train" else ("step", "val_loss")
    missing = [k for k in need if k not in row]
    if missing:
        return f"no {', '.join(missing)}"
    bad = [k for k, v in row.items() if k != "kind"
           and (not isinstance(v, int | float) or isinstance(v, bool))]
    if bad:
        return f"{bad[0]} is not a number"
    counts = [f"{k}_n" for k in ("exact_match", "accuracy") if k in row and f"{k}_n" not in row]
    return f"no {counts[0]}" if counts else None


def check_history(where, history):
    """CheckpointError naming `where` unless a format-1 history (config.json) is made of good
    rows; returns the rows (the metrics.jsonl it stands for)."""
    try:
        rows = rows_from_history(history)
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        raise CheckpointError(f"checkpoint file '{where}': train_state.history is not a "
                              f"history ({type(e).__name__}: {e})") from None
    for number, row in enumerate(rows, 1):
        problem = _row_problem(row)
        if problem:
            raise CheckpointError(f"checkpoint file '{where}': train_state.history row "
                                  f"{number} is not a metrics row ({problem})")
    return rows


def history_from_rows(rows, step):
    """The in-memory history of the rows of a run checkpointed after `step` steps; its
    "final" is the final evaluation of that step, if the run had reached its end there."""
    history = new_history()
    for row in rows:
        kind, result = row["kind"], {k: v for k, v in row.items() if k != "kind"}
        if kind == "train":
            for k in TRAIN_COLUMNS:
                history["train"][k].append(result[k])
        elif kind == "eval":
            history["eval"].append(result)
        elif kind == "final":
            history["final"] = result if result["step"] == step else None
    return history


def rows_from_history(history):
    """The metrics.jsonl rows of a format-1 history, in the order they happened."""
    columns = history["train"]
    rows = [((s + 1, 0), {"kind": "train", **{k: columns[k][i] for k in TRAIN_COLUMNS}})
            for i, s in enumerate(columns["step"])]
    rows += [((r["step"], 1), {"kind": "eval", **r}) for r in history["eval"]]
    if history.get("final") is not None:
        rows.append(((history["final"]["step"], 2), {"kind": "final", **history["final"]}))
    return [row for _, row in sorted(rows, key=lambda pair: pair[0])]
