"""An attention engine from scratch: Tensor with reverse-mode autodiff over numpy arrays."""

from engine import functional
from engine.autograd import AnomalyError, detect_anomaly, enable_grad, is_grad_enabled, no_grad
from engine.creation import (
    arange,
    eye,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    zeros,
    zeros_like,
)
from engine.functional import manual_seed
from engine.gradcheck import GradcheckError, gradcheck
from engine.tensor import Tensor
from ops.registry import get_backend, set_backend, use_backend

__all__ = ["AnomalyError", "GradcheckError", "Tensor", "arange", "detect_anomaly", "enable_grad",
           "eye", "full", "full_like", "functional", "get_backend", "gradcheck",
           "is_grad_enabled", "linspace", "manual_seed", "no_grad", "ones", "ones_like", "rand",
           "rand_like", "randint", "randn", "randn_like", "set_backend", "use_backend", "zeros",
           "zeros_like"]
