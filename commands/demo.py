"""`attn demo`: type an input, see a trained model's output and every attention map, per
layer and head, as terminal heatmaps with the tokens on both axes (rows: the position that
reads; columns: what it reads), for every model family.

A view is one attention map of the model: a name ("layer.0", "decoder.0.cross", ...), its
heads (H, R, C), and the row and column labels. The interactive prompt switches between
them: `l N` layer, `h N` head, `n`/`p` next/previous head, `a` all heads, `q` quit;
anything else is a new input. --input runs once (scriptable), --json prints machine output.
"""

from dataclasses import dataclass

import numpy as np

from commands import CliError, plots
from commands.args import positive_int
from commands.terminal import read_command

HELP = "commands: l N (layer), h N (head), n / p (next / previous head), a (all heads), " \
       "s (how the attention formed in training), q (quit), or the arrow keys (up/down: " \
       "layer, left/right: head); anything else is a new input"
ARROW_COMMANDS = {"up": "l {up}", "down": "l {down}", "left": "p", "right": "n"}
EXAMPLE = """examples:
  attn demo                                  # the newest runs/reverse, interactive
  attn demo --input 31415926                 # one input, every map, then exit
  attn demo --ckpt runs/reverse-seq2seq-gru --input 31415926 --json
  attn demo --ckpt runs/glyphs --input my.pgm   # a ViT: an image file (.npy or PGM)
  attn demo --input 31415926 --layer 1 --plot heads.png   # layer 1's heads as a figure

""" + HELP


@dataclass
class View:
    name: str
    heads: np.ndarray  # (H, R, C) attention weights
    rows: list  # R labels: the query positions' tokens
    cols: list  # C labels: the key positions' tokens


def add_args(p):
    p.add_argument("--ckpt", metavar="DIR",
                   help="checkpoint directory (default: the newest run of --task)")
    p.add_argument("--task", default="reverse", metavar="NAME",
                   help="without --ckpt, the newest run of this task (default reverse)")
    from commands.run_lookup import ModelFamilies
    p.add_argument("--model", choices=ModelFamilies(),
                   help="without --ckpt, the newest run of this model family on --task")
    p.add_argument("--input", metavar="TEXT",
                   help="run once on this input (a problem such as 31415926, or an image "
                        "file for a ViT) and exit")
    p.add_argument("--json", action="store_true",
                   help="with --input: print the output and every map as JSON")
    p.add_argument("--steps", "--train-steps", dest="steps", type=positive_int, metavar="N",
                   help="when there is no run of --task yet and the demo trains one: its "
                        "steps (default: the model family's, 600 for the GPT, about a "
                        "minute)")
    p.add_argument("--no-train", action="store_true",
                   help="with no run of --task yet: fail instead of training one")
    p.add_argument("--layer", type=int, metavar="L",
                   help="show only this layer's maps (0-based; an encoder-decoder's layers "
                        "are its encoder blocks, then each decoder block's self and cross "
                        "attention)")
    p.add_argument("--head", type=int, metavar="H", help="show only this head")
    p.add_argument("--plot", metavar="PATH",
                   help="also save the current layer's attention maps, every head, as a PNG "
                        "(needs matplotlib: pip install 'attn-engine[plots]'); interactive: "
                        "rewritten at each input and move")
    p.epilog = EXAMPLE


def run(args):
    from engine.training import load_model
    if args.json and args.input is None:
        raise CliError("--json needs --input (the interactive prompt is for people)")
    plots.check(args.plot)
    if args.input is None:  # interactive: see commands.terminal.read_line for why
        import signal
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    # training says what it does on stderr when stdout is for JSON
    args.ckpt_dir = _checkpoint(args, _console(stderr=args.json))
    model, data = load_model(args.ckpt_dir)
    if args.input is not None:
        result = analyse(model, data, args.input)
        if args.json:
            import json
            print(json.dumps(to_json(result)))
        else:
            show(result, _console(), layer=args.layer, head=args.head, every=True)
        if args.plot is not None:
            layer = _check(args.layer or 0, len(result["views"]), "layer")
            plot(result, layer, args.plot)
            _console(stderr=args.json).print(f"figure of layer {layer}: {args.plot}")
        return 0
    return interact(model, data, args)


def _checkpoint(args, console):
    """--ckpt, the newest run of --task, or (when there is none, unless --no-train) the
    default run of the task trained now, in the background with a progress bar."""
    from commands.run_lookup import newest_checkpoint, run_base
    from engine.training import rundir
    if args.ckpt is not None or args.no_train or rundir.newest(run_base(args.task, args.model)):
        return newest_checkpoint(args)
    from commands.background import train_in_background
    from commands.train import apply_steps_cap
    from engine.data import IMAGE_TASKS, TASKS
    from engine.training import TrainConfig
    if args.task not in TASKS + IMAGE_TASKS:
        raise CliError(f"no run of {args.task!r} under runs/, and the demo trains only a task "
                       f"({', '.join(TASKS + IMAGE_TASKS)}); pass --ckpt")
    model = args.model or ("vit" if args.task in IMAGE_TASKS else "gpt")
    out = rundir.fresh(run_base(args.task, args.model))
    cfg = apply_steps_cap(TrainConfig(task=args.task, model=model, steps=args.steps,
                                      out_dir=out))
    console.print(f"no run of {args.task} yet: training the default one into {out} (as attn "
                  f"train would; Ctrl-C stops it and keeps nothing)")
    from commands.info import first_compile_note
    note = first_compile_note()
    if note:
        console.print(note)
    train_in_background(cfg, console)
    console.print(f"saved in {out}")
    return out


def analyse(model, data, text):
    """{"input", "output", "expected", "ok", "views", "image", "note"} for one input."""
    from engine.data import GlyphImages, SyntheticTask
    if isinstance(data, GlyphImages):
        return _analyse_image(model, data, text)
    if not isinstance(data, SyntheticTask):
        raise CliError("attn demo shows task models (reverse, add, ...) and image models; "
                       "for a text model use attn sample --prompt")
    return _analyse_task(model, data, text)


def _analyse_task(model, task, text):
    from engine.data import END
    from engine.models import attention_maps
    from engine.models.generate import generate
    inp = task.parse_prompt(text)  # a DataError (one line) when it is not a problem
    prompt, want = task.prompt(inp), np.append(task.answer(inp), END)
    out = generate(model, prompt[None, :], len(want), greedy=True)[0, len(prompt):]
    ends = np.flatnonzero(out == END)
    out = out[:ends[0] + 1] if len(ends) else out
    tokens = np.concatenate([prompt, out])
    labels = list(task.vocab.decode(tokens))  # one character per token; ? past the vocabulary
    width = task.input_width
    views = [View(name, m[0] if m.ndim == 4 else m[0][None], *_labels(name, labels, width))
             for name, m in attention_maps(model, tokens[None, :]).items()]  # heads (H, R, C)
    ok = len(out) == len(want) and bool(np.all(out == want))
    result = {"input": text, "output": task.vocab.decode(out), "ok": ok,
              "expected": task.vocab.decode(want), "views": views, "image": None}
    mirror = _mirror_head(views, task, len(inp)) if task.name == "reverse" else None
    result["note"] = _mirror_note(mirror)
    result["start"] = _start(views, mirror)
    result["warning"] = _length_warning(task, len(inp))
    return result


def _length_warning(task, length):
    """A line when the input's length is outside what the model was trained on."""
    if task.name == "add" or task.min_len <= length <= task.max_len:
        return None
    return (f"the model was trained on inputs of {task.min_len} to {task.max_len} digits; "
            f"this one has {length}, so expect mistakes (models rarely generalise past "
            f"the lengths they saw)")


def _start(views, mirror):
    """(view, head) to open on: the mirror head the note names, else the most focused."""
    from engine import viz
    if mirror is not None and mirror[0] >= 0.5:
        names = [v.name for v in views]
        return names.index(mirror[1]), mirror[2]
    ranked = [(viz.focus(a), i, h) for i, v in enumerate(views) for h, a in enumerate(v.heads)]
    _, i, h = max(ranked) if ranked else (0, 0, 0)
    return i, h


def _labels(name, labels, width):
    """(row labels, column labels) of a map: the GPT reads the whole row; an encoder the
    source (the input field); a decoder starts at '=' and reads itself or the source."""
    source, target = labels[:width], labels[width:]
    if name.startswith("layer."):
        return labels, labels
    if name.startswith("encoder."):
        return source, source
    return target, (target if name.endswith(".self") else source)


def _mirror_head(views, task, length):
    """For reverse: (score, view name, head) of the head that puts the most weight on the
    mirrored input position, or None."""
    width, best = task.input_width, (0.0, None, None)
    for v in views:
        if v.heads.shape[2] < width:
            continue
        offset = width if v.name.startswith("layer.") else 0  # GPT rows: the whole sequence
        if v.name.startswith("encoder.") or offset + length > v.heads.shape[1]:
            continue
        for h, a in enumerate(v.heads):
            score = float(np.mean([a[offset + t, width - 1 - t] for t in range(length)]))
            best = max(best, (score, v.name, h), key=lambda b: b[0])
    return None if best[1] is None else best


def _mirror_note(best):
    if best is None:
        return None
    if best[0] < 0.5:
        return (f"no head attends to the mirrored input position yet (the closest: {best[1]} "
                f"head {best[2]}, {best[0]:.0%} of its weight on average)")
    return (f"{best[1]} head {best[2]} attends to the mirrored input position: "
            f"{best[0]:.0%} of its weight on average")


def _analyse_image(model, data, path):
    from engine.data import load_image
    from engine.data.images import classify
    from engine.models import attention_maps
    image = load_image(path, data.image_size)  # a DataError names what is wrong
    pred = int(classify(model, image[None])[0])
    maps = attention_maps(model, image[None])
    grid = model.config.image_size // model.config.patch_size
    labels = ["c"] + [str(i) for i in range(grid * grid)]  # class token, then the patches
    views = [View(n, m[0], labels, labels) for n, m in maps.items() if n.startswith("layer.")]
    note = "rows/columns: c = the class token, 0.. = patches row by row"
    return {"input": path, "output": data.classes[pred], "expected": None, "ok": None,
            "views": views, "image": image, "cls": maps["cls"][0], "grid": grid,
            "note": note, "warning": None, "start": _start(views, None)}


def to_json(result):
    return {"input": result["input"], "output": result["output"],
            "expected": result["expected"], "ok": result["ok"], "note": result["note"],
            "warning": result.get("warning"),
            "maps": {v.name: {"rows": v.rows, "cols": v.cols,
                              "heads": np.round(v.heads.astype(np.float64), 4).tolist()}
                     for v in result["views"]}}


def _console(stderr=False):
    from rich.console import Console
    return Console(highlight=False, stderr=stderr)


def show(result, console, layer=None, head=None, every=False, header=True):
    """Print the output line (with `header`) and the chosen maps (every map when `every`)."""
    from engine import viz
    if header:
        _header(result, console)
    from rich.columns import Columns
    views = result["views"]
    chosen = range(len(views)) if layer is None else [_check(layer, len(views), "layer")]
    for i in chosen:
        v = views[i]
        heads = range(len(v.heads)) if head is None else [_check(head, len(v.heads), "head")]
        if not every and head is None:
            heads = heads[:1]
        console.print(f"\nlayer {i} of {len(views)} ({v.name}): each row is a position, its "
                      f"shades what it attends to (one scale, 0 to 1: {_legend()})")
        blocks = [_coloured(v.heads[h], v.rows, v.cols, f"head {h} of {len(v.heads)} (focus "
                            f"{viz.focus(v.heads[h]):.2f})") for h in heads]
        console.print(Columns(blocks, padding=(0, 3)))  # side by side when they fit


RAMP = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")  # viridis, one per shade


def _legend():
    from engine import viz
    return " ".join(f"{viz.SHADES[k]}{k / (len(viz.SHADES) - 1):.2g}"
                    for k in range(1, len(viz.SHADES)))


def _coloured(a, rows, cols, title):
    """One head as rich Text: engine.viz.heatmap's shade characters on the scale 0..1, each
    cell also coloured on a viridis ramp (a terminal without colour keeps the shades)."""
    from rich.text import Text

    from engine import viz
    plain = viz.heatmap(a, rows, cols, title=title, vmax=1.0).split("\n")
    pad, head = max((len(str(r)) for r in rows), default=0), len(plain) - len(rows)
    text = Text("\n".join(plain[:head]) + "\n")
    for r, line in enumerate(plain[head:]):
        text.append(line[:pad + 1])
        for c in range(a.shape[1]):
            k = viz.SHADES.index(line[pad + 1 + 2 * c])
            text.append(line[pad + 1 + 2 * c:pad + 3 + 2 * c], style=RAMP[k] if k else "")
        text.append("\n" if r < len(rows) - 1 else "")
    return text


def plot(result, layer, path):
    """Save every head of view `layer` of `result` as a figure (engine.viz.heads_figure)."""
    from functools import partial

    from engine import viz
    v = result["views"][layer]
    title = (f"{result['input']} -> {result['output']}: layer {layer} of "
             f"{len(result['views'])} ({v.name}); rows attend to columns")
    plots.save(partial(viz.heads_figure, v.heads, v.rows, v.cols, title=title), path)


def _header(result, console):
    from engine import viz
    verdict = "" if result["ok"] is None else (
        " [green]ok[/]" if result["ok"] else f" [red]expected {result['expected']}[/]")
    console.print(f"[bold]{result['input']}[/] -> [bold]{result['output']}[/]{verdict}")
    if result["image"] is not None:
        console.print(viz.image(result["image"]), markup=False)
        console.print("class token -> patches, last layer:")
        console.print(viz.patch_grid(result["cls"], result["grid"]), markup=False)
    if result["note"]:
        console.print(f"[cyan]{result['note']}[/]")
    if result.get("warning"):
        console.print(f"[yellow]warning: {result['warning']}[/]")


def _check(index, count, what):
    if not 0 <= index < count:
        raise CliError(f"--{what} {index}: this model has {what}s 0 to {count - 1}")
    return index


def interact(model, data, args):
    """The prompt loop: an input, then commands to move between layers and heads."""
    console = _console()
    console.print(f"attn demo: {type(model).__name__} trained on {data.describe()['name']}; "
                  f"type an input\n{HELP}")
    result, layer, head = None, args.layer or 0, args.head or 0
    while True:
        try:
            line = read_command("input> " if result is None else "> ").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return 0
        if line in ("q", "quit", "exit"):
            return 0
        if line == "s":
            _snapshots(args.ckpt_dir, console)
            continue
        header = False
        if line in ARROW_COMMANDS:  # up/down: the layer before/after, left/right: head
            last = 0 if result is None else len(result["views"]) - 1
            line = "" if result is None else ARROW_COMMANDS[line].format(
                up=max(0, layer - 1), down=min(last, layer + 1))  # arrows stop at the ends
        if result is not None and _is_command(line):
            try:
                layer, head, every = _move(line, layer, head, result["views"], console)
            except CliError as e:  # out of range: said in one line, the view stays
                console.print(f"[red]{e}[/]")
                continue
        elif line:
            try:
                result, every, header = analyse(model, data, line), False, True
                layer, head = result["start"]
                if args.layer is not None or args.head is not None:
                    layer, head = args.layer or 0, args.head or 0
            except Exception as e:  # noqa: BLE001  (a bad input: say so, keep the prompt)
                console.print(f"[red]{e}[/]")
                continue
        if result is None:
            continue
        try:
            show(result, console, layer=layer, head=None if every else head, every=every,
                 header=header)
            if args.plot is not None:
                plot(result, layer, args.plot)
                console.print(f"figure of layer {layer}: {args.plot}")
        except CliError as e:
            console.print(f"[red]{e}[/]")


def _check_move(index, count, what):
    if not 0 <= index < count:
        raise CliError(f"{what} {index}: there are {what}s 0 to {count - 1}")
    return index


def _snapshots(path, console):
    """The run's attention snapshots beside its loss (as attn runs RUN --attention)."""
    from commands import attention_replay
    from commands.run_lookup import run_history
    try:
        attention_replay.replay(path, run_history(path), console)
    except CliError as e:
        console.print(f"[red]{e}[/]")


def _is_command(line):
    word = line.split()[0] if line else ""
    return word in ("l", "h", "n", "p", "a")


def _move(line, layer, head, views, console):
    """The (layer, head, all heads?) a navigation command asks for; CliError (one line)
    for a layer or head the model does not have (arrow keys stop at the ends instead)."""
    word, *rest = line.split()
    number = int(rest[0]) if rest and rest[0].lstrip("-").isdigit() else None
    heads = len(views[layer].heads)
    if word == "l" and number is not None:
        layer, head = _check_move(number, len(views), "layer"), 0
    elif word == "h" and number is not None:
        head = _check_move(number, heads, "head")
    elif word in ("n", "p"):
        flat = [(i, h) for i, v in enumerate(views) for h in range(len(v.heads))]
        k = (flat.index((layer, head)) + (1 if word == "n" else -1)) % len(flat)
        layer, head = flat[k]
    elif word != "a":
        console.print(f"[yellow]{HELP}[/]")
    return layer, head, word == "a"
