"""The training loop: `train(TrainConfig(...)) -> history`, called by the CLI, tutorials and tests.

Any registered model family (cfg.model) on any dataset of the contract in
engine.models.registry. AdamW (no decay on biases and LayerNorm), warmup + cosine learning
rate, gradient clipping, periodic evaluation (validation loss here, the task's own metrics
from `data.evaluate`), checkpoints every `ckpt_every` steps and at the end with the metrics
log beside them, and exact resume: the batch of step s is drawn from an rng seeded with
(seed, s), and the model's dropout generators are saved and restored, so 10 steps + resume +
10 steps gives bit-for-bit the weights of 20 uninterrupted steps. Ctrl-C (or SIGTERM) saves
a checkpoint (at a step boundary) before re-raising KeyboardInterrupt. A non-finite loss or
gradient stops training with NonFiniteLossError naming the step and, found by rerunning the
step under `engine.detect_anomaly()`, the first op that produced it.
"""

import math
import time

import numpy as np

import ops
import ops.runtime
import ops.warm
from engine.models import get_model
from engine.nn import eval_mode
from engine.optim import clip_grad_norm, cosine_lr, set_lr
from engine.training import run as runs
from engine.training import rundir, snapshots
from engine.training.checkpoint import CheckpointError
from engine.training.progress import Reporter
from engine.training.support import (
    critical_section,
    get_rng_states,
    interrupts_kept,
    kept_interrupt_wins,
    locate_non_finite,
    raise_kept_interrupt,
    set_rng_states,
    sigterm_as_interrupt,
)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or inf loss (or gradient); the message names step and op."""


class SaveError(CheckpointError):
    """The last checkpoint of a run could not be written. `run` keeps the whole training
    state in memory: `engine.training.run.save(err.run)` retries once the cause is fixed,
    `save(err.run, other_dir)` saves it elsewhere."""

    def __init__(self, message, run):
        super().__init__(message)
        self.run = run


def evaluate(run, *, final):
    """Validation loss (always on the same batches), then the dataset's own metrics.

    Periodic evaluations ask the task for cfg.eval_examples examples, the final one for
    cfg.final_eval_examples (tasks: teacher-forced, then greedy exact match).
    """
    cfg, data, model = run.cfg, run.data, run.model
    rng = np.random.default_rng([cfg.seed, 3])
    losses = []
    with eval_mode(model):
        for _ in range(cfg.eval_batches):
            inputs, targets = data.get_batch("val", cfg.batch_size, rng)
            losses.append(model(inputs, targets)[1].item())
    examples = cfg.final_eval_examples if final else cfg.eval_examples
    return {"step": run.step, "val_loss": float(np.mean(losses)),  # host floats
            **data.evaluate(model, final=final, examples=examples)}


def batch_rng(seed, step):
    """The generator that draws the training batch of `step`: a pure function of both."""
    return np.random.default_rng([seed, 2, step])


def _learning_rate(cfg, step):
    min_lr = cfg.lr / 10 if cfg.min_lr is None else cfg.min_lr
    warmup = min(cfg.warmup_steps, cfg.steps)
    return cosine_lr(step, max_lr=cfg.lr, min_lr=min_lr, warmup_steps=warmup,
                     max_steps=cfg.steps)


def _train_step(run):
    """One optimisation step on the batch of run.step; returns (loss, targets in the batch)."""
    cfg, model, step = run.cfg, run.model, run.step
    inputs, targets = run.data.get_batch("train", cfg.batch_size, batch_rng(cfg.seed, step))
    lr = _learning_rate(cfg, step)
    set_lr(run.optimizer, lr)
    rng_before = get_rng_states(model)
    run.optimizer.zero_grad()
    with np.errstate(over="ignore", invalid="ignore"):  # checked below, reported clearly
        _, loss = model(inputs, targets)
        loss_value = loss.item()
        if math.isfinite(loss_value):
            loss.backward()
            norm = float(clip_grad_norm(run.params, cfg.grad_clip))
    if not math.isfinite(loss_value) or not math.isfinite(norm):
        what = "loss" if not math.isfinite(loss_value) else "gradient norm"
        value = loss_value if what == "loss" else norm
        set_rng_states(model, rng_before)
        where = locate_non_finite(model, run.optimizer, inputs, targets)
        raise NonFiniteLossError(f"training stopped at step {step}: the {what} is {value}; "
                                 f"{where}")
    with critical_section(), np.errstate(over="ignore", invalid="ignore"):
        run.optimizer.step()  # Ctrl-C waits for it; an overflow is caught at the next step
        run.step += 1
        run.metrics.train_step(step, loss_value, lr, norm)
    return loss_value, targets.size  # tokens (images for an image task)


def _loop(run, reporter):
    cfg = run.cfg
    while run.step < cfg.steps:
        t0 = time.perf_counter()
        loss, tokens = _train_step(run)
        raise_kept_interrupt()  # a Ctrl-C the step's first compile could not raise
        reporter.step(run.step, loss, tokens / (time.perf_counter() - t0))
        if cfg.eval_every and run.step % cfg.eval_every == 0 and run.step < cfg.steps:
            result = evaluate(run, final=False)
            raise_kept_interrupt()
            run.metrics.evaluation(result)
            reporter.evaluation(result)
            _snapshot(run, reporter)
        if cfg.out_dir and cfg.ckpt_every and run.step % cfg.ckpt_every == 0:
            _save(run, reporter, last=False)


def _snapshot(run, reporter):
    """The attention of the run's probe example at this evaluation (engine.training.snapshots)."""
    problem = snapshots.snapshot_run(run) if run.cfg.out_dir else None
    if problem:
        reporter.warning(f"{problem}; training goes on")


def _save(run, reporter, *, last, why=""):
    """Save a checkpoint. A failed periodic save is one warning line and training goes on
    (the next save tries again); a failed last save is a SaveError holding the run."""
    try:
        with critical_section():  # Ctrl-C or SIGTERM waits until all files are in place
            runs.save(run)
    except OSError as e:
        message = (f"{why}could not save the checkpoint of step {run.step} in "
                   f"'{run.cfg.out_dir}': {e.strerror or e}")
        if last:
            raise SaveError(message, run) from None
        reporter.warning(f"{message}; training goes on and the next save tries again")


def train(cfg, *, progress=True):
    """Train as `cfg` says; returns the history dict.

    history["train"]: columns step, loss, lr, grad_norm (one entry per step);
    history["eval"]: one dict per evaluation (step, val_loss, and the dataset's metrics:
    exact_match on tasks); history["final"]: the last evaluation (tasks: exact match by
    greedy decoding on cfg.final_eval_examples held-out problems; text: the bigram
    baseline too). With cfg.out_dir the same rows go to metrics.jsonl beside the checkpoint;
    on resume the history is read back from it. progress=True shows a progress bar and a
    line per evaluation, progress="quiet" only the final result line and the checkpoint
    directory (what a script reads), progress=False nothing.

    Training owns its process: it applies ops.runtime.configure() (Numba's threading layer,
    one BLAS thread, malloc thresholds) before the first kernel. On a cold kernel cache it
    starts ops.warm's background compile (ENGINE_PRECOMPILE=0 turns it off).

    With cfg.out_dir the directory is proved writable and locked (engine.training.rundir)
    before anything else, and held until the end; a new run refuses a directory that
    already holds a checkpoint. SIGTERM stops a run as Ctrl-C does (a checkpoint is saved,
    then KeyboardInterrupt is raised). A checkpoint that cannot be written is a warning
    while training goes on, and a SaveError (holding the run) at the end.
    """
    if progress not in (True, False, "quiet"):
        raise ValueError(f"train: progress must be True, False or 'quiet', got {progress!r}")
    ops.runtime.configure()  # a training run owns its process (threads, BLAS, malloc)
    ops.get_device(cfg.device)  # an unknown family or device is refused before the
    get_model(cfg.model)  # directory is created
    if cfg.device == "cpu" and ops.get_backend() == "numba":
        ops.warm.start_background()  # a cold kernel cache is filled from both ends at once
    with sigterm_as_interrupt(), interrupts_kept():
        if not cfg.out_dir:
            return _train(cfg, progress)
        with rundir.locked(cfg.out_dir):
            if not cfg.resume:
                rundir.check_new(cfg.out_dir)
            return _train(cfg, progress)


def _train(cfg, progress):
    run = runs.resume_run(cfg) if cfg.resume else runs.new_run(cfg)
    started = run.step
    with Reporter(cfg, run, progress) as reporter:
        try:
            run.history["interrupted"] = False
            with kept_interrupt_wins():  # (a compile's failure after Ctrl-C is Ctrl-C)
                _loop(run, reporter)
                final = run.step > started or run.history["final"] is None
                result = evaluate(run, final=True) if final else None
            if final:
                raise_kept_interrupt()
                run.metrics.evaluation(result, final=True)
                reporter.evaluation(run.history["final"], final=True)
                _snapshot(run, reporter)
                if cfg.out_dir:
                    _save(run, reporter, last=True)
        except KeyboardInterrupt:
            run.history["interrupted"] = True
            run.history["final"] = None
            if cfg.out_dir:
                _save(run, reporter, last=True, why=f"interrupted at step {run.step}, and ")
            reporter.interrupted(run.step)
            raise
    return run.history
