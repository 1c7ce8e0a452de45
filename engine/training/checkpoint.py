"""Checkpoints: weights, optimizer state and run description, written atomically, read safely.

A checkpoint is a directory holding three files (and the run's metrics.jsonl, see
engine.training.metrics):
  model.npz    the model's state_dict (one array per parameter name)
  optim.npz    the optimizer's state_dict, flattened: its arrays plus a JSON outline
  config.json  {"format": 2, "save_id", "config": {"model_family", "model", "train", "data"},
               "train_state": {"step", "rng", "interrupted", "metrics"}}
Every file is first written to a temporary file in the same directory, flushed and fsynced;
only when all three are complete are they moved into place with os.replace (config.json
last). A save that fails midway therefore leaves the previous checkpoint untouched. Each
file carries the save's random `save_id`, so a mix of files from two saves is detected.
Files are read with allow_pickle=False; anything unreadable raises CheckpointError naming
the file. Arrays of any device are copied to the host to be saved.

Format 1 (written before model families existed) is still read: it names no family (it is
a "gpt") and keeps the whole per-step history in train_state["history"].
"""

import fcntl
import json
import math
import os
import re
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass

import numpy as np

import ops

MODEL_FILE, OPTIM_FILE, CONFIG_FILE = "model.npz", "optim.npz", "config.json"
LOCK_FILE = ".lock"  # held (flock) by the one run writing the directory: engine.training.rundir
_TEMP = re.compile(r"\.(model\.npz|optim\.npz|config\.json)\..+\.tmp$")  # see _write_temp
MAX_CONFIG_BYTES = 64 << 20  # config.json: a format-1 history of ~10^6 steps fits
SETTLE_SECONDS = 10.0  # how long `load` waits for a save in progress to complete
FORMAT = 2
READABLE_FORMATS = (1, 2)
LEGACY_FAMILY = "gpt"  # the only model a format-1 checkpoint can hold
_ID_KEY, _OUTLINE_KEY = "__save_id__", "__outline__"


class CheckpointError(Exception):
    """A checkpoint is missing, truncated, corrupted or does not fit the model."""


class _MixedSave(CheckpointError):
    """Files of two saves: a save in progress (wait) or one that died halfway (report)."""


def writer_active(path_dir):
    """Whether a training run holds the lock of `path_dir` (so a save may be in progress)."""
    try:
        fd = os.open(os.path.join(path_dir, LOCK_FILE), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the shared lock if it was granted
    return False


def remove_stale_temps(path_dir):
    """Delete temporary files a crashed save left in `path_dir` (the directory has one
    writer, the run holding its lock, so no other save can be using them)."""
    for name in os.listdir(path_dir):
        if _TEMP.match(name):
            try:
                os.unlink(os.path.join(path_dir, name))
            except FileNotFoundError:
                pass


@dataclass
class Checkpoint:
    """What `load` returns: the run description and the saved arrays."""

    path: str
    config: dict  # {"model_family", "model": config dict, "train": TrainConfig dict, "data"}
    train_state: dict  # {"step": int, "rng": ..., ...}: whatever save was given
    model_state: dict  # {parameter name: array}
    optim_state: object  # the optimizer's state_dict as it was saved, or None
    format: int = FORMAT  # the format it was written in (format 1 is read as a "gpt")

    @property
    def family(self):
        """The registered model family name the checkpoint holds."""
        return self.config["model_family"]


# ---- flattening a nested state_dict into arrays + a JSON outline ------------------------------

def _flatten(obj, arrays):
    """A JSON-able outline of `obj`; its arrays are moved into `arrays` under numbered keys
    (arrays of another device are copied to the host)."""
    if isinstance(obj, (np.ndarray, np.generic)):
        return _store(np.asarray(obj), arrays)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, dict):  # kept as pairs: optimizer states use int keys
        return {"dict": [[_flatten(k, arrays), _flatten(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"tuple" if isinstance(obj, tuple) else "list": [_flatten(v, arrays)
                                                                for v in obj]}
    try:
        host = ops.to_host(obj)
    except TypeError:  # not an array of any registered device
        raise TypeError(f"checkpoint: cannot store a {type(obj).__name__} in optimizer "
                        f"state") from None
    return _store(host, arrays)


def _store(array, arrays):
    key = f"a{len(arrays)}"
    arrays[key] = array
    return {"array": key}


def _unflatten(outline, arrays):
    kind, body = next(iter(outline.items()))
    if kind == "array":
        a = arrays[body]
        return a[()] if a.ndim == 0 else a  # 0-d arrays come back as numpy scalars
    if kind == "dict":
        return {_unflatten(k, arrays): _unflatten(v, arrays) for k, v in body}
    if kind in ("list", "tuple"):
        items = [_unflatten(v, arrays) for v in body]
        return tuple(items) if kind == "tuple" else items
    return body


# ---- writing ---------------------------------------------------------------------------------

def _write_temp(directory, name, write):
    """Write a temporary file in `directory` with write(fileobj), fsynced; return its path."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _savez_writer(arrays):
    return lambda f: np.savez(f, **arrays)


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some platforms cannot open directories; the files are already synced
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(path_dir, model, optimizer, config, train_state):
    """Save a checkpoint into directory `path_dir` (created if needed); see the module doc.

    config (naming the family in config["model_family"]) and train_state must be JSON-able
    dicts; optimizer may be None.
    """
    os.makedirs(path_dir, exist_ok=True)
    remove_stale_temps(path_dir)
    save_id = uuid.uuid4().hex
    model_arrays = {name: ops.to_host(a) for name, a in model.state_dict().items()}
    model_arrays[_ID_KEY] = np.array(save_id)
    optim_arrays = {}
    outline = _flatten(optimizer.state_dict() if optimizer is not None else None, optim_arrays)
    optim_arrays[_OUTLINE_KEY] = np.array(json.dumps(outline))
    optim_arrays[_ID_KEY] = np.array(save_id)
    doc = {"format": FORMAT, "save_id": save_id, "config": config, "train_state": train_state}
    text = json.dumps(doc, indent=1).encode("utf-8")
    jobs = [(MODEL_FILE, _savez_writer(model_arrays)), (OPTIM_FILE, _savez_writer(optim_arrays)),
            (CONFIG_FILE, lambda f: f.write(text))]
    temps = []
    try:
        for name, write in jobs:
            temps.append((_write_temp(path_dir, name, write), name))
    except BaseException:
        for tmp, _ in temps:
            os.unlink(tmp)
        raise
    for tmp, name in temps:  # every file is complete on disk; config.json goes in last
        os.replace(tmp, os.path.join(path_dir, name))
    _fsync_dir(path_dir)


# ---- reading ---------------------------------------------------------------------------------

def _read_json(path):
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise CheckpointError(f"checkpoint file '{path}' is over {MAX_CONFIG_BYTES >> 20} "
                                  f"MiB: not a checkpoint description")
        doc = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file '{path}' is missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read checkpoint file '{path}': {e}") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint file '{path}' is corrupted: invalid JSON at "
                              f"line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise CheckpointError(f"checkpoint file '{path}' is corrupted: JSON nested too "
                              f"deeply") from None
    if (not isinstance(doc, dict) or not {"save_id", "config", "train_state"} <= set(doc)
            or not isinstance(doc["config"], dict)):
        raise CheckpointError(f"checkpoint file '{path}' is not a checkpoint description")
    if doc.get("format") not in READABLE_FORMATS:
        raise CheckpointError(f"checkpoint file '{path}' has format {doc.get('format')!r}; "
                              f"this version reads formats "
                              f"{', '.join(map(str, READABLE_FORMATS))}")
    if doc["format"] == 1:
        doc["config"] = {"model_family": LEGACY_FAMILY, **doc["config"]}
    if "model_family" not in doc["config"]:
        raise CheckpointError(f"checkpoint file '{path}' names no model family")
    return doc


MAX_NPZ_MEMBERS = 100_000  # far more arrays than any model here has


def _check_npz_headers(path):
    """Read only the zip directory and each array's .npy header: CheckpointError unless every
    member is stored uncompressed (as `save` writes it, so the data read is bounded by the
    file's size: no small file declares a huge array) and holds exactly the bytes its header
    declares; then refuse arrays that would not fit in memory. Returns nothing."""
    from engine.training.validate import ConfigError, check_memory
    total = 0
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_NPZ_MEMBERS:
            raise CheckpointError(f"checkpoint file '{path}' holds {len(infos):,} arrays")
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED:
                raise CheckpointError(f"checkpoint file '{path}' holds a compressed array "
                                      f"({info.filename}); checkpoints are stored "
                                      f"uncompressed")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0(f))
                nbytes = math.prod(shape) * dtype.itemsize
                if nbytes != info.file_size - f.tell():
                    raise CheckpointError(f"checkpoint file '{path}': {info.filename} declares "
                                          f"shape {shape} of {dtype} ({nbytes:,} bytes) but "
                                          f"holds {info.file_size - f.tell():,} bytes")
            total += nbytes
    try:
        check_memory(f"checkpoint file '{path}'", total)
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def read_description(path):
    """config.json at `path` as a dict, checked to be a checkpoint description of a readable
    format (CheckpointError naming the file otherwise); no array is read."""
    return _read_json(path)


def _read_npz(path, save_id):
    """Every array of the .npz at `path`, read eagerly once its headers are checked (see
    _check_npz_headers), checked to belong to save `save_id`."""
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint file '{path}' is missing")
    try:
        _check_npz_headers(path)
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001  (zipfile, zlib, format, OS errors: a bad file)
        raise CheckpointError(f"checkpoint file '{path}' is corrupted or truncated "
                              f"({type(e).__name__}: {e})") from None
    found = arrays.pop(_ID_KEY, None)
    if found is None or str(found) != save_id:
        raise _MixedSave(f"checkpoint file '{path}' is not from the same save as "
                         f"config.json (an interrupted or mixed save)")
    return arrays


def load(path_dir):
    """Read the checkpoint in directory `path_dir`; raises CheckpointError naming the file.

    Readers are never blocked by a run writing the directory: files of two saves, seen
    while that run holds the directory's lock, are a save in progress, and the read is
    retried (up to SETTLE_SECONDS) until config.json and the arrays agree.
    """
    path_dir = str(path_dir)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            return _load_once(path_dir)
        except _MixedSave as e:
            if time.monotonic() > deadline or not writer_active(path_dir):
                raise CheckpointError(str(e)) from None
            time.sleep(0.02)


def _load_once(path_dir):
    if os.path.isfile(path_dir):
        raise CheckpointError(f"'{path_dir}' is a file; a checkpoint is the directory that "
                              f"holds {CONFIG_FILE}, {MODEL_FILE} and {OPTIM_FILE}")
    if not os.path.isdir(path_dir):
        raise CheckpointError(f"checkpoint directory '{path_dir}' does not exist")
    doc = _read_json(os.path.join(path_dir, CONFIG_FILE))
    model_state = _read_npz(os.path.join(path_dir, MODEL_FILE), doc["save_id"])
    optim_path = os.path.join(path_dir, OPTIM_FILE)
    optim_arrays = _read_npz(optim_path, doc["save_id"])
    try:
        outline = json.loads(str(optim_arrays.pop(_OUTLINE_KEY)))
        optim_state = _unflatten(outline, optim_arrays)
    except (KeyError, ValueError, TypeError, StopIteration, AttributeError) as e:
        raise CheckpointError(f"checkpoint file '{optim_path}' is corrupted "
                              f"(bad outline: {type(e).__name__})") from None
    return Checkpoint(path_dir, doc["config"], doc["train_state"], model_state, optim_state,
                      doc["format"])


def _check_finite(path, arrays):
    """CheckpointError naming the first array of `arrays` ({name: array}) that is not all
    finite, or not numbers at all (a NaN weight samples garbage without a word)."""
    for name, a in arrays.items():
        if a.dtype.kind not in "fiub":
            raise CheckpointError(f"checkpoint file '{path}': tensor {name} holds "
                                  f"{a.dtype} values, not numbers")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise CheckpointError(f"checkpoint file '{path}': tensor {name} holds NaN or inf "
                                  f"values")


def _optim_arrays(state, prefix="optimizer"):
    """{name: array} of every array in a nested optimizer state (names like state.0.m)."""
    if isinstance(state, np.ndarray | np.generic):
        return {prefix: np.asarray(state)}
    items = (state.items() if isinstance(state, dict) else
             enumerate(state) if isinstance(state, list | tuple) else ())
    found = {}
    for key, value in items:
        found.update(_optim_arrays(value, f"{prefix}.{key}"))
    return found


def restore(ckpt, model, optimizer=None):
    """Copy a loaded checkpoint's arrays into `model` (and `optimizer`), checking they fit
    and are finite."""
    _check_finite(os.path.join(ckpt.path, MODEL_FILE), ckpt.model_state)
    try:
        model.load_state_dict(ckpt.model_state)
    except (KeyError, ValueError) as e:
        path = os.path.join(ckpt.path, MODEL_FILE)
        raise CheckpointError(f"checkpoint file '{path}' does not fit the model: {e}") from None
    if optimizer is not None:
        restore_optimizer(ckpt, optimizer)


def restore_optimizer(ckpt, optimizer):
    """Copy a loaded checkpoint's optimizer state into `optimizer`, checking it fits."""
    if ckpt.optim_state is not None:
        path = os.path.join(ckpt.path, OPTIM_FILE)
        _check_finite(path, _optim_arrays(ckpt.optim_state))
        try:
            _check_like(ckpt.optim_state, optimizer.state_dict(), "optimizer")
            optimizer.load_state_dict(ckpt.optim_state)
        except (KeyError, ValueError, IndexError, TypeError, AttributeError) as e:
            raise CheckpointError(f"checkpoint file '{path}' does not fit the optimizer: "
                                  f"{e}") from None


def _check_like(saved, own, where):
    """ValueError unless the saved optimizer state has the layout of `own` (a fresh one):
    the same hyper-parameter names holding numbers, each state entry an int count or an
    array of the parameter's dtype."""
    if not isinstance(saved, dict) or set(saved) != {"param_groups", "state"}:
        raise ValueError(f"{where} state must hold param_groups and state")
    groups, state = saved["param_groups"], saved["state"]
    if not isinstance(groups, list) or len(groups) != len(own["param_groups"]):
        raise ValueError(f"{where} has {len(own['param_groups'])} parameter groups")
    for i, (g, mine) in enumerate(zip(groups, own["param_groups"])):
        if not isinstance(g, dict) or set(g) != set(mine):
            raise ValueError(f"{where} group {i} must hold {sorted(mine)}")
        for key, value in g.items():
            want = mine[key]
            if key != "params" and not _same_kind(value, want):
                raise ValueError(f"{where} group {i} {key} is {value!r}")
    if not isinstance(state, dict):
        raise TypeError(f"{where} state must be a dict")
    dtypes = {}
    for i, s in state.items():
        if not isinstance(s, dict) or not all(isinstance(v, int | np.ndarray) for v in
                                              s.values()):
            raise ValueError(f"{where} state {i} must hold counts and arrays")
        dtypes.update({f"{k}": v.dtype for k, v in s.items() if isinstance(v, np.ndarray)})
    if len(set(dtypes.values())) > 1:
        raise ValueError(f"{where} state mixes dtypes {sorted(map(str, dtypes.values()))}")


def _same_kind(value, want):
    """Both numbers (not bools), both sequences of numbers of one length, or equal."""
    def number(v):
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if number(want):
        return number(value)
    if isinstance(want, list | tuple):
        return (isinstance(value, list | tuple) and len(value) == len(want)
                and all(number(v) for v in value))
    return value == want
