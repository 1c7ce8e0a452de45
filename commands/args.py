"""argparse argument types shared by the subcommands: each refuses a bad value with one
line that names it (argparse prints it as `attn COMMAND: error: argument --x: ...`)."""

import argparse


def _integer(text, minimum, expected):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive_int(text):
    """An integer >= 1."""
    return _integer(text, 1, "a positive integer")


def non_negative_int(text):
    """An integer >= 0."""
    return _integer(text, 0, "an integer >= 0")


def positive_float(text):
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def non_negative_float(text):
    """A finite number > 0, or 0 written as 0 or 0.0."""
    return positive_float(text) if text.strip() not in ("0", "0.0") else 0.0


def path_arg(text):
    """A path that is not empty (an unset shell variable, `--out ''`, must not mean "no
    directory")."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return text
