"""Helpers of the training loop: RNG state capture, Ctrl-C deferral, evaluation, progress."""

import contextlib
import signal
import threading

import numpy as np

import engine.functional as F
from engine import AnomalyError, detect_anomaly
from engine.data import CharDataset, SyntheticTask, eval_mode

_DEFAULT = "<engine default generator>"


# ---- random number generators ----------------------------------------------------------------

def get_rng_states(model):
    """JSON-able states of every generator a training step can draw from.

    That is each module's `rng` (the Dropout layers) and engine.functional's default
    generator; batches come from their own (seed, step) generator and need no state.
    """
    states = {_DEFAULT: F.default_generator().bit_generator.state}
    for name, module in model.named_modules():
        rng = getattr(module, "rng", None)
        if isinstance(rng, np.random.Generator):
            states[name] = rng.bit_generator.state
    return states


def set_rng_states(model, states):
    """Put back the generator states captured by `get_rng_states` (in place)."""
    F.default_generator().bit_generator.state = states[_DEFAULT]
    for name, module in model.named_modules():
        rng = getattr(module, "rng", None)
        if isinstance(rng, np.random.Generator) and name in states:
            rng.bit_generator.state = states[name]


# ---- Ctrl-C ----------------------------------------------------------------------------------

@contextlib.contextmanager
def critical_section():
    """Defer Ctrl-C (SIGINT) until the block is done, then raise KeyboardInterrupt.

    The optimizer update and the step counter change together inside it, so a checkpoint
    saved on Ctrl-C always holds the weights of a whole number of steps.
    """
    caught = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield  # not ours to manage (other thread, ignored, or a custom handler)
        return
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


# ---- non-finite values -----------------------------------------------------------------------

def locate_non_finite(model, optimizer, idx, targets):
    """Say where a non-finite loss came from: a parameter, or the first op (detect_anomaly).

    Reruns the step's forward and backward on the same batch (and, restored by the
    caller, the same dropout draws) with anomaly detection on.
    """
    for name, p in model.named_parameters():
        if not np.all(np.isfinite(p.data)):
            return (f"parameter {name} already holds non-finite values (the previous update "
                    f"diverged: lower the learning rate)")
    optimizer.zero_grad()
    try:
        with detect_anomaly(), np.errstate(over="ignore", invalid="ignore"):
            _, loss = model(idx, targets)
            loss.backward()
    except AnomalyError as e:
        return f"first op to produce it: {e.op} ({e})"
    finally:
        optimizer.zero_grad()
    return "detect_anomaly found no single op that produced it from finite inputs"


# ---- evaluation ------------------------------------------------------------------------------

def evaluate(run, *, final):
    """Validation loss (always on the same batches) and, on tasks, held-out exact match.

    Periodic evaluations score exact match by teacher forcing on cfg.eval_examples
    problems; the final one decodes cfg.final_eval_examples problems greedily.
    """
    cfg, data, model = run.cfg, run.data, run.model
    rng = np.random.default_rng([cfg.seed, 3])
    losses = []
    with eval_mode(model):
        for _ in range(cfg.eval_batches):
            idx, targets = data.get_batch("val", cfg.batch_size, rng)
            losses.append(model(idx, targets)[1].item())
    result = {"step": run.step, "val_loss": float(np.mean(losses))}
    if isinstance(data, SyntheticTask):
        n = cfg.final_eval_examples if final else cfg.eval_examples
        result["exact_match"] = data.exact_match(model, n, generate=final)
        result["exact_match_n"] = n
    if isinstance(data, CharDataset) and final:
        result["bigram_baseline"] = data.bigram_baseline()
    return result


def describe_eval(result):
    """One line: "step 300  val loss 0.412  exact match 87.0% (200 held out)"."""
    text = f"step {result['step']:>6}  val loss {result['val_loss']:.4f}"
    if "exact_match" in result:
        text += (f"  exact match {100 * result['exact_match']:.1f}% "
                 f"({result['exact_match_n']} held out)")
    if "bigram_baseline" in result:
        text += f"  (bigram baseline {result['bigram_baseline']:.4f})"
    return text


# ---- progress display ------------------------------------------------------------------------

class Reporter:
    """Rich progress bar (loss, tokens/s, ETA) and evaluation lines; silent when disabled."""

    def __init__(self, cfg, run, enabled):
        self.cfg, self.run, self.enabled = cfg, run, enabled
        self.loss = self.tok_s = None  # exponential moving averages

    def __enter__(self):
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        self.console = Console()
        self.console.print(_header(self.cfg, self.run))
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tok_s]} tok/s"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self.console)
        self.progress.start()
        self.task = self.progress.add_task("train", total=self.cfg.steps,
                                           completed=self.run.step, loss="-", tok_s="-")
        return self

    def step(self, step, loss, tok_s):
        self.loss = loss if self.loss is None else 0.9 * self.loss + 0.1 * loss
        self.tok_s = tok_s if self.tok_s is None else 0.9 * self.tok_s + 0.1 * tok_s
        if self.enabled:
            self.progress.update(self.task, completed=step, loss=f"{self.loss:.4f}",
                                 tok_s=f"{self.tok_s:,.0f}")

    def evaluation(self, result, final=False):
        if self.enabled:
            prefix = "[bold green]final[/] " if final else "      "
            self.console.print(prefix + describe_eval(result))

    def interrupted(self, step):
        if not self.enabled:
            return
        self.progress.stop()  # the bar first, then the message under it
        where = (f"checkpoint saved in {self.cfg.out_dir}; continue with --resume"
                 if self.cfg.out_dir else "no checkpoint directory, nothing saved")
        self.console.print(f"[yellow]interrupted at step {step}:[/] {where}")

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.stop()
            if exc[0] is None and self.cfg.out_dir:
                self.console.print(f"checkpoint: {self.cfg.out_dir}")


def _header(cfg, run):
    what = f"text {cfg.text}" if cfg.text else f"task {cfg.task}"
    steps = f"steps {run.step}->{cfg.steps}" if run.step else f"{cfg.steps} steps"
    return (f"GPT {cfg.config} ({run.model.num_parameters():,} params) on {what}: {steps}, "
            f"batch {cfg.batch_size}, lr {cfg.lr:g}, seed {cfg.seed}")
