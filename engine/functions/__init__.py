"""The differentiable primitives: one Function per op, forward beside backward, grouped by
meaning. engine.functional is their public face; Tensor methods wrap engine.functional."""
