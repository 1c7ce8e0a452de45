"""The basic layers: Linear, Embedding, LayerNorm, Dropout."""

import math

import numpy as np

import engine.functional as F
from engine.nn.module import Module, as_rng, check_sizes, new_parameter


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features) as in PyTorch.

    Init: normal(0, std) when `std` is given, else PyTorch's uniform(+-1/sqrt(in_features));
    the bias starts at zero when `std` is given, else uniform like the weight. `std` may be a
    function of in_features (the fan-in), so one rule serves layers of different widths.
    """

    def __init__(self, in_features, out_features, bias=True, *, rng=None, std=None,
                 dtype=np.float32):
        super().__init__()
        check_sizes("Linear", in_features=in_features, out_features=out_features)
        rng = as_rng(rng)
        self.in_features, self.out_features = in_features, out_features
        std = std(in_features) if callable(std) else std
        if std is None:
            bound = 1.0 / math.sqrt(in_features)
            w = rng.uniform(-bound, bound, (out_features, in_features))
            b = rng.uniform(-bound, bound, out_features)
        else:
            w = rng.normal(0.0, std, (out_features, in_features))
            b = np.zeros(out_features)
        self.weight = new_parameter(w, dtype)
        self.bias = new_parameter(b, dtype) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in={self.in_features}, out={self.out_features}, bias={self.bias is not None}"


def fan_in_std(scale=1.0):
    """A Linear `std` rule: scale / sqrt(fan_in). With scale 1 (LeCun's rule) an input of
    unit-variance features gives outputs of unit variance, whatever the layer's width."""
    return lambda fan_in: scale / math.sqrt(fan_in)


class Embedding(Module):
    """A lookup table: weight (num_embeddings, embedding_dim), rows drawn from normal(0, std)."""

    def __init__(self, num_embeddings, embedding_dim, *, rng=None, std=1.0, dtype=np.float32):
        super().__init__()
        check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        w = as_rng(rng).normal(0.0, std, (num_embeddings, embedding_dim))
        self.weight = new_parameter(w, dtype)

    def forward(self, idx):
        return F.embedding(idx, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalise over the last axis, then scale by weight (ones) and shift by bias (zeros)."""

    def __init__(self, ndim, bias=True, eps=1e-5, dtype=np.float32):
        super().__init__()
        check_sizes("LayerNorm", ndim=ndim)
        self.ndim, self.eps = ndim, eps
        self.weight = new_parameter(np.ones(ndim), dtype)
        self.bias = new_parameter(np.zeros(ndim), dtype) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight, self.bias, eps=self.eps)  # bias None: no shift

    def extra_repr(self):
        return f"{self.ndim}, eps={self.eps}, bias={self.bias is not None}"


class Dropout(Module):
    """Zero each element with probability p in training mode (scaling the rest by 1/(1-p))."""

    def __init__(self, p=0.0, *, rng=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.rng = None if rng is None else as_rng(rng)  # None: the engine's default generator

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training, generator=self.rng)

    def extra_repr(self):
        return f"p={self.p}"
