"""The cuda device's memory and launch budgets: the caching allocator reuses freed blocks
(no driver allocation once warm), a tiny GPT training step (with gradient clipping, as the
trainer's) stays within its launch budget,
and the deferred multi-tensor launches give the same numbers as launching at once."""

import numpy as np
import pytest

import ops
import ops.cuda as oc
from engine.models import GPT, GPTConfig
from engine.optim import AdamW, clip_grad_norm, weight_decay_groups

# The tiny GPT's architecture (2 layers, every op of its step) at the smallest sizes: the
# launch count does not depend on the sizes.
TINY = GPTConfig.tiny(block_size=4, n_layer=2, n_embd=8, n_head=2, vocab_size=11)
LAUNCH_BUDGET = 100


@pytest.fixture(scope="module")
def xp():
    return ops.get_device("cuda").xp


def _step_runner(dtype="float32"):
    model = GPT(TINY, rng=0).to("cuda", dtype)
    opt = AdamW(weight_decay_groups(model, 0.1), lr=1e-2)
    rng = np.random.default_rng(0)

    def step():
        idx = rng.integers(0, TINY.vocab_size, size=(2, TINY.block_size))
        opt.zero_grad()
        _, loss = model(idx, np.roll(idx, -1, axis=1))
        loss.backward()
        clip_grad_norm(model.parameters(), 0.01)  # as the trainer does; it always clips here
        opt.step()
        return loss.item()
    return step


def test_a_warm_tiny_gpt_step_allocates_nothing_and_keeps_its_launch_budget():
    step = _step_runner()
    step()
    step()  # warm: the cache holds a block of every size the step asks for
    oc.flush()
    before = oc.memory_stats()
    oc.reset_launch_stats()
    step()
    oc.flush()  # this step's queued launches (gradient copies, column sums, AdamW)
    after, launches = oc.memory_stats(), oc.launch_stats()
    assert after["driver_allocations"] == before["driver_allocations"]
    assert after["requests"] > before["requests"]  # it did allocate: from the cache
    assert launches["launches"] <= LAUNCH_BUDGET, launches["by_kernel"]
    # every parameter's update in one launch; so all gradient copies, all clipping scalings
    for kernel in ("_adamw_kernel", "_copy_kernel", "_scale_kernel", "_sum_squares_kernel"):
        assert launches["by_kernel"][kernel] == 1, kernel


def test_freed_blocks_return_to_the_cache(xp):
    oc.flush()
    a = xp.zeros((1000,), dtype=xp.float32)
    before = oc.memory_stats()
    del a
    freed = oc.memory_stats()
    assert freed["allocated_bytes"] < before["allocated_bytes"]
    assert freed["cached_bytes"] > before["cached_bytes"]
    b = xp.ones((999,), dtype=xp.float32)  # the same size class: the freed block again
    again = oc.memory_stats()
    assert again["driver_allocations"] == before["driver_allocations"]
    assert again["reused"] == freed["reused"] + 1
    assert float(xp.sum(b)) == 999.0


def test_a_view_keeps_its_block_alive(xp):
    a = ops.to_device(np.arange(6.0), "cuda")
    view = a[2:]
    del a
    junk = [xp.full((6,), -1.0) for _ in range(4)]  # would reuse a freed block
    np.testing.assert_array_equal(ops.to_host(view), np.arange(2.0, 6.0))
    assert len(junk) == 4


def test_a_queued_copy_is_made_before_its_source_is_written(xp):
    src = ops.to_device(np.arange(4.0), "cuda")
    copy = xp.asarray(src, copy=True)
    src += 10.0  # an in-place write runs the queue first
    np.testing.assert_array_equal(ops.to_host(copy), np.arange(4.0))
    np.testing.assert_array_equal(ops.to_host(src), np.arange(4.0) + 10)


def test_queued_copies_and_column_sums_run_as_one_launch_each(xp):
    from ops.cuda import deferred
    oc.flush()
    rng = np.random.default_rng(1)
    hosts = [rng.standard_normal((3, n)) for n in (1, 2, 5)]
    arrays = [ops.to_device(h, "cuda") for h in hosts]
    oc.reset_launch_stats()
    copies = [xp.asarray(a, copy=True) for a in arrays]
    sums = [xp.sum(a, axis=0) for a in arrays]
    assert deferred.pending() == 6 and oc.launch_stats()["launches"] == 0
    for h, c, s in zip(hosts, copies, sums):
        np.testing.assert_array_equal(ops.to_host(c), h)
        np.testing.assert_allclose(ops.to_host(s), h.sum(axis=0), rtol=1e-15)
    assert oc.launch_stats()["by_kernel"] == {"_colsum_kernel": 1, "_copy_kernel": 1}


def test_queued_adamw_updates_equal_the_reference_one_by_one():
    rng = np.random.default_rng(2)
    shapes = [(3, 4), (5,), (1,)]
    state = [[rng.standard_normal(s), rng.standard_normal(s), rng.standard_normal(s),
              np.abs(rng.standard_normal(s))] for s in shapes]
    hyper = [{"lr": 1e-2, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": wd,
              "step": st} for wd, st in ((0.1, 3), (0.0, 3), (0.1, 1))]
    on = [[ops.to_device(a, "cuda") for a in s] for s in state]
    update = ops.kernel("adamw_update", "cuda")
    oc.flush()
    oc.reset_launch_stats()
    for (p, g, m, v), h in zip(on, hyper):
        update(p, g, m, v, **h)
    ref = ops.kernel("adamw_update", backend="numpy")
    for (p, g, m, v), h in zip(state, hyper):
        ref(p, g, m, v, **h)
    for ours, want in zip(on, state):
        for a, b in zip(ours, want):
            np.testing.assert_allclose(ops.to_host(a), b, rtol=1e-13, atol=1e-15)
    assert oc.launch_stats()["by_kernel"] == {"_adamw_kernel": 1}


def test_queued_scalings_equal_the_elementwise_multiply(xp):
    a = ops.to_device(np.array([1.5, -2.0, 3.0], dtype=np.float32), "cuda")
    scaled = a * 0.1  # queued
    assert np.array_equal(ops.to_host(scaled), np.array([1.5, -2.0, 3.0], np.float32)
                          * np.float32(0.1))
    assert scaled.dtype == np.float32
