"""train() is model-agnostic: a family registered here (a bigram table, no GPT inside) trains,
checkpoints under its name, reloads and resumes, through the registry contract alone."""

from dataclasses import asdict, dataclass

import numpy as np
import pytest

import engine.functional as F
from engine.models import registry
from engine.nn import Embedding, Module
from engine.training import TrainConfig, checkpoint, load_model, train


@dataclass
class BigramConfig:
    vocab_size: int = 8
    block_size: int = 16

    @classmethod
    def from_name(cls, name, **overrides):
        return cls(**overrides)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)

    @property
    def context_length(self):
        return self.block_size

    def for_data(self, data):
        return BigramConfig(vocab_size=data.vocab_size, block_size=self.block_size)


class Bigram(Module):
    """logits of the next character = a learned row per current character."""

    def __init__(self, config, *, rng=None):
        super().__init__()
        self.config = config
        self.table = Embedding(config.vocab_size, config.vocab_size, rng=rng, std=0.02)

    def forward(self, idx, targets):
        logits = self.table(idx)  # (B, T, V)
        B, T, V = logits.shape
        return logits, F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))


@pytest.fixture
def bigram_family(monkeypatch):
    monkeypatch.setitem(registry._FAMILIES, "bigram", registry.ModelFamily(
        "bigram", Bigram, BigramConfig))
    return "bigram"


def _text(tmp_path):
    # A Markov chain over 5 letters: the best any bigram model can do is its entropy rate.
    rng = np.random.default_rng(0)
    nxt = {"a": "bc", "b": "cd", "c": "de", "d": "ea", "e": "ab"}
    chars = ["a"]
    for _ in range(20_000):
        chars.append(nxt[chars[-1]][rng.integers(2)])
    path = tmp_path / "chain.txt"
    path.write_text("".join(chars), encoding="utf-8")
    return str(path)


def test_a_registered_non_gpt_family_trains_saves_and_resumes(tmp_path, bigram_family):
    cfg = {"model": bigram_family, "text": _text(tmp_path), "steps": 150, "lr": 0.1,
           "warmup_steps": 0, "weight_decay": 0.0, "batch_size": 16, "eval_every": 0,
           "ckpt_every": 100, "out_dir": str(tmp_path / "b")}
    history = train(TrainConfig(**cfg), progress=False)
    final = history["final"]
    # Two equally likely successors: ln 2 nats per character; the count-based baseline
    # and the trained table both get there.
    assert final["bigram_baseline"] == pytest.approx(np.log(2), abs=0.01)
    assert final["val_loss"] == pytest.approx(np.log(2), abs=0.05)
    ck = checkpoint.load(tmp_path / "b")
    assert ck.family == "bigram" and ck.config["model"] == {"vocab_size": 5, "block_size": 16}
    model, vocab = load_model(tmp_path / "b")
    assert isinstance(model, Bigram) and vocab.itos == "abcde"
    resumed = train(TrainConfig(**{**cfg, "steps": 160, "resume": True}), progress=False)
    assert resumed["train"]["step"] == list(range(160))
    assert resumed["train"]["loss"][:150] == history["train"]["loss"]
    with pytest.raises(checkpoint.CheckpointError, match="holds a 'bigram' model, not 'gpt'"):
        train(TrainConfig(**{**cfg, "model": "gpt", "resume": True}), progress=False)
