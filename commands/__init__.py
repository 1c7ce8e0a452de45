"""The bodies of the `attn` subcommands beyond train/sample/bench, one module each; cli.py
holds the table that names them."""


class CliError(Exception):
    """A problem with what the user asked for: printed as one line, exit status 2."""


def positive_int(text):
    """argparse type: an integer >= 1 (an error message that names the value)."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


STEPS_CAP = "ATTN_STEPS_CAP"


def apply_steps_cap(cfg):
    """Cap cfg.steps at N steps past where the run starts when the environment sets
    ATTN_STEPS_CAP=N. Only CI sets it, to run every documented `attn` example quickly
    (scripts/run_examples.py); a user never needs it. Returns cfg."""
    import os
    value = os.environ.get(STEPS_CAP, "").strip()
    if not value:
        return cfg
    if not value.isdigit() or int(value) < 1:
        raise CliError(f"{STEPS_CAP}={value!r}: use a positive number of steps, or unset it")
    start = 0
    if cfg.resume:
        from engine.training.checkpoint import load
        start = int(load(cfg.out_dir).train_state["step"])
    cfg.steps = min(cfg.steps, start + int(value))
    return cfg


def path_arg(text):
    """argparse type: a path that is not empty (an unset shell variable, `--out ''`, must
    not mean "no directory")."""
    import argparse
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return text


def non_negative_int(text):
    """argparse type: an integer >= 0 (an error message that names the value)."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def environment_problem(environ):
    """One line saying what is wrong with an environment variable that would stop Numba from
    importing (so before anything imports it), or None."""
    value = environ.get("NUMBA_NUM_THREADS", "").strip()
    if value and (not value.isdigit() or int(value) < 1):
        return (f"NUMBA_NUM_THREADS={environ['NUMBA_NUM_THREADS']!r}: use a positive number "
                f"of threads, or unset it")
    return None
