"""Helpers of the training loop: RNG state capture, Ctrl-C deferral, locating non-finite values."""

import contextlib
import signal
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
