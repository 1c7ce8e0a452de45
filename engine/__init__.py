"""An attention engine from scratch: Tensor with reverse-mode autodiff over numpy arrays."""

from engine import functional
from engine.autograd import AnomalyError, detect_anomaly, enable_grad, is_grad_enabled, no_grad
from engine.functional import manual_seed
from engine.gradcheck import GradcheckError, gradcheck
from engine.tensor import Tensor
from ops.registry import get_backend, set_backend, use_backend

__all__ = ["AnomalyError", "GradcheckError", "Tensor", "detect_anomaly", "enable_grad",
           "functional", "get_backend", "gradcheck", "is_grad_enabled", "manual_seed",
           "no_grad", "set_backend", "use_backend"]
