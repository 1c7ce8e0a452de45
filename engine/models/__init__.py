"""Model families, one file each, registered by name (`get_model("gpt")`)."""

from engine.models.encoder_decoder import attention_maps
from engine.models.gpt import GPT, GPTConfig
from engine.models.registry import ModelFamily, get_model, model_names, register_model
from engine.models.seq2seq_gru import Seq2SeqGRU, Seq2SeqGRUConfig
from engine.models.seq2seq_transformer import Seq2SeqTransformer, Seq2SeqTransformerConfig
from engine.models.vit import ViT, ViTConfig

__all__ = ["GPT", "GPTConfig", "ModelFamily", "Seq2SeqGRU", "Seq2SeqGRUConfig",
           "Seq2SeqTransformer", "Seq2SeqTransformerConfig", "ViT", "ViTConfig", "attention_maps",
           "get_model", "model_names", "register_model"]
