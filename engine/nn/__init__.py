"""Layers: the Module system and reusable layers (`from engine import nn`; `nn.Linear`, ...)."""

from engine.nn.attention import KVCache, MultiHeadAttention
from engine.nn.layers import Dropout, Embedding, LayerNorm, Linear
from engine.nn.module import Module, ModuleDict, ModuleList, eval_mode
from engine.nn.transformer import MLP, TransformerBlock

__all__ = ["MLP", "Dropout", "Embedding", "KVCache", "LayerNorm", "Linear", "Module",
           "ModuleDict", "ModuleList", "MultiHeadAttention", "TransformerBlock", "eval_mode"]
