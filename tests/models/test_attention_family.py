"""Tests of the attention family's models: Seq2SeqGRU, Seq2SeqTransformer and ViT — the
source/decoder split, losses against a hand computation, cached decoding equal to uncached,
attention maps (shapes, rows summing to one, padding never attended), the ViT's patches and
rollout against numpy, the strict device agreeing with the CPU, and gradchecks."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor
from engine.data import GlyphImages, SyntheticTask
from engine.gradcheck import gradcheck
from engine.models import (
    GPT,
    GPTConfig,
    Seq2SeqGRU,
    Seq2SeqGRUConfig,
    Seq2SeqTransformer,
    Seq2SeqTransformerConfig,
    ViT,
    ViTConfig,
    attention_maps,
)
from engine.models.generate import generate

TASK = SyntheticTask("reverse", min_len=2, max_len=5)


def _seq2seq(kind, dtype=np.float32):
    if kind == "gru":
        cfg = Seq2SeqGRUConfig(n_embd=6, hidden=5, attn_size=4, max_tgt_len=8)
        return Seq2SeqGRU(cfg.for_data(TASK), rng=0, dtype=dtype)
    cfg = Seq2SeqTransformerConfig(n_embd=8, n_head=2, n_enc_layer=1, n_dec_layer=2,
                                   max_tgt_len=8)
    return Seq2SeqTransformer(cfg.for_data(TASK), rng=0, dtype=dtype)


def _batch(n=3, seed=0):
    return TASK.get_batch("train", n, np.random.default_rng(seed))


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_seq2seq_splits_the_task_row_and_its_loss_is_the_decoders(kind):
    model = _seq2seq(kind, np.float64)
    assert model.config.src_len == TASK.input_width and model.config.pad_id == TASK.pad_id
    idx, targets = _batch()
    logits, loss = model(idx, targets)
    S = TASK.input_width
    assert logits.shape == (3, idx.shape[1] - S, model.config.vocab_size)
    assert np.all(targets[:, :S] == -100)  # the task ignores the prompt: nothing is lost
    z = logits.numpy()
    t = targets[:, S:]
    lse = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)
    keep = t != -100
    nll = lse[keep] - np.take_along_axis(z, np.where(keep, t, 0)[..., None], -1)[..., 0][keep]
    np.testing.assert_allclose(loss.item(), nll.mean(), rtol=1e-12)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_seq2seq_source_padding_is_never_read(kind):
    model = _seq2seq(kind, np.float64)
    idx, _ = _batch()
    assert np.any(idx[:, 0] == TASK.pad_id)
    other = idx.copy()
    # Any token in a pad position is masked out of the source: the logits must not move.
    pads = idx[:, :TASK.input_width] == TASK.pad_id
    other[:, :TASK.input_width][pads] = 13  # still the pad id...
    a = model(idx)[0].numpy()
    # ...while changing a real source token changes them.
    real = np.argwhere(~pads)[0]
    other[real[0], real[1]] = (other[real[0], real[1]] + 1) % 10
    b = model(other)[0].numpy()
    assert not np.allclose(a[real[0]], b[real[0]])
    maps = attention_maps(model, idx)
    for name, m in maps.items():
        np.testing.assert_allclose(m.sum(-1), 1.0, rtol=1e-10)
        if "cross" in name or name == "alignment" or name.startswith("encoder"):
            cols = pads if m.ndim == 3 else pads[:, None, :]
            assert np.all(m[..., :, :][np.broadcast_to(cols[..., None, :], m.shape)] == 0)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_seq2seq_cached_decoding_equals_uncached(kind):
    model = _seq2seq(kind)
    prompts = np.stack([TASK.prompt(x) for x in TASK.held_out(4)])
    rng = np.random.default_rng(0)
    a, la = generate(model, prompts, 6, temperature=1.0, rng=0, return_logits=True)
    b, lb = generate(model, prompts, 6, temperature=1.0, rng=0, use_cache=False,
                     return_logits=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(la, lb, rtol=1e-4, atol=1e-5)
    g1 = generate(model, prompts, 6, greedy=True, rng=rng)
    np.testing.assert_array_equal(g1[:, :prompts.shape[1]], prompts)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_seq2seq_gradcheck(kind):
    model = _seq2seq(kind, np.float64)
    idx, targets = _batch(2)
    params = model.parameters()
    pick = [p for p in params if p.ndim == 2][:3] + [params[-1]]
    gradcheck(lambda *_: model(idx, targets)[1], *pick)


def test_seq2seq_gru_alignment_shape_and_gpt_maps_in_the_same_call():
    model = _seq2seq("gru")
    idx, _ = _batch(2)
    maps = attention_maps(model, idx)
    assert list(maps) == ["alignment"]
    assert maps["alignment"].shape == (2, idx.shape[1] - TASK.input_width, TASK.input_width)
    gpt = GPT(GPTConfig.tiny(block_size=16), rng=0)
    gmaps = attention_maps(gpt, idx)
    assert list(gmaps) == ["layer.0", "layer.1"] and gmaps["layer.0"].shape[-1] == idx.shape[1]


def test_seq2seq_configs_refuse_text_and_images_and_long_answers():
    with pytest.raises(ValueError, match="needs a task with an input and an answer"):
        Seq2SeqGRUConfig().for_data(GlyphImages(held_out=10))
    with pytest.raises(ValueError, match="max_tgt_len 4"):
        Seq2SeqTransformerConfig(max_tgt_len=4).for_data(TASK)
    with pytest.raises(ValueError, match="unknown config 'huge'"):
        Seq2SeqGRUConfig.from_name("huge")
    with pytest.raises(ValueError, match="n_embd must be a positive integer"):
        Seq2SeqGRUConfig(n_embd=0)
    cfg = Seq2SeqTransformerConfig.from_name("small").for_data(TASK)
    assert Seq2SeqTransformerConfig.from_dict(cfg.to_dict()) == cfg


def test_seq2seq_bad_rows_are_clear_errors():
    model = _seq2seq("gru")
    with pytest.raises(ValueError, match="needs the 5 source tokens and at least the start"):
        model(np.zeros((2, 5), np.int64))
    with pytest.raises(ValueError, match="must be a 2-D integer array"):
        model(np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError, match=r"targets shape \(2, 7\) != idx shape \(2, 8\)"):
        model(np.zeros((2, 8), np.int64), np.zeros((2, 7), np.int64))


# ---- ViT -------------------------------------------------------------------------------------

def _vit(dtype=np.float32, **kw):
    cfg = ViTConfig(image_size=8, patch_size=4, n_embd=8, n_head=2, n_layer=2, **kw)
    return ViT(cfg, rng=0, dtype=dtype)


def test_vit_patches_are_the_image_blocks_row_by_row(rng):
    model = _vit(np.float64)
    img = rng.random((2, 8, 8))
    tokens = model._tokens(img).numpy()  # (B, 5, C)
    w, b = model.patch_embed.weight.numpy(), model.patch_embed.bias.numpy()
    pos, cls = model.pos_embed.numpy(), model.cls_token.numpy()[0, 0]
    for p, (r, c) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        patch = img[:, r:r + 4, c:c + 4].reshape(2, 16)
        np.testing.assert_allclose(tokens[:, 1 + p], patch @ w.T + b + pos[1 + p], rtol=1e-12)
    np.testing.assert_allclose(tokens[:, 0], np.broadcast_to(cls + pos[0], (2, 8)), rtol=1e-12)


def test_patchify_unpatchify_round_trip(rng):
    from engine.models.vit import patchify, unpatchify
    img = Tensor(rng.random((2, 3, 8, 12)), requires_grad=True)
    p = patchify(img, 4)
    assert p.shape == (2, 6, 48)
    np.testing.assert_array_equal(p.numpy()[1, 4].reshape(3, 4, 4), img.numpy()[1, :, 4:8, 4:8])
    np.testing.assert_array_equal(unpatchify(p, 3, 8, 12).numpy(), img.numpy())
    gradcheck(lambda x: unpatchify(patchify(x, 4) * 2.0, 3, 8, 12), img)
    with pytest.raises(ValueError, match="does not split into 5x5 patches"):
        patchify(img, 5)
    with pytest.raises(ValueError, match="do not tile a 3x8x8 image"):
        unpatchify(p, 3, 8, 8)


def test_vit_attention_maps_and_rollout_against_numpy(rng):
    model = _vit(np.float64)
    img = rng.random((3, 8, 8))
    maps = model.attention_maps(img)
    assert maps["layer.0"].shape == (3, 2, 5, 5) and maps["cls"].shape == (3, 4)
    rollout = np.eye(5)[None]
    for i in range(2):
        a = 0.5 * maps[f"layer.{i}"].mean(1) + 0.5 * np.eye(5)
        a /= a.sum(-1, keepdims=True)
        rollout = a @ rollout
    np.testing.assert_allclose(maps["rollout"], rollout[:, 0, 1:], rtol=1e-12)
    np.testing.assert_allclose(maps["cls"], maps["layer.1"].mean(1)[:, 0, 1:], rtol=1e-12)


def test_vit_gradcheck_and_loss(rng):
    model = _vit(np.float64)
    img, labels = rng.random((2, 8, 8)), np.array([3, 7])
    logits, loss = model(img, labels)
    z = logits.numpy()
    want = np.mean(np.log(np.exp(z).sum(-1)) - z[[0, 1], labels])
    np.testing.assert_allclose(loss.item(), want, rtol=1e-12)
    gradcheck(lambda *_: model(img, labels)[1], model.cls_token, model.pos_embed,
              model.patch_embed.weight, model.head.weight)
    x = Tensor(img, requires_grad=True)  # the gradient reaches the pixels (saliency)
    gradcheck(lambda x: model(x)[0], x)


def test_vit_on_the_strict_device_agrees_with_the_cpu(rng):
    pytest.importorskip("array_api_strict")
    cpu = _vit(np.float64)
    strict = _vit(np.float64).to("strict")
    img, labels = rng.random((2, 8, 8)), np.array([1, 2])
    a, b = cpu(img, labels), strict(img, labels)
    np.testing.assert_allclose(b[0].numpy(), a[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(strict.attention_maps(img)["rollout"],
                               cpu.attention_maps(img)["rollout"], rtol=1e-12)


def test_vit_bad_images_are_clear_errors():
    model = _vit()
    with pytest.raises(ValueError, match=r"images must be \(B, 8, 8\).*got shape \(2, 7, 8\)"):
        model(np.zeros((2, 7, 8), np.float32))
    with pytest.raises(ValueError, match=r"labels must be \(2,\)"):
        model(np.zeros((2, 8, 8), np.float32), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        ViTConfig(image_size=10, patch_size=4)
    with pytest.raises(ValueError, match="needs an image task"):
        ViTConfig().for_data(TASK)


def test_seq2seq_on_the_strict_device_agrees_with_the_cpu():
    pytest.importorskip("array_api_strict")
    for kind in ("gru", "transformer"):
        cpu, strict = _seq2seq(kind, np.float64), _seq2seq(kind, np.float64).to("strict")
        idx, targets = _batch(2)
        np.testing.assert_allclose(strict(idx, targets)[1].item(), cpu(idx, targets)[1].item(),
                                   rtol=1e-12)
        prompts = np.stack([TASK.prompt(x) for x in TASK.held_out(2)])
        np.testing.assert_array_equal(generate(strict, prompts, 4, greedy=True),
                                      generate(cpu, prompts, 4, greedy=True))


def test_cross_entropy_reads_the_class_token_only(rng):
    # Changing any patch changes the logits (the class token attends to every patch).
    model = _vit(np.float64)
    model.head.weight.data[...] = rng.normal(size=model.head.weight.shape)  # it starts at 0
    img = rng.random((1, 8, 8))
    base = model(img)[0].numpy()
    for r, c in [(0, 0), (7, 7)]:
        other = img.copy()
        other[0, r, c] += 1.0
        assert not np.allclose(model(other)[0].numpy(), base)
    assert F is not None


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_an_encoder_decoder_training_step_lowers_the_loss(kind):
    from engine import optim
    model = _seq2seq(kind)
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    idx, targets = _batch(8)
    before = model(idx, targets)[1]
    before.backward()
    opt.step()
    after = model(idx, targets)[1].item()
    assert after < before.item() - 0.01, (before.item(), after)
