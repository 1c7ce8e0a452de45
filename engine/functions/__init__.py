"""The differentiable primitives, one file per concept: arithmetic, unary_math, activations,
compare, reduce, shape, indexing, convert, linalg, layers, attention, losses (args holds the
helpers they share: devices, axes, broadcasting).

Where things live, one rule for every op:
- each Function defines its forward and its backward side by side (no derivative table kept
  apart from the forwards);
- each public function (the wrapper that checks arguments and calls `Function.apply`, or an op
  composed from other public functions, such as split, silu or std) lives in the file of the
  Function it applies, right after it; a composed op lives in the file of its concept;
- engine.functional only re-exports those public functions, so it lists the whole API, and
  Tensor's operators and methods (engine.tensor_methods) call engine.functional.
A file imports only the files below it (arithmetic, unary_math and args at the bottom; losses
and attention at the top): no import cycles.
"""
