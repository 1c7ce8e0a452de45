"""The public functional API (`import engine.functional as F`): every op's public function,
re-exported from the file of engine/functions that holds it beside its Function (the rule is
written in engine/functions/__init__.py). Nothing is defined here: this module is the list.

Non-differentiable array arguments (indices, targets, masks) must live on the device of the
tensors they go with: a numpy array meeting a tensor of another device is an error, never a
silent copy (integer indices for getitem are the exception: moved explicitly, and counted).
"""

from engine.functions.activations import (  # noqa: F401
    gelu,
    gelu_exact,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
)
from engine.functions.arithmetic import (  # noqa: F401
    abs,
    add,
    ceil,
    clamp,
    clip,
    div,
    floor,
    floor_divide,
    maximum,
    minimum,
    mod,
    mul,
    neg,
    pow,
    pow_tensor,
    remainder,
    round,
    sign,
    sub,
)
from engine.functions.attention import (  # noqa: F401
    attention_weights,
    scaled_dot_product_attention,
    self_attention,
)
from engine.functions.compare import (  # noqa: F401
    eq,
    equal,
    ge,
    greater,
    greater_equal,
    gt,
    isfinite,
    isinf,
    isnan,
    le,
    less,
    less_equal,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    ne,
    not_equal,
)
from engine.functions.convert import cast, to_device  # noqa: F401
from engine.functions.indexing import (  # noqa: F401
    gather,
    getitem,
    masked_fill,
    one_hot,
    scatter_add,
    take_along_axis,
    tril,
    triu,
    where,
)
from engine.functions.layers import (  # noqa: F401
    default_generator,
    dropout,
    embedding,
    layer_norm,
    manual_seed,
)
from engine.functions.linalg import linear, matmul  # noqa: F401
from engine.functions.losses import (  # noqa: F401
    IGNORE_INDEX,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)
from engine.functions.reduce import (  # noqa: F401
    all,
    any,
    argmax,
    argmin,
    cumsum,
    logsumexp,
    max,
    mean,
    min,
    prod,
    std,
    sum,
    var,
)
from engine.functions.shape import (  # noqa: F401
    broadcast_to,
    cat,
    concat,
    concatenate,
    expand,
    expand_dims,
    flatten,
    flip,
    pad,
    permute,
    repeat,
    reshape,
    roll,
    split,
    squeeze,
    stack,
    tile,
    transpose,
    unsqueeze,
)
from engine.functions.unary_math import (  # noqa: F401
    cos,
    erf,
    exp,
    expm1,
    log,
    log1p,
    log2,
    rsqrt,
    sin,
    sqrt,
    tanh,
)
