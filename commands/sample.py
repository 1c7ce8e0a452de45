"""`attn sample`: generate from a trained checkpoint: held-out problems or a prompt of a
task, text from a character model, the classes of images, with --attention what the model
read."""

from commands import CliError
from commands.args import non_negative_float, non_negative_int, path_arg, positive_int
from commands.run_lookup import ModelFamilies, newest_checkpoint

MAX_TOKENS = 100_000  # the most tokens one `attn sample` decodes (a bound, not a target)


def check_sample_args(args, model, data):
    """CliError naming the first flag of `args` that does not fit `model` and its `data`."""
    from engine.data import GlyphImages, ImageFiles, PairsDataset, SyntheticTask
    images = isinstance(data, GlyphImages | ImageFiles)
    task = isinstance(data, SyntheticTask | PairsDataset)  # an answer to a source
    if images and args.prompt is not None:
        raise CliError("--prompt applies to token models; this checkpoint holds an image "
                       "model: pass --image FILE to classify one")
    if images and args.tokens is not None:
        raise CliError("--tokens applies to token models; this checkpoint holds an image "
                       "model, which predicts one class per image")
    if args.attention and not (images or task):
        raise CliError("--attention shows what a task's answer or an image model attended "
                       "to; this checkpoint holds a text model")
    if args.tokens is not None:
        limit = min(MAX_TOKENS, getattr(model.config, "max_tgt_len", MAX_TOKENS))
        if args.tokens > limit:
            why = ("its decoder's max_tgt_len" if limit < MAX_TOKENS else
                   "the most `attn sample` decodes")
            raise CliError(f"--tokens {args.tokens} is more than {limit:,} ({why})")


def add_args(p):
    p.add_argument("--ckpt", metavar="DIR", type=path_arg,
                   help="checkpoint directory (default: the newest run of --task)")
    p.add_argument("--task", metavar="NAME",
                   help="without --ckpt, sample the newest run under runs/ of this task (or "
                        "text file name) (default: the model family's task: reverse; glyphs "
                        "for --model vit)")
    p.add_argument("--model", choices=ModelFamilies(),
                   help="without --ckpt, the newest run of this model family on --task "
                        "(default: the task's usual one, gpt; vit for glyphs)")
    p.add_argument("--prompt", metavar="TEXT",
                   help="text to continue; for tasks the problem, e.g. 31415 or "
                        "123+456 (default: held-out problems, or a newline for text)")
    p.add_argument("--temperature", type=non_negative_float, metavar="T",
                   help="sampling temperature, 0 = greedy (default 1.0; tasks: greedy)")
    p.add_argument("--top-k", type=positive_int, metavar="K",
                   help="sample among the k likeliest tokens")
    p.add_argument("--tokens", "--max-new-tokens", dest="tokens", type=positive_int,
                   metavar="N",
                   help="tokens to generate (default: the answer length, or 200 for text)")
    p.add_argument("--greedy", action="store_true", help="always take the likeliest token")
    p.add_argument("--num", type=positive_int, metavar="N",
                   help="samples (default 5 problems / 1 text)")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                   help="sampling seed (default 0)")
    p.add_argument("--attention", action="store_true",
                   help="also draw what each answer token attended to in the input (tasks), or "
                        "the class token's attention over the patches (images)")
    p.add_argument("--image", metavar="FILE",
                   help="an image model: classify this .npy or PGM file (default: held-out "
                        "images)")
    p.epilog = """examples:
  attn sample                                # five held-out problems, newest runs/reverse
  attn sample --prompt 31415926 --attention  # one problem, and what the answer read
  attn sample --ckpt runs/book --prompt "The " --tokens 300 --temperature 0.8"""


def _sampling(args, is_task):
    """generate() keyword arguments; tasks decode greedily unless a temperature is given."""
    greedy = args.greedy or args.temperature == 0 or (is_task and args.temperature is None)
    temperature = 1.0 if args.temperature is None else args.temperature
    return {"greedy": greedy, "temperature": temperature, "top_k": args.top_k}


def _sample_task(args, model, task, rng):
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from engine.data import END
    from engine.models.generate import generate
    if args.prompt is not None:
        inputs = [task.parse_prompt(args.prompt)]
    else:
        inputs = task.held_out(args.num or 5)
    maps = []
    title = f"task {task.name}" + (": sums are written least significant digit first"
                                   if task.name == "add" else "")
    table = Table("prompt", "model", "expected", "", title=title)
    for inp in inputs:
        prompt, want = task.prompt(inp), np.append(task.answer(inp), END)
        out = generate(model, prompt[None, :], args.tokens or len(want), rng=rng,
                       stop_token=END, **_sampling(args, True))[0, len(prompt):]
        ends = np.flatnonzero(out == END)
        out = out[:ends[0] + 1] if len(ends) else out
        ok = len(out) == len(want) and bool(np.all(out == want))
        table.add_row(task.vocab.decode(inp) + "=", task.vocab.decode(out),
                      task.vocab.decode(want), "[green]ok[/]" if ok else "[red]wrong[/]")
        if args.attention:
            maps.append(_attention_text(model, task, prompt, out))
    Console().print(table)
    for text in maps:
        print(text)


def _attention_text(model, task, prompt, out):
    """The answer -> input attention of one decoded problem: the most focused head's map
    as a text heatmap (shade 0 to 1), and every other head's focus in one line."""
    import numpy as np

    from engine import viz
    width = task.input_width
    tokens = np.concatenate([prompt, out])
    ranked = viz.alignments(model, tokens, width)  # per head, the most focused first
    label, w, sharp = ranked[0]
    w = w[:len(out)]  # (answer tokens, input field)
    cols = [task.vocab.decode([t]) for t in prompt[:width]]
    rows = [task.vocab.decode([t]) for t in out]  # a sampled spare output id shows as ?
    others = "; then " + ", ".join(f"{name} {f:.2f}" for name, _, f in ranked[1:8]) if len(
        ranked) > 1 else ""
    title = (f"\n{task.vocab.decode(prompt)} -> {task.vocab.decode(out)}: {label}, the most "
             f"focused of {len(ranked)} head(s) (focus {sharp:.2f}, the mean of each row's "
             f"largest weight{others})\nshades 0 to 1: what each answer token attended to")
    return viz.heatmap(w, rows, cols, title=title, vmax=1.0)


def _sample_text(args, model, vocab, rng):
    from rich.console import Console
    from rich.text import Text

    from engine.models.generate import generate
    prompt = args.prompt if args.prompt is not None else (
        "\n" if "\n" in vocab.stoi else vocab.itos[0])
    if not prompt:
        raise CliError("--prompt must not be empty")
    idx = vocab.encode(prompt)[None, :]
    console = Console()
    for i in range(args.num or 1):
        out = generate(model, idx, args.tokens or 200, rng=rng, **_sampling(args, False))
        if i:
            console.rule()
        console.print(Text(prompt, style="bold") + Text(vocab.decode(out[0, idx.shape[1]:])))


def _sample_images(args, model, data):
    from rich.console import Console
    from rich.table import Table

    from engine import viz
    from engine.data import load_image
    from engine.data.images import classify
    if args.image is not None:
        images, labels = load_image(args.image, data.image_size)[None], [None]
    else:
        images, labels = data.held_out(args.num or 5)
    preds = classify(model, images)
    grid = model.config.image_size // model.config.patch_size
    maps = model.attention_maps(images) if args.attention else None
    console = Console()
    table = Table("image", "prediction", "label", "", title="glyphs")
    for i, (pred, label) in enumerate(zip(preds, labels)):
        ok = "" if label is None else ("[green]ok[/]" if pred == label else "[red]wrong[/]")
        table.add_row(viz.image(images[i]), data.classes[pred],
                      "-" if label is None else data.classes[label], ok)
        if maps is not None:
            table.add_row("class token attention, last layer\n" +
                          viz.patch_grid(maps["cls"][i], grid), "", "", "")
    console.print(table)


def run(args):
    import numpy as np

    from commands import userdata
    from engine.data import GlyphImages, ImageFiles, PairsDataset, SyntheticTask
    from engine.training import load_model
    from engine.training.validate import check_examples_memory
    model, data = load_model(newest_checkpoint(args))
    check_sample_args(args, model, data)
    rng = np.random.default_rng(args.seed)
    if isinstance(data, ImageFiles | PairsDataset):
        return userdata.sample(args, model, data)
    if args.image is not None and not isinstance(data, GlyphImages):
        raise CliError(f"--image needs an image model; the checkpoint holds a "
                       f"{type(model).__name__} trained on {data.describe().get('kind')} data")
    if isinstance(data, GlyphImages):
        _sample_images(args, model, data)
    elif isinstance(data, SyntheticTask):
        check_examples_memory("--num", args.num or 5, data)
        _sample_task(args, model, data, rng)
    else:
        _sample_text(args, model, data, rng)
    return 0
