"""A training run's state: built fresh from a TrainConfig or restored from a checkpoint, and
saved back. The one path from a config to model, data and optimizer; the model comes from
the registry (engine.models), so nothing here knows a model family."""

import numpy as np

import ops
from engine.data import DataError, build_dataset, dataset_from_description
from engine.models import get_model
from engine.optim import AdamW, weight_decay_groups
from engine.training import checkpoint
from engine.training.metrics import Metrics
from engine.training.support import get_rng_states, set_rng_states


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
                         seed=cfg.seed, context_length=model_config.context_length)
    try:
        return data, model_config.for_data(data)
    except ValueError as e:
        what = f"text file '{cfg.text}'" if cfg.text is not None else f"task {cfg.task!r}"
        raise DataError(f"{what} does not fit the model: {e}") from None


def _optimizer(cfg, model):
    """AdamW over `model`, built after the model is on its device (its state lives there)."""
    return AdamW(weight_decay_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)


def new_run(cfg):
    """A fresh run: data, a model initialised from cfg.seed on cfg.device, its optimizer."""
    ops.get_device(cfg.device)  # an unknown or missing device fails before any work
    family = get_model(cfg.model)
    data, model_config = _dataset(cfg, family.config.from_name(cfg.config,
                                                               **cfg.model_overrides))
    model = family.model(model_config, rng=np.random.default_rng([cfg.seed, 1]))
    model.to(cfg.device)
    return Run(cfg, data, model, _optimizer(cfg, model), 0, Metrics())


def resume_run(cfg):
    """The run saved in cfg.out_dir, continued with `cfg` (its data must be the same)."""
    if not cfg.out_dir:
        raise ValueError("resume needs out_dir, the checkpoint directory to continue from")
    ops.get_device(cfg.device)
    ckpt = checkpoint.load(cfg.out_dir)
    if ckpt.family != cfg.model:
        raise checkpoint.CheckpointError(f"checkpoint '{ckpt.path}' holds a {ckpt.family!r} "
                                         f"model, not {cfg.model!r}")
    model, data = _restore_model(ckpt, need_text=True)
    saved, wanted = ckpt.config["data"], _dataset(cfg, model.config)[0].describe()
    if wanted != saved:
        raise checkpoint.CheckpointError(f"checkpoint '{ckpt.path}' was trained on {saved}, "
                                         f"not on {wanted}")
    model.to(cfg.device)
    optimizer = _optimizer(cfg, model)
    checkpoint.restore_optimizer(ckpt, optimizer)
    set_rng_states(model, ckpt.train_state["rng"])
    metrics = Metrics.resume(ckpt.path, ckpt.train_state)
    return Run(cfg, data, model, optimizer, int(ckpt.train_state["step"]), metrics)


def _restore_model(ckpt, *, need_text):
    """(model with the checkpoint's weights, on the CPU; its dataset) from a loaded checkpoint."""
    try:
        family = get_model(ckpt.family)
        model = family.model(family.config.from_dict(ckpt.config["model"]), rng=0)
        data = dataset_from_description(ckpt.config["data"], need_text=need_text)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, DataError) and need_text:
            raise  # the text file is gone or changed: say so, not "unusable checkpoint"
        path = f"{ckpt.path}/{checkpoint.CONFIG_FILE}"
        raise checkpoint.CheckpointError(f"checkpoint file '{path}' describes no usable "
                                         f"model or data ({type(e).__name__}: {e})") from None
    checkpoint.restore(ckpt, model)
    return model, data


def load_model(ckpt_dir):
    """(model, data) from a checkpoint directory (any format), for sampling and evaluation.

    The model is whichever registered family the checkpoint names, on the CPU (move it with
    `model.to(device)`). data is the SyntheticTask it was trained on, or for text the
    character Vocab (the text file itself is not needed).
    """
    return _restore_model(checkpoint.load(ckpt_dir), need_text=False)


def save(run):
    """Append the run's new metrics rows to metrics.jsonl, then save the checkpoint that
    covers them (format 2: the model family named, no per-step history in config.json)."""
    cfg = run.cfg
    covered = run.metrics.flush(cfg.out_dir)
    config = {"model_family": cfg.model, "model": run.model.config.to_dict(),
              "train": cfg.to_dict(), "data": run.data.describe()}
    state = {"step": run.step, "rng": get_rng_states(run.model),
             "interrupted": run.history["interrupted"], "metrics": covered}
    checkpoint.save(cfg.out_dir, run.model, run.optimizer, config, state)
