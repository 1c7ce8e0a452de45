"""Progress display of a training run: a rich progress bar and one line per evaluation."""

import sys

_WORDED = {"step", "val_loss", "exact_match", "exact_match_n", "bigram_baseline", "accuracy",
           "accuracy_n", "linear_baseline"}  # said in words


def describe_eval(result):
    """One line: "step 300  val loss 0.412  exact match 87.0% (200 held out)"; metrics of
    other datasets than tasks and text show as "name value"."""
    text = f"step {result['step']:>6}  val loss {result['val_loss']:.4f}"
    if "exact_match" in result:
        text += (f"  exact match {100 * result['exact_match']:.1f}% "
                 f"({result['exact_match_n']} held out)")
    if "accuracy" in result:
        text += (f"  accuracy {100 * result['accuracy']:.1f}% "
                 f"({result['accuracy_n']} held out)")
    if "linear_baseline" in result:
        text += f"  (logistic regression on the pixels {100 * result['linear_baseline']:.1f}%)"
    if "bigram_baseline" in result:
        text += f"  (bigram baseline {result['bigram_baseline']:.4f})"
    for name, value in result.items():
        if name not in _WORDED:
            value = f"{value:.4g}" if isinstance(value, float) else value
            text += f"  {name.replace('_', ' ')} {value}"
    return text


def training_bar(console, total, completed=0, unit=None):
    """The rich progress bar of a training run (not started), its one task added: steps done
    of `total`, the loss, with a `unit` the units per second ("tok/s"), elapsed time and
    ETA. Its task's fields: loss, and tok_s with a unit (strings, "-" until known)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    columns = [TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}")]
    fields = {"loss": "-"}
    if unit is not None:
        columns.append(TextColumn("{task.fields[tok_s]} " + unit + "/s"))
        fields["tok_s"] = "-"
    columns += [TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    progress = Progress(*columns, console=console)
    progress.add_task("train", total=total, completed=completed, **fields)
    return progress


class Reporter:
    """What a run prints, by `mode`: True, a rich progress bar (loss, tokens/s, ETA) and a line
    per evaluation; "quiet", only what a script reads: the final result line and the
    checkpoint directory (plain text); False, nothing. Warnings go to stderr in every mode."""

    def __init__(self, cfg, run, mode):
        self.cfg, self.run = cfg, run
        self.enabled, self.quiet = mode is True, mode == "quiet"
        self.loss = self.tok_s = None  # exponential moving averages

    def __enter__(self):
        if not self.enabled:
            return self
        from rich.console import Console
        self.console = Console()
        self.console.print(_header(self.cfg, self.run))
        self.progress = training_bar(self.console, self.cfg.steps, self.run.step,
                                     unit=getattr(self.run.data, "unit", "tok"))
        self.progress.start()
        self.task = self.progress.task_ids[0]
        return self

    def step(self, step, loss, tok_s):
        self.loss = loss if self.loss is None else 0.9 * self.loss + 0.1 * loss
        self.tok_s = tok_s if self.tok_s is None else 0.9 * self.tok_s + 0.1 * tok_s
        if self.enabled:
            self.progress.update(self.task, completed=step, loss=f"{self.loss:.4f}",
                                 tok_s=f"{self.tok_s:,.0f}")

    def evaluation(self, result, final=False):
        if self.quiet and final:
            print("final " + describe_eval(result), flush=True)
        if self.enabled:
            prefix = "[bold green]final[/] " if final else "      "
            self.console.print(prefix + describe_eval(result))

    def warning(self, message):
        """One line on stderr, shown even without a progress bar."""
        if self.enabled:
            self.progress.console.file.flush()
        sys.stderr.write(f"warning: {message}\n")
        sys.stderr.flush()

    def interrupted(self, step):
        if not (self.enabled or self.quiet):
            return
        where = (f"checkpoint saved in {self.cfg.out_dir}; continue with --resume --out "
                 f"{self.cfg.out_dir}"
                 if self.cfg.out_dir else "no checkpoint directory, nothing saved")
        if self.quiet:
            print(f"interrupted at step {step}: {where}", flush=True)
            return
        self.progress.stop()  # the bar first, then the message under it
        self.console.print(f"[yellow]interrupted at step {step}:[/] {where}")

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.stop()
        if exc[0] is None and self.cfg.out_dir and (self.enabled or self.quiet):
            (self.console.print if self.enabled else print)(f"checkpoint: {self.cfg.out_dir}")


def _header(cfg, run):
    what = (f"pairs {cfg.pairs}" if getattr(cfg, "pairs", None) else
            f"images {cfg.images}" if getattr(cfg, "images", None) else
            f"text {cfg.text}" if cfg.text else f"task {cfg.task}")
    steps = f"steps {run.step}->{cfg.steps}" if run.step else f"{cfg.steps} steps"
    where = "" if cfg.device == "cpu" else f" on {cfg.device}"
    return (f"{type(run.model).__name__} {cfg.config} ({run.model.num_parameters():,} params)"
            f"{where} on {what}: {steps}, batch {cfg.batch_size}, lr {cfg.lr:g}, "
            f"seed {cfg.seed}")
