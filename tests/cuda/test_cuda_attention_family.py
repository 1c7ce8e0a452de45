"""The attention family on cuda (tiny sizes for the simulator): the seq2seq models' loss and
gradients, greedy decoding with the cache, and the ViT's loss and attention rollout equal
the CPU's."""

import numpy as np

import ops
from engine.data import SyntheticTask
from engine.models import (
    Seq2SeqGRU,
    Seq2SeqGRUConfig,
    Seq2SeqTransformer,
    Seq2SeqTransformerConfig,
    ViT,
    ViTConfig,
)
from engine.models.generate import generate

TASK = SyntheticTask("reverse", min_len=2, max_len=3)


def _pair(make):
    return make(), make().to("cuda")


def test_seq2seq_models_on_cuda_equal_the_cpu():
    idx, targets = TASK.get_batch("train", 2, np.random.default_rng(0))
    prompts = np.stack([TASK.prompt(x) for x in TASK.held_out(2)])
    makers = [
        lambda: Seq2SeqGRU(Seq2SeqGRUConfig(n_embd=4, hidden=4, attn_size=4, max_tgt_len=8)
                           .for_data(TASK), rng=0, dtype=np.float64),
        lambda: Seq2SeqTransformer(Seq2SeqTransformerConfig(
            n_embd=4, n_head=2, n_enc_layer=1, n_dec_layer=1, max_tgt_len=8).for_data(TASK),
            rng=0, dtype=np.float64),
    ]
    for make in makers:
        cpu, gpu = _pair(make)
        a, b = cpu(idx, targets)[1], gpu(idx, targets)[1]
        np.testing.assert_allclose(b.item(), a.item(), rtol=1e-12)
        a.backward()
        b.backward()
        for (name, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
            np.testing.assert_allclose(ops.to_host(q.grad), p.grad,
                                       rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(generate(gpu, prompts, 3, greedy=True),
                                      generate(cpu, prompts, 3, greedy=True))


def test_vit_on_cuda_equals_the_cpu():
    def make():
        return ViT(ViTConfig(image_size=8, patch_size=4, n_embd=4, n_head=2, n_layer=1),
                   rng=0, dtype=np.float64)
    cpu, gpu = _pair(make)
    img, labels = np.random.default_rng(0).random((2, 8, 8)), np.array([1, 2])
    np.testing.assert_allclose(gpu(img, labels)[1].item(), cpu(img, labels)[1].item(),
                               rtol=1e-12)
    np.testing.assert_allclose(gpu.attention_maps(img)["rollout"],
                               cpu.attention_maps(img)["rollout"], rtol=1e-12)
