"""attn sample for models trained on a user's own data: pairs files (translate a source, or
held-out lines) and image sets (classify a file, or held-out images), with --attention."""

import numpy as np

from commands import CliError


def sample(args, model, data):
    """Print the model's answers for args (--prompt / --image / --num, --attention)."""
    from engine.data import ImageFiles
    if isinstance(data, ImageFiles):
        if args.prompt is not None:
            raise CliError("--prompt needs a sequence model; this checkpoint classifies images "
                           "(use --image FILE)")
        _images(args, model, data)
    else:
        if args.image is not None:
            raise CliError("--image needs an image model; this checkpoint was trained on the "
                           f"pairs file '{data.path}' (use --prompt TEXT)")
        _pairs(args, model, data)
    return 0


def _with_files(data):
    """The dataset read from its files again, for held-out examples (sampling loads only
    what the checkpoint stores); one line when they are gone or changed."""
    import os

    from engine.data import dataset_from_description
    if not os.path.exists(data.path):
        raise CliError(f"'{data.path}' is gone, so there are no held-out examples to show: "
                       f"give {'--image FILE' if hasattr(data, 'classes') else '--prompt TEXT'}")
    full = dataset_from_description(data.describe(), need_text=True)
    if getattr(full, "classes", None) != getattr(data, "classes", None):
        raise CliError(f"'{data.path}' changed: its classes are not the checkpoint's")
    return full


def _pairs(args, model, data):
    from rich.console import Console
    from rich.table import Table
    if args.prompt is not None:
        examples = [(data.parse_prompt(args.prompt), None)]
    else:
        examples = _with_files(data).held_out(args.num or 5)
    answers = data.translate(model, [s for s, _ in examples])
    table = Table("source", "model", "expected", "", title=f"pairs {data.name}")
    maps = []
    for (source, target), answer in zip(examples, answers):
        ok = "" if target is None else (
            "[green]ok[/]" if np.array_equal(answer, target) else "[red]wrong[/]")
        table.add_row(data.decode(source), data.decode(answer),
                      "-" if target is None else data.decode(target), ok)
        if args.attention:
            maps.append(_alignment_text(model, data, source, answer))
    Console().print(table)
    for text in maps:
        print(text)


def _alignment_text(model, data, source, answer):
    """What each answer character attended to in the source, as a text heatmap."""
    from engine import viz
    from engine.data.pairs import END
    prompt = data.prompt(source)
    tokens = np.concatenate([prompt, answer, [END]])
    width = data.input_width
    w = viz.alignment(model, tokens, width)[:len(answer) + 1, width - len(source):width]
    rows = [data.vocab.itos[t] for t in answer] + ["<end>"]
    cols = list(data.decode(source))
    return viz.heatmap(w, rows, cols, title=f"\n{data.decode(source)} -> "
                       f"{data.decode(answer)}: what each answer character attended to")


def _images(args, model, data):
    from rich.console import Console
    from rich.table import Table

    from engine import viz
    from engine.data.images import classify
    if args.image is not None:
        images, labels, names = data.load(args.image), [None], [args.image]
    else:
        images, labels = _with_files(data).held_out(args.num or 5)
        names = [f"held out {i}" for i in range(len(labels))]
    preds = classify(model, images)
    if args.image is not None and not args.attention:
        print(f"{args.image}: {data.classes[preds[0]]}")
        return
    maps = model.attention_maps(images) if args.attention else None
    grid = model.config.image_size // model.config.patch_size
    table = Table("image", "prediction", "label", "", title=f"images {data.name}")
    for i, (pred, label) in enumerate(zip(preds, labels)):
        ok = "" if label is None else ("[green]ok[/]" if pred == label else "[red]wrong[/]")
        table.add_row(names[i], data.classes[pred],
                      "-" if label is None else data.classes[label], ok)
        if maps is not None:
            table.add_row("class token attention, last layer\n" +
                          viz.patch_grid(maps["cls"][i], grid), "", "", "")
    Console().print(table)
