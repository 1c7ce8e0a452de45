"""A training run's state: built fresh from a TrainConfig or restored from a checkpoint, and
saved back. The one path from a config to model, data and optimizer; the model comes from
the registry (engine.models), so nothing here knows a model family."""

import dataclasses
from types import SimpleNamespace

import numpy as np

import ops
from engine.data import DataError, Vocab, build_dataset, dataset_from_description
from engine.models import get_model
from engine.optim import AdamW, weight_decay_groups
from engine.training import checkpoint
from engine.training.config import TrainConfig
from engine.training.metrics import Metrics, rows_from_history
from engine.training.support import get_rng_states, set_rng_states
from engine.training.validate import (
    ConfigError,
    check_memory,
    check_run_memory,
    check_train_state,
    model_bytes,
)

# Settings of a run that may change on --resume; the rest describe the model and its data.
RESUMABLE = ("steps", "batch_size", "lr", "eval_every", "eval_examples", "final_eval_examples",
             "ckpt_every", "device")
_MODEL_SETTINGS = ("model", "config", "model_overrides", "seed")


class Run:
    """The mutable state of one training run."""

    def __init__(self, cfg, data, model, optimizer, step, metrics):
        self.cfg, self.data, self.model, self.optimizer = cfg, data, model, optimizer
        self.step, self.metrics = step, metrics
        self.history = metrics.history
        self.params = model.parameters()


def _dataset(cfg, model_config):
    """The dataset `cfg` asks for, and the model config fitted to it (see the registry)."""
    data = build_dataset(task=cfg.task, text=cfg.text, task_options=cfg.task_options,
                         seed=cfg.seed, context_length=model_config.context_length,
                         pairs=getattr(cfg, "pairs", None), images=getattr(cfg, "images", None),
                         max_target=getattr(model_config, "max_tgt_len", None))
    try:
        return data, model_config.for_data(data)
    except (ValueError, AttributeError) as e:
        what = (f"pairs file '{cfg.pairs}'" if getattr(cfg, "pairs", None) else
                f"images '{cfg.images}'" if getattr(cfg, "images", None) else
                f"text file '{cfg.text}'" if cfg.text is not None else f"task {cfg.task!r}")
        raise DataError(f"{what} does not fit the model: {e}") from None


def _optimizer(cfg, model):
    """AdamW over `model`, built after the model is on its device (its state lives there)."""
    return AdamW(weight_decay_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)


def new_run(cfg):
    """A fresh run: data, a model initialised from cfg.seed on cfg.device, its optimizer."""
    ops.get_device(cfg.device)  # an unknown or missing device fails before any work
    family = get_model(cfg.model)
    try:
        model_config = family.config.from_name(cfg.config, **cfg.model_overrides)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model settings: {e}") from None
    data, model_config = _dataset(cfg, model_config)
    check_run_memory(cfg, model_config, data)
    model = family.model(model_config, rng=np.random.default_rng([cfg.seed, 1]))
    model.to(cfg.device)
    return Run(cfg, data, model, _optimizer(cfg, model), 0, Metrics())


def resume_run(cfg):
    """The run saved in cfg.out_dir, continued with `cfg` (its data must be the same)."""
    if not cfg.out_dir:
        raise ValueError("resume needs out_dir, the checkpoint directory to continue from")
    ops.get_device(cfg.device)
    ckpt = checkpoint.load(cfg.out_dir)
    _check_schema(ckpt)
    if ckpt.family != cfg.model:
        raise checkpoint.CheckpointError(f"checkpoint '{ckpt.path}' holds a {ckpt.family!r} "
                                         f"model, not {cfg.model!r}")
    _check_same_model_settings(ckpt, cfg)
    step = ckpt.train_state["step"]
    if cfg.steps < step:
        raise ConfigError(f"checkpoint '{ckpt.path}' is already at step {step}: steps "
                          f"{cfg.steps} would train nothing; pass more steps to continue it")
    model, data = _restore_model(ckpt, need_text=True)
    saved, wanted = ckpt.config["data"], _dataset(cfg, model.config)[0].describe()
    if "sha256" not in saved:  # a checkpoint from before text files were hashed
        wanted.pop("sha256", None)
    if wanted != saved:
        raise checkpoint.CheckpointError(f"checkpoint '{ckpt.path}' was trained on {saved}, "
                                         f"not on {wanted}")
    check_run_memory(cfg, model.config, data)
    model.to(cfg.device)
    optimizer = _optimizer(cfg, model)
    checkpoint.restore_optimizer(ckpt, optimizer)
    saved_rng, own_rng = sorted(ckpt.train_state["rng"]), sorted(get_rng_states(model))
    if saved_rng != own_rng:
        raise checkpoint.CheckpointError(f"checkpoint file '{_config_path(ckpt)}' is not "
                                         f"usable: train_state.rng holds generators "
                                         f"{saved_rng}, the model has {own_rng}")
    set_rng_states(model, ckpt.train_state["rng"])
    metrics = Metrics.resume(ckpt.path, ckpt.train_state)
    return Run(cfg, data, model, optimizer, step, metrics)


def _config_path(ckpt):
    return f"{ckpt.path}/{checkpoint.CONFIG_FILE}"


def _check_schema(ckpt):
    """The whole of config.json against its schema: the train section as a TrainConfig and
    train_state (step, rng states, metrics or history); CheckpointError naming the field."""
    saved = ckpt.config.get("train")
    if not isinstance(saved, dict):
        raise checkpoint.CheckpointError(f"checkpoint file '{_config_path(ckpt)}' has no "
                                         f"train section")
    try:
        try:
            TrainConfig.from_dict(saved)
        except ConfigError as e:
            raise ConfigError(f"train.{e}") from None
        check_train_state(ckpt.train_state, ckpt.format)
    except ConfigError as e:
        raise checkpoint.CheckpointError(f"checkpoint file '{_config_path(ckpt)}' is not "
                                         f"usable: {e}") from None


def _check_same_model_settings(ckpt, cfg):
    """A setting that describes the model may not change on resume (it would be recorded in
    config.json while the model stays the saved one); the error names both values."""
    saved = ckpt.config.get("train")
    saved = saved if isinstance(saved, dict) else {}
    defaults = TrainConfig()
    for key in _MODEL_SETTINGS:
        was = saved.get(key, getattr(defaults, key))
        if getattr(cfg, key) != was:
            raise ConfigError(f"{key} {getattr(cfg, key)!r} differs from the checkpoint's "
                              f"{was!r}: model settings cannot change on resume (these can: "
                              f"{', '.join(RESUMABLE)})")


def resume_config(out_dir, given):
    """The TrainConfig of resuming the checkpoint in `out_dir` with settings `given` (the
    saved train section, overridden by `given`); a bad saved field names the file."""
    ckpt = checkpoint.load(out_dir)
    _check_schema(ckpt)
    return TrainConfig.from_dict({**ckpt.config["train"], **given, "resume": True,
                                  "out_dir": out_dir})


def _restore_model(ckpt, *, need_text):
    """(model with the checkpoint's weights, on the CPU; its dataset) from a loaded checkpoint."""
    _check_schema(ckpt)
    try:
        family = get_model(ckpt.family)
        config = family.config.from_dict(ckpt.config["model"])
        data = dataset_from_description(ckpt.config["data"], need_text=need_text)
        _check_fits(config, data)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
        if isinstance(e, DataError) and need_text:
            raise  # the text file is gone or changed: say so, not "unusable checkpoint"
        raise checkpoint.CheckpointError(f"checkpoint file '{_config_path(ckpt)}' describes no "
                                         f"usable model or data ({type(e).__name__}: {e})"
                                         ) from None
    try:
        check_memory(f"the model of checkpoint '{ckpt.path}'", model_bytes(config))
    except ConfigError as e:
        raise checkpoint.CheckpointError(str(e)) from None
    model = family.model(config, rng=0)
    checkpoint.restore(ckpt, model)
    return model, data


def _check_fits(config, data):
    """ValueError unless the saved model config is the one its saved data fits it to (the
    family takes this kind of data, and the sizes agree); text sampling has only the
    vocabulary, which stands for token data of one-token windows."""
    if isinstance(data, Vocab):
        data = SimpleNamespace(vocab_size=len(data), seq_len=1)
    fitted = config.for_data(data)  # ValueError when the family cannot take the data
    own, need = config.to_dict(), fitted.to_dict()
    for key in own:
        if own[key] != need[key]:
            raise ValueError(f"model {key} is {own[key]!r} where its data needs {need[key]!r}")


def load_model(ckpt_dir):
    """(model, data) from a checkpoint directory (any format), for sampling and evaluation.

    The model is whichever registered family the checkpoint names, on the CPU (move it with
    `model.to(device)`). data is the SyntheticTask it was trained on, or for text the
    character Vocab (the text file itself is not needed).
    """
    return _restore_model(checkpoint.load(ckpt_dir), need_text=False)


def save(run, out_dir=None):
    """Append the run's new metrics rows to metrics.jsonl, then save the checkpoint that
    covers them (format 2: the model family named, no per-step history in config.json).

    out_dir: another directory (e.g. after a SaveError): the run moves there, and its
    metrics.jsonl is written anew from the history in memory.
    """
    if out_dir is not None and out_dir != run.cfg.out_dir:
        run.cfg = dataclasses.replace(run.cfg, out_dir=str(out_dir))
        run.metrics = Metrics(run.history, pending=rows_from_history(run.history))
    cfg = run.cfg
    covered = run.metrics.flush(cfg.out_dir)
    config = {"model_family": cfg.model, "model": run.model.config.to_dict(),
              "train": cfg.to_dict(), "data": run.data.describe()}
    state = {"step": run.step, "rng": get_rng_states(run.model),
             "interrupted": run.history["interrupted"], "metrics": covered}
    checkpoint.save(cfg.out_dir, run.model, run.optimizer, config, state)
