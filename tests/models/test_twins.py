"""The PyTorch twins (benchmarks/twins) read the project's rows; skipped without torch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.twins import seq2seq_transformer as twin  # noqa: E402
from engine.data import SyntheticTask  # noqa: E402


def test_the_seq2seq_transformer_twin_reads_our_rows_with_pytorch_defaults():
    data = SyntheticTask("reverse", min_len=2, max_len=4)
    model = twin.train(data, steps=2, batch_size=4)
    idx, _ = data.get_batch("val", 3, np.random.default_rng(0))
    logits = model(torch.from_numpy(idx), data.pad_id)
    assert tuple(logits.shape) == (3, idx.shape[1] - data.input_width, 64)
    assert float(model.src_pos.weight.std()) == pytest.approx(1.0, rel=0.3)  # nn.Embedding
    acc = twin.exact_match(model, data, data.held_out(4))
    assert 0.0 <= acc <= 1.0
