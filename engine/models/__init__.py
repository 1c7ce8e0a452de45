"""Model families, one file each, registered by name (`get_model("gpt")`)."""

from engine.models.gpt import GPT, GPTConfig
from engine.models.registry import ModelFamily, get_model, model_names, register_model

__all__ = ["GPT", "GPTConfig", "ModelFamily", "get_model", "model_names", "register_model"]
