"""Layers: the Module system and reusable layers (`from engine import nn`; `nn.Linear`, ...)."""

from engine.nn.attention import AdditiveAttention, CrossAttention, KVCache, MultiHeadAttention
from engine.nn.layers import Dropout, Embedding, LayerNorm, Linear
from engine.nn.module import Module, ModuleDict, ModuleList, eval_mode
from engine.nn.recurrent import GRU, GRUCell
from engine.nn.transformer import MLP, DecoderBlock, TransformerBlock

__all__ = ["GRU", "MLP", "AdditiveAttention", "CrossAttention", "DecoderBlock", "Dropout",
           "Embedding", "GRUCell", "KVCache", "LayerNorm", "Linear", "Module", "ModuleDict",
           "ModuleList", "MultiHeadAttention", "TransformerBlock", "eval_mode"]
