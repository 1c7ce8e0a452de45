"""Helpers of the training loop: RNG state capture, Ctrl-C and SIGTERM handling, locating
non-finite values."""

import contextlib
import signal
import sys
import threading

import numpy as np

import engine.functional as F
import ops
from engine import AnomalyError, detect_anomaly

_DEFAULT = "<engine default generator>"


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


_STOP = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and what schedulers and `timeout` send


def _ours():
    """The stop signals whose handler raises KeyboardInterrupt here (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return []
    return [s for s in _STOP if signal.getsignal(s) is signal.default_int_handler]


@contextlib.contextmanager
def sigterm_as_interrupt():
    """For the block, SIGTERM raises KeyboardInterrupt as Ctrl-C does, so a run stopped by
    a job scheduler, `timeout` or `docker stop` saves its checkpoint like an interrupted one.
    Left alone when SIGTERM already has a handler of its own, or off the main thread."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


_kept = []  # KeyboardInterrupts Python could not raise, while interrupts_kept() is on


@contextlib.contextmanager
def interrupts_kept():
    """For the block, keep a Ctrl-C (or SIGTERM, as KeyboardInterrupt) that Python could not
    raise, for `raise_kept_interrupt` to raise at the next step boundary.

    Numba's compiler calls back into Python from inside LLVM (llvmlite's object-cache hook);
    a KeyboardInterrupt raised in such a callback cannot cross the C frames, so Python prints
    "Exception ignored on calling ctypes callback function" and drops it: a Ctrl-C during a
    kernel's first compile (the ~10-15 s first step of a fresh install) was lost and training
    went on (seen once in eleven `timeout` runs). Such exceptions reach sys.unraisablehook;
    this block's hook keeps the KeyboardInterrupts and passes anything else on."""
    previous = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            _kept.append(unraisable.exc_value)
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous
        _kept.clear()


def raise_kept_interrupt():
    """Raise KeyboardInterrupt if interrupts_kept() kept one since the last call."""
    if _kept:
        _kept.clear()
        raise KeyboardInterrupt


@contextlib.contextmanager
def kept_interrupt_wins():
    """For the block, an exception raised after a Ctrl-C was kept is that Ctrl-C: a Numba
    compile interrupted inside LLVM fails a moment later with an unrelated error (a
    RuntimeError "no compiled object yet" when it caches the half-built kernel), which must
    stop the run as Ctrl-C does, saving its checkpoint, not end it with a traceback."""
    try:
        yield
    except Exception:
        if _kept:
            _kept.clear()
            raise KeyboardInterrupt from None
        raise


@contextlib.contextmanager
def critical_section():
    """Defer Ctrl-C (SIGINT) and SIGTERM until the block is done, then raise
    KeyboardInterrupt.

    The optimizer update and the step counter change together inside it, so a checkpoint
    saved on Ctrl-C always holds the weights of a whole number of steps.
    """
    caught = []
    signals = _ours()
    if not signals:
        yield  # not ours to manage (other thread, ignored, or a custom handler)
        return
    for s in signals:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s in signals:
            signal.signal(s, signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt


def locate_non_finite(model, optimizer, idx, targets):
    """Say where a non-finite loss came from: a parameter, or the first op (detect_anomaly).

    Reruns the step's forward and backward on the same batch (and, restored by the
    caller, the same dropout draws) with anomaly detection on.
    """
    for name, p in model.named_parameters():
        xp = ops.array_namespace(p.data)
        if not bool(ops.to_host(xp.all(xp.isfinite(p.data)))):
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
