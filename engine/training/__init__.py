"""Training: the model-agnostic loop, checkpoints, the metrics log and progress display."""

from engine.training.checkpoint import CheckpointError
from engine.training.trainer import NonFiniteLossError, TrainConfig, load_model, train

__all__ = ["CheckpointError", "NonFiniteLossError", "TrainConfig", "load_model", "train"]
