"""`attn runs`: list the training runs under runs/, or show one: its settings, loss curve,
evaluations, and with --attention the attention snapshots it recorded."""

import os

from commands import CliError
from commands.run_lookup import history_of, read_run

EXAMPLE = """examples:
  attn runs                           # every run under runs/: model, data, steps, result
  attn runs reverse                   # one run (a name under runs/, or a directory): its
                                      # settings, loss curve and evaluations
  attn runs runs/reverse --plot loss.png   # its loss curve as a figure (needs matplotlib)
  attn runs reverse --attention       # replay the attention snapshots beside the loss
  attn runs reverse --attention --plot formed.png  # the same as a figure"""


def add_args(p):
    p.add_argument("name", nargs="?", metavar="RUN",
                   help="show this run: a directory holding a checkpoint, or its name under "
                        "--root (default: list them all)")
    p.add_argument("--root", default="runs", metavar="DIR",
                   help="where runs are listed and names are looked up (default runs)")
    p.add_argument("--plot", metavar="PATH",
                   help="with RUN: save its loss curve (and validation losses) as a PNG "
                        "(needs matplotlib: pip install 'attn-engine[plots]')")
    p.add_argument("--attention", action="store_true",
                   help="with RUN: replay the attention snapshots it recorded at each "
                        "evaluation beside its loss curve (with --plot: as a figure)")
    p.epilog = EXAMPLE


def run(args):
    from commands import plots
    if (args.plot is not None or args.attention) and args.name is None:
        raise CliError(f"{'--plot' if args.plot is not None else '--attention'} shows one "
                       f"run: name the run (attn runs lists them)")
    plots.check(args.plot)
    if args.name is None:
        return _list(args.root)
    path = _find(args.name, args.root)
    info = read_run(path)
    history = history_of(path, info)
    _show(path, info, history)
    if args.attention:
        from rich.console import Console

        from commands import attention_replay
        replayed = attention_replay.replay(path, history, Console(highlight=False))
        if args.plot is not None:
            attention_replay.figure(path, history, replayed, args.plot)
            print(f"figure of the attention as it formed: {args.plot}")
    elif args.plot is not None:
        from functools import partial

        from engine import viz
        train = history["train"]
        title = f"{path}: {_what(info)}"
        plots.save(partial(viz.loss_figure, [s + 1 for s in train["step"]], train["loss"],
                           evals=history["eval"] + ([history["final"]] if history["final"]
                                                    else []), title=title), args.plot)
        print(f"figure of the loss: {args.plot}")
    return 0


def _find(name, root):
    from engine.training import rundir
    for path in (name, os.path.join(root, name)):
        if rundir.holds_checkpoint(path):
            return path
    raise CliError(f"no run at '{name}' (nor '{os.path.join(root, name)}'): attn runs lists "
                   f"the runs under {root}/")


def _what(info):
    train = info["config"]["train"]
    family = info["config"].get("model_family", "gpt")
    data = (f"text {os.path.basename(train['text'])}" if train.get("text")
            else f"task {train.get('task')}")
    return f"{family} {train.get('config', 'tiny')} on {data}"


def _result(final):
    if not final:
        return "-"
    for key in ("exact_match", "accuracy"):
        if key in final:
            return f"{key.replace('_', ' ')} {100 * final[key]:.1f}%"
    return f"val loss {final['val_loss']:.4f}"


def _list(root):
    import time

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from engine.training import rundir
    console = Console(highlight=False)
    found = []
    if os.path.isdir(root):
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.is_dir() and rundir.holds_checkpoint(entry.path):
                found.append(entry.path)
    if not found:
        console.print(f"no runs under {root}/ yet: attn train (or attn demo) makes one")
        return 0
    table = Table(title=f"runs under {root}/",
                  caption="attn runs RUN shows one: its loss curve and evaluations")
    table.add_column("run", overflow="fold")
    for name in ("model and data", "steps", "final", "saved"):
        table.add_column(name)
    for path in found:
        try:
            table.add_row(path, *_row(path, time))
        except Exception as e:  # noqa: BLE001  (one bad run is a row, not the end of the list)
            table.add_row(path, escape(f"unreadable: {e}"), "", "", "", style="red")
    console.print(table)
    return 0


def _row(path, time):
    """The listing's cells of one run: model and data, steps, final result, when saved."""
    info = read_run(path)
    history = history_of(path, info)
    state, train = info["train_state"], info["config"]["train"]
    steps = f"{state['step']}/{train['steps']}" + (" interrupted" if state.get(
        "interrupted") else "")
    saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(
        os.path.getmtime(os.path.join(path, "config.json"))))
    return _what(info), steps, _result(history.get("final")), saved


def _show(path, info, history):
    from rich.console import Console

    from engine import viz
    from engine.training.progress import describe_eval
    console = Console(highlight=False)
    state, train = info["train_state"], info["config"]["train"]
    console.print(f"[bold]{path}[/]: {_what(info)}; {state['step']} of {train['steps']} steps"
                  f"{' (interrupted)' if state.get('interrupted') else ''}, batch "
                  f"{train.get('batch_size')}, lr {train.get('lr')}, seed {train.get('seed')}")
    losses = history["train"]["loss"]
    if losses:
        console.print(f"loss {losses[0]:.3f} {viz.sparkline(losses)} {losses[-1]:.3f}  "
                      f"(steps 1 to {len(losses)}, each character a mean)", markup=False)
    for result in history["eval"]:
        console.print("      " + describe_eval(result))
    if history.get("final"):
        console.print("[bold green]final[/] " + describe_eval(history["final"]))
