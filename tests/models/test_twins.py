"""The PyTorch twins (benchmarks/twins) read the project's rows; skipped without torch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.twins import seq2seq_transformer as twin
from engine.data import SyntheticTask


@pytest.mark.slow
def test_the_seq2seq_transformer_twin_reads_our_rows_with_pytorch_defaults():
    data = SyntheticTask("reverse", min_len=2, max_len=4)
    model = twin.train(data, steps=2, batch_size=4)
    idx, _ = data.get_batch("val", 3, np.random.default_rng(0))
    logits = model(torch.from_numpy(idx), data.pad_id)
    assert tuple(logits.shape) == (3, idx.shape[1] - data.input_width, 64)
    assert float(model.src_pos.weight.std()) == pytest.approx(1.0, rel=0.3)  # nn.Embedding
    acc = twin.exact_match(model, data, data.held_out(4))
    assert 0.0 <= acc <= 1.0


def test_the_gru_twin_reads_our_rows():
    from benchmarks.twins import seq2seq_gru
    data = SyntheticTask("reverse", min_len=2, max_len=4)
    model = seq2seq_gru.train(data, steps=2, batch_size=4)
    idx, _ = data.get_batch("val", 3, np.random.default_rng(0))
    steps = []
    logits = model(torch.from_numpy(idx), data.pad_id, alignments=steps)
    assert tuple(logits.shape) == (3, idx.shape[1] - data.input_width, 64)
    pad = idx[:, :data.input_width] == data.pad_id
    assert all(float(w[torch.from_numpy(pad)].sum()) == 0 for w in steps)  # padding unread


def test_the_vit_twin_takes_our_images_normalised_alike():
    from benchmarks.twins import vit
    from engine.data import GlyphImages
    data = GlyphImages(held_out=20)
    model = vit.train(data, steps=2, batch_size=4)
    images, _ = data.held_out(6)
    assert tuple(model(vit._prepare(images, *model.stats)).shape) == (6, 10)
    x = vit._prepare(images, *model.stats).numpy()
    mean, std = data.pixel_stats()
    np.testing.assert_allclose(x, (images[:, None] - mean[0]) / std[0], rtol=1e-5, atol=1e-5)


def test_the_twins_schedule_is_the_runs_own():
    from benchmarks.twins.loop import _lr
    from engine.optim import cosine_lr
    from engine.training import TrainConfig
    for cfg in (TrainConfig(model="vit"), TrainConfig(model="seq2seq-gru")):
        floor = cfg.lr / 10 if cfg.min_lr is None else cfg.min_lr
        for step in range(0, cfg.steps, 7):
            ours = cosine_lr(step, max_lr=cfg.lr, min_lr=floor, warmup_steps=cfg.warmup_steps,
                             max_steps=cfg.steps)
            theirs = _lr(step, cfg.steps, cfg.lr, cfg.warmup_steps, cfg.min_lr)
            assert theirs == pytest.approx(ours, rel=1e-12, abs=1e-15)
