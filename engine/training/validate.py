"""Checks made before anything is allocated or trained: the fields of a TrainConfig and of a
checkpoint's train_state against their schema, and sizes against this machine's memory.

Each failure is a ConfigError whose message names the key and the value (the CLI prints it
as one line); callers reading a checkpoint add the file's path.
"""

import math
import numbers
import os

import numpy as np


class ConfigError(ValueError):
    """A setting or saved field that cannot work; the message names the key and the value."""


# ---- field checks ----------------------------------------------------------------------------

def is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def need_int(key, v, least):
    if not is_int(v) or v < least:
        kind = "a positive integer" if least == 1 else f"an integer >= {least}"
        raise ConfigError(f"{key} must be {kind}, got {v!r}")


def need_number(key, v, *, positive=False):
    if not is_number(v) or v < 0 or (positive and v == 0):
        kind = "a positive number" if positive else "a number >= 0"
        raise ConfigError(f"{key} must be {kind}, got {v!r}")


def _need(key, v, types, what):
    if not isinstance(v, types):
        raise ConfigError(f"{key} must be {what}, got {v!r}")


_INTS = {"steps": 1, "batch_size": 1, "warmup_steps": 0, "eval_every": 0, "eval_batches": 1,
         "eval_examples": 1, "final_eval_examples": 1, "ckpt_every": 0, "seed": 0}
_NUMBERS = {"lr": True, "weight_decay": False, "grad_clip": False}  # name: must be > 0


def check_train_config(cfg):
    """Every field of a TrainConfig has its type and range, or ConfigError naming it."""
    for key, least in _INTS.items():
        need_int(key, getattr(cfg, key), least)
    for key, positive in _NUMBERS.items():
        need_number(key, getattr(cfg, key), positive=positive)
    if cfg.min_lr is not None:
        need_number("min_lr", cfg.min_lr)
    betas = cfg.betas
    if (not isinstance(betas, (list, tuple)) or len(betas) != 2
            or not all(is_number(b) and 0 <= b < 1 for b in betas)):
        raise ConfigError(f"betas must be two numbers in [0, 1), got {betas!r}")
    for key in ("task", "model", "config", "device"):
        _need(key, getattr(cfg, key), str, "a string")
    for key in ("text", "pairs", "images", "out_dir"):
        _need(key, getattr(cfg, key), (str, type(None)), "a string or null")
        if getattr(cfg, key) is not None and not getattr(cfg, key).strip():
            raise ConfigError(f"{key} must name a path (None for none), got "
                              f"{getattr(cfg, key)!r}")
    for key in ("model_overrides", "task_options"):
        _need(key, getattr(cfg, key), dict, "an object")
    for key, v in cfg.task_options.items():
        need_int(f"task_options.{key}", v, 1)
    _need("resume", cfg.resume, bool, "true or false")


def check_train_state(state, fmt):
    """A checkpoint's train_state: step, rng states, and the metrics it covers (format 2)
    or its history (format 1); ConfigError naming the first bad field."""
    _need("train_state", state, dict, "an object")
    if "step" not in state:
        raise ConfigError("train_state.step is missing")
    need_int("train_state.step", state["step"], 0)
    _need("train_state.interrupted", state.get("interrupted", False), bool, "true or false")
    _check_rng(state.get("rng"))
    if fmt == 1:
        _check_history(state.get("history"))
        return
    metrics = state.get("metrics")
    _need("train_state.metrics", metrics, dict, "an object")
    if metrics.get("file") != "metrics.jsonl":  # a path here would let resume cut any file
        raise ConfigError(f"train_state.metrics.file must be 'metrics.jsonl', got "
                          f"{metrics.get('file')!r}")
    for key in ("bytes", "rows"):
        need_int(f"train_state.metrics.{key}", metrics.get(key), 0)


def _check_rng(rng):
    _need("train_state.rng", rng, dict, "an object of generator states")
    if not rng:
        raise ConfigError("train_state.rng holds no generator state")
    for name, value in rng.items():
        try:
            np.random.default_rng().bit_generator.state = value
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
            raise ConfigError(f"train_state.rng[{name!r}] is not a generator state") from None


def _check_history(history):
    _need("train_state.history", history, dict, "an object")
    train = history.get("train")
    _need("train_state.history.train", train, dict, "an object of columns")
    columns = [train.get(k) for k in ("step", "loss", "lr", "grad_norm")]
    if not all(isinstance(c, list) for c in columns) or len({len(c) for c in columns}) != 1:
        raise ConfigError("train_state.history.train must hold columns step, loss, lr and "
                          "grad_norm of one length")
    _need("train_state.history.eval", history.get("eval"), list, "a list")
    _need("train_state.history.final", history.get("final"), (dict, type(None)),
          "an object or null")


# ---- memory ----------------------------------------------------------------------------------

def available_memory():
    """Bytes of memory available now (MemAvailable), or None when it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(n):
    """1536 -> '1.5 KB'; powers of 1024, up to EB, then a plain exponent."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1024 or unit == "EB":
            break
        n /= 1024
    return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"


def check_memory(what, nbytes, available=None):
    """ConfigError when `what` would need more than the available memory (with the figures)."""
    available = available_memory() if available is None else available
    if available is not None and nbytes > available:
        raise ConfigError(f"{what} needs about {human_bytes(nbytes)} of memory; this machine "
                          f"has {human_bytes(available)} available")


def model_bytes(model_config, copies=1):
    """Bytes of `copies` float32 copies of the parameters of `model_config` (0 when its
    family cannot count them without building the model)."""
    count = getattr(model_config, "num_parameters", None)
    return 0 if count is None else int(count()) * 4 * copies


def check_run_memory(cfg, model_config, data):
    """Refuse a run whose model and optimizer (4 float32 copies: weights, gradients, AdamW's
    m and v), training batch or evaluation set would not fit in memory; nothing is built."""
    check_memory(f"the model ({model_config.num_parameters():,} parameters with gradients and "
                 f"optimizer state)" if hasattr(model_config, "num_parameters") else "the model",
                 model_bytes(model_config, copies=4))
    step_bytes = getattr(model_config, "step_bytes", None)
    need = (step_bytes(cfg.batch_size, data.seq_len) if step_bytes is not None
            else generic_step_bytes(model_config, cfg.batch_size, data))
    check_memory(f"a training step of batch size {cfg.batch_size}", need)
    check_examples_memory("the final evaluation", cfg.final_eval_examples, data)


def generic_step_bytes(model_config, batch_size, data):
    """A rough lower bound of a training step's float32 activations (bytes) for a family
    that does not estimate its own: ~10 values of the widest layer per position and layer,
    and the logits with their gradients, read from the config's usual field names."""
    c = model_config
    width = max(getattr(c, k, 0) for k in ("n_embd", "hidden", "attn_size"))
    layers = (getattr(c, "n_layer", 0) + getattr(c, "n_enc_layer", 0)
              + getattr(c, "n_dec_layer", 0)) or 2  # a recurrent encoder and decoder
    outputs = getattr(c, "vocab_size", 0) or getattr(c, "num_classes", 0)
    if hasattr(c, "image_size") and hasattr(c, "patch_size"):
        positions = (c.image_size // max(c.patch_size, 1)) ** 2 + 1
    else:
        positions = getattr(data, "seq_len", 1) + getattr(c, "src_len", 0)
    return 4 * batch_size * positions * (layers * 10 * width + 2 * outputs)


def check_examples_memory(what, examples, data):
    """Refuse `examples` held-out problems of `data` that would not fit in memory (datasets
    without held-out problems, such as text, ignore `examples`)."""
    if not hasattr(data, "held_out"):
        return
    per = 16 * (getattr(data, "seq_len", 0) + 1) + 200  # token arrays and their Python objects
    check_memory(f"{what} of {examples:,} examples", examples * per)
