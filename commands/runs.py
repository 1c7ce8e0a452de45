"""Where runs live: runs/<task>[-<model>] directories and the newest checkpoint of a task,
shared by `attn train`, `attn sample` and `attn demo`."""

import os

from commands import CliError


def run_base(name, model):
    """runs/<task or text name>, with -<model> when the model is not the task's usual one
    (the GPT for sequences, the ViT for images): runs/reverse, runs/reverse-seq2seq-gru,
    runs/glyphs."""
    usual = "vit" if name == "glyphs" else "gpt"
    return os.path.join("runs", name + ("" if model in (None, usual) else f"-{model}"))


def newest_checkpoint(args):
    """--ckpt, or the newest run of --task under runs/ (engine.training.rundir.newest)."""
    from engine.training import rundir
    if args.ckpt is not None:
        return args.ckpt
    task = args.task
    if task is None:
        from engine.training.config import family_defaults
        task = family_defaults(args.model or "gpt")["task"]
    base = run_base(task, args.model)
    newest = rundir.newest(base)
    if newest is None:
        raise CliError(f"no checkpoint under '{base}': train one with `attn train`"
                       f"{'' if args.model is None else ' --model ' + args.model}, or pass "
                       f"--ckpt")
    return newest


class ModelFamilies:
    """The --model choices: the registered model families, read when argparse first needs
    them (importing the engine takes a second that bad-flag errors and `bench` need not pay)."""

    def __iter__(self):
        from engine.models import model_names
        return iter(model_names())

    def __contains__(self, name):
        return name in list(self)


# ---- attn runs: list the runs, or show one (its loss curve, evaluations, --plot) -------------

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
    info = _read(path)
    history = _history(path, info)
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


def _read(path):
    """The checkpoint's config.json as a dict, its train section and train_state checked
    against their schema (CheckpointError naming the file when unreadable or unfit)."""
    from engine.training import checkpoint
    from engine.training.config import TrainConfig
    from engine.training.validate import ConfigError, check_train_state
    file = os.path.join(path, checkpoint.CONFIG_FILE)
    info = checkpoint.read_description(file)
    try:  # the train section with its defaults filled in, as a run would read it
        info["config"]["train"] = TrainConfig.from_dict(info["config"]["train"]).to_dict()
        check_train_state(info["train_state"], info["format"])
    except (ConfigError, KeyError, TypeError, AttributeError) as e:
        raise checkpoint.CheckpointError(f"checkpoint file '{file}' is unreadable: "
                                         f"{type(e).__name__}: {e}") from None
    return info


def run_history(path):
    """The history of the run in `path` (its checkpoint description read and checked)."""
    return _history(path, _read(path))


def _history(path, info):
    """The run's history (engine.training.metrics): from metrics.jsonl, the part its
    checkpoint covers, or from config.json for a format-1 checkpoint."""
    from engine.training import metrics
    state = info["train_state"]
    if "history" in state:
        metrics.check_history(os.path.join(path, "config.json"), state["history"])
        return state["history"]
    saved = state["metrics"]
    rows = metrics.read_rows(os.path.join(path, saved["file"]), saved["bytes"], saved["rows"])
    return metrics.history_from_rows(rows, state["step"])


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
    info = _read(path)
    history = _history(path, info)
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
