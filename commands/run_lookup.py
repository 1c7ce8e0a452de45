"""Finding runs: runs/<task>[-<model>] directories, the newest checkpoint of a task, the
--model choices, and a run's checked description and history; shared by `attn train`,
`attn sample`, `attn demo`, `attn graph` and `attn runs`."""

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


def read_run(path):
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
    return history_of(path, read_run(path))


def history_of(path, info):
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
