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
    base = run_base(args.task, args.model)
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
