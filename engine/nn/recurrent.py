"""Gated recurrent units: `GRUCell` (one step) and `GRU` (a sequence, optionally bidirectional).

The equations and parameter layout are PyTorch's (gate order r, z, n in the stacked weights):

    r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)          reset gate
    z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)          update gate
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))       candidate state
    h' = (1 - z) * n + z * h

Every piece is an engine op (linear, sigmoid, tanh, elementwise), so the gradient is the
engine's own backward through time; nothing here has a backward of its own.
"""

import math

import numpy as np

import engine.functional as F
import ops
from engine.autograd import make_tensor
from engine.nn.module import Module, as_rng, check_sizes, new_parameter


def _gru_update(gi, h, weight_hh, bias_hh):
    """One GRU step from the input projection gi (B, 3H) and the state h (B, H)."""
    gh = F.linear(h, weight_hh, bias_hh)  # (B, 3H)
    i_r, i_z, i_n = F.split(gi, 3, axis=-1)  # each (B, H)
    h_r, h_z, h_n = F.split(gh, 3, axis=-1)  # each (B, H)
    r = F.sigmoid(i_r + h_r)
    z = F.sigmoid(i_z + h_z)
    n = F.tanh(i_n + r * h_n)
    return n + z * (h - n)  # (1 - z) * n + z * h, one op fewer


class _GRUWeights(Module):
    """weight_ih (3H, I), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,): uniform(+-1/sqrt(H))."""

    def __init__(self, input_size, hidden_size, bias, rng, dtype):
        super().__init__()
        check_sizes(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = new_parameter(rng.uniform(-bound, bound, (3 * hidden_size, input_size)),
                                       dtype)
        self.weight_hh = new_parameter(rng.uniform(-bound, bound, (3 * hidden_size, hidden_size)),
                                       dtype)
        self.bias_ih = new_parameter(rng.uniform(-bound, bound, 3 * hidden_size), dtype) \
            if bias else None
        self.bias_hh = new_parameter(rng.uniform(-bound, bound, 3 * hidden_size), dtype) \
            if bias else None


class GRUCell(_GRUWeights):
    """One GRU step: forward(x (B, I), h (B, H) or None for zeros) -> h' (B, H)."""

    def __init__(self, input_size, hidden_size, bias=True, *, rng=None, dtype=np.float32):
        super().__init__(input_size, hidden_size, bias, as_rng(rng), dtype)
        self.input_size, self.hidden_size = input_size, hidden_size

    def forward(self, x, h=None):
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"GRUCell: input must be (B, {self.input_size}), got {x.shape}")
        if h is None:
            h = _zeros_state(x, x.shape[0], self.hidden_size)
        elif h.shape != (x.shape[0], self.hidden_size):
            raise ValueError(f"GRUCell: state must be ({x.shape[0]}, {self.hidden_size}), "
                             f"got {h.shape}")
        gi = F.linear(x, self.weight_ih, self.bias_ih)  # (B, 3H)
        return _gru_update(gi, h, self.weight_hh, self.bias_hh)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"


class GRU(Module):
    """A GRU over a batch-first sequence, one layer, optionally bidirectional.

    forward(x (B, T, I), h0=None) -> (output (B, T, D*H), h_n (D, B, H)), D = 2 when
    bidirectional. output[:, t] holds the forward state after step t and, when bidirectional,
    the backward state after reading x[:, t:] in reverse (concatenated, forward first).
    The input projection of all steps is one matmul; the recurrence is T small steps.
    Parameters: forward_cell.{weight_ih, weight_hh, bias_ih, bias_hh} (PyTorch's *_l0) and
    backward_cell.* (PyTorch's *_l0_reverse).
    """

    def __init__(self, input_size, hidden_size, *, bidirectional=False, bias=True, rng=None,
                 dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.bidirectional = bidirectional
        self.forward_cell = _GRUWeights(input_size, hidden_size, bias, rng, dtype)
        self.backward_cell = _GRUWeights(input_size, hidden_size, bias, rng, dtype) \
            if bidirectional else None

    def forward(self, x, h0=None):
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"GRU: input must be (B, T, {self.input_size}), got {x.shape}")
        B, T, _ = x.shape
        D, H = 2 if self.bidirectional else 1, self.hidden_size
        if h0 is not None and h0.shape != (D, B, H):
            raise ValueError(f"GRU: h0 must be ({D}, {B}, {H}), got {h0.shape}")
        if T == 0:
            raise ValueError("GRU: the sequence is empty (T = 0)")
        cells = [self.forward_cell] + ([self.backward_cell] if self.bidirectional else [])
        outputs, finals = [], []
        for d, cell in enumerate(cells):
            gi = F.linear(x, cell.weight_ih, cell.bias_ih)  # (B, T, 3H), all steps at once
            h = _zeros_state(x, B, H) if h0 is None else h0[d]
            states = [None] * T
            for t in (range(T) if d == 0 else reversed(range(T))):
                h = _gru_update(gi[:, t], h, cell.weight_hh, cell.bias_hh)  # (B, H)
                states[t] = h
            outputs.append(F.stack(states, axis=1))  # (B, T, H)
            finals.append(h)
        output = outputs[0] if D == 1 else F.concat(outputs, axis=2)  # (B, T, D*H)
        return output, F.stack(finals, axis=0)  # (D, B, H)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, bidirectional={self.bidirectional}"


def _zeros_state(like, batch, hidden):
    """A zero state (batch, hidden) of like's dtype and device (a constant, no gradient)."""
    xp = ops.array_namespace(like.data)
    return make_tensor(xp.zeros((batch, hidden), dtype=like.dtype, device=like.data.device))
