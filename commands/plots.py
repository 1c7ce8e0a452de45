"""`--plot PATH` of `attn demo` and `attn runs`: figures through engine.viz, which needs
matplotlib (the optional [plots] extra). Missing matplotlib or a PATH that cannot be written
is one line and exit status 2, said before any work starts."""

import os

from commands import CliError


def check(path):
    """Refuse --plot PATH now (CliError) when matplotlib is missing or PATH's folder does
    not exist, rather than after a training run or a long analysis."""
    if path is None:
        return
    from engine import viz
    if not viz.have_matplotlib():
        raise CliError(f"--plot needs matplotlib, which is not installed: {viz.PLOTS_HINT}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"--plot {path}: there is no folder '{folder}'")
    if os.path.isdir(path):
        raise CliError(f"--plot {path}: that is a folder; give a file name such as "
                       f"{os.path.join(path, 'figure.png')}")


def save(draw, path):
    """Call draw(path=path) (an engine.viz figure function, its other arguments bound); a
    file that cannot be written or a format matplotlib does not know is a CliError."""
    try:
        draw(path=path)
    except (OSError, ValueError) as e:
        raise CliError(f"--plot {path}: {e}") from None
