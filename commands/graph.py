"""`attn graph EXPR`: the symbolic view of an expression (or a model's loss): the graph it
builds, one line per op with the op's derivative formula, or Graphviz DOT."""

from commands import CliError

EXAMPLE = """examples:
  attn graph "softmax(x @ w, axis=-1)" --shape x=4,8 --shape w=8,3
  attn graph "sum(tanh(x @ w + b) ** 2)" --shape x=2,3 --shape w=3,4 --shape b=4 --dot
  attn graph --model gpt            # the tiny GPT's training loss
  attn graph --model vit --no-formulas   # any model family: seq2seq-gru, ... (--help)

EXPR may use the input names given with --shape, numbers, + - * / ** @, unary -, and
engine functions called by bare name with keyword arguments (tanh, softmax, matmul, sum,
layer_norm, scaled_dot_product_attention, ...; an unknown name lists them all). Attribute
access, subscripts, lambdas, comprehensions and any other name are refused."""


def add_args(p):
    p.add_argument("expr", nargs="?", metavar="EXPR", help="the expression, e.g. 'tanh(x @ w)'")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=D1,D2",
                   help="an input tensor and its shape (float32 standard normals, requiring "
                        "grad); repeat for each input")
    p.add_argument("--dot", action="store_true", help="print Graphviz DOT instead of the tree")
    from commands.run_lookup import ModelFamilies
    p.add_argument("--model", choices=ModelFamilies(), metavar="NAME",
                   help="show the graph of this model family's training loss instead of "
                        "EXPR (its tiny size on a batch of 2): gpt, seq2seq-gru, "
                        "seq2seq-transformer, vit")
    p.add_argument("--no-formulas", action="store_true", help="leave out the derivatives")
    p.add_argument("--unfold", action="store_true",
                   help="print every block of a stack in full (by default a block that "
                        "repeats an earlier one with other parameters is one line)")
    p.epilog = EXAMPLE


def run(args):
    from engine.graph import count_ops, render_tree, to_dot
    if (args.expr is None) == (args.model is None):
        raise CliError("give an EXPR or --model NAME (not both); see attn graph --help")
    root, what, names = _model_loss(args) if args.model else _expression(args)
    if args.dot:
        print(to_dot(root, names=names))
        return 0
    from rich.console import Console
    console = Console(highlight=False)
    console.print(f"[bold]{what}[/]: {tuple(root.shape)} {root.dtype}; ops "
                  + ", ".join(f"{name} x{n}" for name, n in count_ops(root).items()))
    console.print(render_tree(root, formulas=not args.no_formulas, names=names,
                              fold=not args.unfold), markup=False, soft_wrap=True)
    return 0


def _expression(args):
    from commands.exprgraph import ExprError, evaluate, inputs_for, parse_shape
    from engine.graph import names_of
    from engine.tensor import Tensor
    if args.model is None and args.shape == [] and not args.expr.strip():
        raise CliError("EXPR is empty")
    try:
        shapes = dict(parse_shape(s) for s in args.shape)
        inputs = inputs_for(shapes)
        value = evaluate(args.expr, inputs)
    except ExprError as e:
        raise CliError(str(e)) from None
    except (ValueError, TypeError, ArithmeticError) as e:  # the engine refused the call
        # (shapes, arguments), or plain numbers did: 1/0, 0 ** -1, 10.0 ** 400
        raise CliError(f"{args.expr}: {e}") from None
    if not isinstance(value, Tensor):
        raise CliError(f"{args.expr!r} is the number {value!r}, not a tensor: use an input "
                       f"given with --shape")
    return value, args.expr, names_of(None, **inputs)


def _model_loss(args):
    """The training loss of family --model's tiny config on a batch of 2 from the first
    dataset it fits (a short reverse task, else the glyph images), built through the
    registry's contract as the trainer builds it: any registered family works."""
    import numpy as np

    from engine.data import build_dataset
    from engine.models import get_model
    if args.expr is not None or args.shape:
        raise CliError("--model draws the model's loss: leave out EXPR and --shape")
    family = get_model(args.model)
    config = family.config.from_name("tiny")
    reasons = []
    for task, options in DATASETS:
        data = build_dataset(task=task, task_options=options, context_length=config.context_length)
        try:
            config = config.for_data(data)
            break
        except ValueError as e:
            reasons.append(str(e))
    else:
        raise CliError(f"--model {args.model}: fits none of the datasets tried: "
                       f"{'; '.join(reasons)}")
    model = family.model(config, rng=0)
    inputs, targets = data.get_batch("train", 2, np.random.default_rng(0))
    _, loss = model(inputs, targets)
    from engine.graph import names_of
    return loss, (f"{args.model} tiny: its loss on {data.describe()['name']}, inputs "
                  f"{inputs.shape} ({model.num_parameters():,} parameters)"), names_of(model)


# What --model feeds a family: the first of these its config fits (config.for_data).
DATASETS = (("reverse", {"min_len": 4, "max_len": 4}), ("glyphs", {}))
