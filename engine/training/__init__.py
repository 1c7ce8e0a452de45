"""Training: the model-agnostic loop, checkpoints, the metrics log and progress display."""

from engine.training.checkpoint import CheckpointError
from engine.training.config import TrainConfig
from engine.training.run import load_model
from engine.training.trainer import NonFiniteLossError, train

__all__ = ["CheckpointError", "NonFiniteLossError", "TrainConfig", "load_model", "train"]
