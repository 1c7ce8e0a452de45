"""gradcheck: analytic gradients against float64 central finite differences.

Works on any device: inputs are perturbed in place on their device; the analytic gradients
are copied to the host (explicitly) and compared there with numpy.
"""

from dataclasses import dataclass, field

import numpy as np

import ops
from engine.autograd import no_grad
from engine.tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree; the message names the worst element."""


@dataclass
class GradcheckReport:
    """Per input: the largest absolute and relative error between the two gradients."""

    max_abs_error: list = field(default_factory=list)
    max_rel_error: list = field(default_factory=list)
    checked: list = field(default_factory=list)  # elements checked per input

    def __str__(self):
        rows = [f"input {i}: {n} elements, max abs err {a:.2e}, max rel err {r:.2e}"
                for i, (n, a, r) in enumerate(zip(self.checked, self.max_abs_error,
                                                   self.max_rel_error))]
        return "gradcheck passed\n" + "\n".join(rows)


def _scalar_output(fn, inputs, projection):
    out = fn(*inputs)
    if projection is None:
        return out
    return (out * projection).sum()


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0):
    """Check d fn / d input for every float64 Tensor input with requires_grad.

    A non-scalar output is contracted with a fixed random tensor first, so every output
    element takes part. Numeric gradients are central differences (f(x+eps) - f(x-eps)) / 2eps
    in float64. Returns a GradcheckReport; raises GradcheckError naming the input, the worst
    element and both values when |analytic - numeric| > atol + rtol * |numeric| anywhere.
    """
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    for t in checked:
        name = ops.device_of(t.data).dtype_name(t.dtype)
        if name != "float64":
            raise TypeError(f"gradcheck: inputs must be float64, got {name} {t.shape}")
    out = fn(*inputs)
    rng = np.random.default_rng(seed)
    projection = (None if out.size == 1
                  else Tensor(rng.standard_normal(out.shape), device=out.device))
    for t in checked:
        t.grad = None
    loss = out.sum() if projection is None else (out * projection).sum()
    loss.backward()
    report = GradcheckReport()
    for n, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        analytic = np.zeros(t.shape) if t.grad is None else np.array(ops.to_host(t.grad))
        numeric = _numeric_grad(fn, inputs, t, projection, eps)
        _compare(report, n, t, analytic, numeric, atol, rtol)
    return report


def _numeric_grad(fn, inputs, t, projection, eps):
    numeric = np.zeros(t.shape)
    data = t.data  # perturbed in place by index (reshape(-1) would copy a non-contiguous array)
    with no_grad():
        for i in np.ndindex(t.shape):
            old = data[i]
            data[i] = old + eps
            plus = _scalar_output(fn, inputs, projection).sum().item()
            data[i] = old - eps
            minus = _scalar_output(fn, inputs, projection).sum().item()
            data[i] = old
            numeric[i] = (plus - minus) / (2 * eps)
    return numeric


def _compare(report, n, t, analytic, numeric, atol, rtol):
    err = np.abs(analytic - numeric)
    report.max_abs_error.append(float(err.max(initial=0.0)))
    report.max_rel_error.append(float((err / np.maximum(np.abs(numeric), 1e-12)).max(
        initial=0.0)))
    report.checked.append(t.size)
    bad = err > atol + rtol * np.abs(numeric)
    if bad.any():
        worst = np.unravel_index(np.argmax(np.where(bad, err, -1.0)), t.shape)
        raise GradcheckError(
            f"gradcheck: input {n} {t.shape}: at index {tuple(int(i) for i in worst)} analytic "
            f"{analytic[worst]:.8g} vs numeric {numeric[worst]:.8g} "
            f"(abs err {err[worst]:.3g}; {int(bad.sum())} of {t.size} elements off)")
