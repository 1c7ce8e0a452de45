"""Tests for engine.optim: updates against hand-computed float64 formulas, schedule, clipping."""

import itertools
import json
import math

import numpy as np
import pytest

import ops
from engine import Tensor, optim
from engine.models import GPT, GPTConfig

GRADS = np.random.default_rng(0).standard_normal((3, 4, 3))  # three steps of (4, 3) gradients


def run(opt, p, grads):
    for g in grads:
        p.grad = g.astype(p.dtype)
        opt.step()
    return p.data


@pytest.mark.parametrize("momentum,wd,nesterov", [(0.0, 0.0, False), (0.9, 0.0, False),
                                                  (0.9, 0.1, False), (0.9, 0.1, True)])
def test_sgd_matches_hand_computed(momentum, wd, nesterov):
    p0 = np.random.default_rng(1).standard_normal((4, 3))
    p = Tensor(p0.copy(), requires_grad=True)
    got = run(optim.SGD([p], lr=0.1, momentum=momentum, weight_decay=wd, nesterov=nesterov),
              p, GRADS)
    want, buf = p0.copy(), None
    for g in GRADS:
        d = g + wd * want
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + d
            d = d + momentum * buf if nesterov else buf
        want = want - 0.1 * d
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert not np.allclose(got, p0)


def adamw_by_hand(p0, grads, lr, b1, b2, eps, wd):
    p, m, v = p0.astype(np.float64), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * wd * p
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_adamw_matches_hand_computed(backend, dtype, tol):
    p0 = np.random.default_rng(1).standard_normal((4, 3))
    p = Tensor(p0.astype(dtype), requires_grad=True)
    opt = optim.AdamW([p], lr=0.01, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    with ops.use_backend(backend):
        got = run(opt, p, GRADS)
    assert got.dtype == dtype and opt.state[0]["step"] == 3
    want = adamw_by_hand(p0.astype(dtype), GRADS.astype(dtype), 0.01, 0.9, 0.95, 1e-8, 0.1)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_adamw_skips_parameters_without_grad():
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    opt = optim.AdamW([a, b], lr=0.1)
    a.grad = np.ones(3)
    opt.step()
    np.testing.assert_array_equal(b.data, 1.0)
    assert list(opt.state) == [0]
    opt.zero_grad()
    assert a.grad is None


def test_no_weight_decay_on_biases_and_norms():
    model = GPT(GPTConfig.tiny(block_size=8, n_layer=1), rng=0)
    groups = optim.weight_decay_groups(model, 0.5)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = sorted(names[id(p)] for p in groups[0]["params"])
    assert decayed == sorted(n for n, p in model.named_parameters() if p.ndim == 2)
    assert "transformer.wte.weight" in decayed and "lm_head.weight" in decayed
    assert all(p.ndim == 1 for p in groups[1]["params"]) and groups[1]["weight_decay"] == 0.0
    before = model.state_dict()
    for p in model.parameters():  # zero gradients: only the decay moves parameters
        p.grad = np.zeros_like(p.data)
    optim.AdamW(groups, lr=0.1).step()
    after = model.state_dict()
    for name, value in after.items():
        factor = 1.0 - 0.1 * 0.5 if value.ndim == 2 else 1.0
        np.testing.assert_allclose(value, before[name] * np.float32(factor), rtol=1e-6,
                                   err_msg=name)


def test_cosine_schedule_values():
    kw = {"max_lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 10, "max_steps": 110}
    assert optim.cosine_lr(0, **kw) == pytest.approx(1e-4)  # (0 + 1) / 10 of max_lr
    assert optim.cosine_lr(4, **kw) == pytest.approx(5e-4)
    assert optim.cosine_lr(9, **kw) == pytest.approx(1e-3)  # warmup ends at max_lr
    assert optim.cosine_lr(10, **kw) == pytest.approx(1e-3)
    assert optim.cosine_lr(60, **kw) == pytest.approx(5.5e-4)  # halfway: mean of max and min
    quarter = 1e-4 + 0.5 * (1 + math.cos(math.pi / 4)) * 9e-4
    assert optim.cosine_lr(35, **kw) == pytest.approx(quarter)
    assert optim.cosine_lr(110, **kw) == pytest.approx(1e-4)
    assert optim.cosine_lr(500, **kw) == pytest.approx(1e-4)
    lrs = [optim.cosine_lr(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(lrs))
    with pytest.raises(ValueError):
        optim.cosine_lr(0, max_lr=1, min_lr=0, warmup_steps=5, max_steps=4)


def test_set_lr_on_all_groups():
    model = GPT(GPTConfig.tiny(block_size=4, n_layer=1), rng=0)
    opt = optim.AdamW(optim.weight_decay_groups(model, 0.1), lr=1.0)
    optim.set_lr(opt, 0.25)
    assert [g["lr"] for g in opt.param_groups] == [0.25, 0.25]


def test_clip_grad_norm_scales_exactly_to_max_norm():
    rng = np.random.default_rng(0)
    params = [Tensor(np.zeros(s), requires_grad=True) for s in [(3, 4), (5,), (2, 2, 2)]]
    for p in params:
        p.grad = rng.standard_normal(p.shape)
    grads = [p.grad.copy() for p in params]
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
    assert optim.clip_grad_norm(params, 1.0) == pytest.approx(norm, rel=1e-14)
    new = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params))
    assert new == pytest.approx(1.0, rel=1e-14)
    for p, g in zip(params, grads):  # same direction
        np.testing.assert_allclose(p.grad, g / norm, rtol=1e-14)
    # Below the threshold nothing changes.
    assert optim.clip_grad_norm(params, 10.0) == pytest.approx(1.0, rel=1e-14)
    np.testing.assert_allclose(params[0].grad, grads[0] / norm, rtol=1e-14)


def test_clip_grad_norm_returns_non_finite_norm_untouched():
    p = Tensor(np.zeros(3), requires_grad=True)
    p.grad = np.array([1.0, np.inf, 2.0])
    assert optim.clip_grad_norm([p], 1.0) == math.inf
    np.testing.assert_array_equal(p.grad, [1.0, np.inf, 2.0])
    p.grad = np.array([1.0, np.nan, 2.0])
    assert math.isnan(optim.clip_grad_norm([p], 1.0))


def fresh(seed=0):
    model = GPT(GPTConfig.tiny(block_size=8, n_layer=1), rng=seed)
    return model, optim.AdamW(optim.weight_decay_groups(model, 0.1), lr=1e-2)


def train_steps(model, opt, batches):
    for idx in batches:
        opt.zero_grad()
        model(idx, (idx + 1) % 64)[1].backward()
        opt.step()


def test_optimizer_state_dict_round_trip_continues_identically():
    batches = np.random.default_rng(0).integers(0, 64, (4, 2, 8))
    model_a, opt_a = fresh()
    train_steps(model_a, opt_a, batches[:2])
    saved_model, saved_opt = model_a.state_dict(), opt_a.state_dict()
    json.dumps(saved_opt["param_groups"])  # hyper-parameters are plain JSON
    assert all(isinstance(s["step"], int) for s in saved_opt["state"].values())
    model_b, opt_b = fresh(seed=1)
    model_b.load_state_dict(saved_model)
    opt_b.load_state_dict(saved_opt)
    train_steps(model_a, opt_a, batches[2:])
    train_steps(model_b, opt_b, batches[2:])
    for name, value in model_a.state_dict().items():
        np.testing.assert_array_equal(model_b.state_dict()[name], value, err_msg=name)
    # The saved state was a copy: continuing training did not change it.
    assert saved_opt["state"][0]["step"] == 2 and opt_a.state[0]["step"] == 4


def test_optimizer_load_state_dict_rejects_other_layout():
    model, opt = fresh()
    other = optim.AdamW(model.parameters(), lr=1e-2)
    with pytest.raises(ValueError, match="group sizes"):
        other.load_state_dict(opt.state_dict())
