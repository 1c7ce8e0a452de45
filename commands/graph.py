"""`attn graph EXPR`: the symbolic view of an expression (or a model's loss): the graph it
builds, one line per op with the op's derivative formula, or Graphviz DOT."""

from commands import CliError

EXAMPLE = """examples:
  attn graph "softmax(x @ w, axis=-1)" --shape x=4,8 --shape w=8,3
  attn graph "sum(tanh(x @ w + b) ** 2)" --shape x=2,3 --shape w=3,4 --shape b=4 --dot
  attn graph --model gpt            # the tiny GPT's training loss

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
    p.add_argument("--model", choices=("gpt",),
                   help="show the graph of this model's training loss instead of EXPR")
    p.add_argument("--no-formulas", action="store_true", help="leave out the derivatives")
    p.epilog = EXAMPLE


def run(args):
    from engine.graph import count_ops, render_tree, to_dot
    if (args.expr is None) == (args.model is None):
        raise CliError("give an EXPR or --model gpt (not both); see attn graph --help")
    root, what = _model_loss(args) if args.model else _expression(args)
    if args.dot:
        print(to_dot(root))
        return 0
    from rich.console import Console
    console = Console(highlight=False)
    console.print(f"[bold]{what}[/]: {tuple(root.shape)} {root.dtype}; ops "
                  + ", ".join(f"{name} x{n}" for name, n in count_ops(root).items()))
    console.print(render_tree(root, formulas=not args.no_formulas), markup=False,
                  soft_wrap=True)
    return 0


def _expression(args):
    from engine.exprgraph import ExprError, evaluate, inputs_for, parse_shape
    from engine.tensor import Tensor
    if args.model is None and args.shape == [] and not args.expr.strip():
        raise CliError("EXPR is empty")
    try:
        shapes = dict(parse_shape(s) for s in args.shape)
        value = evaluate(args.expr, inputs_for(shapes))
    except ExprError as e:
        raise CliError(str(e)) from None
    except (ValueError, TypeError) as e:  # the engine refused the call: shapes, arguments
        raise CliError(f"{args.expr}: {e}") from None
    if not isinstance(value, Tensor):
        raise CliError(f"{args.expr!r} is the number {value!r}, not a tensor: use an input "
                       f"given with --shape")
    return value, args.expr


def _model_loss(args):
    import numpy as np

    from engine.models import GPT, GPTConfig
    if args.expr is not None or args.shape:
        raise CliError("--model draws the model's loss: leave out EXPR and --shape")
    model = GPT(GPTConfig.tiny(), rng=0)
    idx = np.random.default_rng(0).integers(0, model.config.vocab_size, (2, 8))  # (B, T)
    _, loss = model(idx, targets=np.roll(idx, -1, axis=1))
    return loss, f"GPT tiny loss (B=2, T=8; {model.num_parameters():,} parameters)"
