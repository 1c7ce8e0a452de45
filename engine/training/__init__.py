"""Training: the model-agnostic loop, checkpoints, the metrics log and progress display."""

from engine.training.checkpoint import CheckpointError
from engine.training.config import TrainConfig
from engine.training.run import load_model
from engine.training.trainer import NonFiniteLossError, SaveError, train
from engine.training.validate import ConfigError

__all__ = ["CheckpointError", "ConfigError", "NonFiniteLossError", "SaveError", "TrainConfig",
           "load_model", "train"]
