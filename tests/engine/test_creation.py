"""Creation functions: values against numpy, dtypes, devices, requires_grad, and seeded
generators that give the same numbers on every device."""

import numpy as np
import pytest

import engine
import ops

DEVICES = ["cpu", "strict"]


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "strict":
        pytest.importorskip("array_api_strict")
    return request.param


def _host(t):
    return t.numpy()


def test_zeros_ones_full(device):
    z = engine.zeros(2, 3, device=device)
    assert z.device == device and z.shape == (2, 3)
    np.testing.assert_array_equal(_host(z), np.zeros((2, 3), np.float32))
    assert _host(z).dtype == np.float32
    np.testing.assert_array_equal(_host(engine.ones((2,), dtype="float64", device=device)),
                                  np.ones(2))
    assert _host(engine.ones(3, dtype=np.float64, device=device)).dtype == np.float64
    np.testing.assert_array_equal(_host(engine.full((2, 2), 7, device=device)), np.full((2, 2), 7))
    assert _host(engine.full((2,), 7, device=device)).dtype == np.int64
    assert _host(engine.full((2,), 0.5, device=device)).dtype == np.float32
    assert _host(engine.full((2,), True, device=device)).dtype == np.bool_


def test_like_forms_keep_shape_dtype_and_device(device):
    x = engine.ones(2, 3, dtype="float64", device=device)
    for t in (engine.zeros_like(x), engine.ones_like(x), engine.full_like(x, 2.0),
              engine.randn_like(x, generator=1), engine.rand_like(x, generator=1)):
        assert t.shape == (2, 3) and t.device == device and _host(t).dtype == np.float64
    assert engine.zeros_like(x, dtype="int64").numpy().dtype == np.int64
    assert engine.zeros_like(x, device="cpu").device == "cpu"


def test_arange_linspace_eye(device):
    np.testing.assert_array_equal(_host(engine.arange(5, device=device)), np.arange(5))
    assert _host(engine.arange(5, device=device)).dtype == np.int64
    np.testing.assert_allclose(_host(engine.arange(1, 2, 0.25, device=device)),
                               np.arange(1, 2, 0.25, dtype=np.float32))
    np.testing.assert_allclose(_host(engine.linspace(0, 1, 5, device=device)),
                               np.linspace(0, 1, 5, dtype=np.float32))
    np.testing.assert_array_equal(_host(engine.eye(3, 4, k=1, device=device)),
                                  np.eye(3, 4, k=1, dtype=np.float32))


def test_random_draws_are_seeded_and_the_same_on_every_device(device):
    a = engine.randn(3, 4, generator=7, device=device)
    b = engine.randn(3, 4, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(_host(a), _host(b))
    np.testing.assert_array_equal(_host(a), np.random.default_rng(7).standard_normal((3, 4))
                                  .astype(np.float32))
    u = engine.rand(1000, generator=3, device=device).numpy()
    assert u.dtype == np.float32 and 0.0 <= u.min() and u.max() < 1.0
    r = engine.randint(2, 5, size=(200,), generator=3, device=device).numpy()
    assert r.dtype == np.int64 and set(r.tolist()) == {2, 3, 4}
    engine.manual_seed(11)
    first = engine.randn(4).numpy()
    engine.manual_seed(11)
    np.testing.assert_array_equal(engine.randn(4).numpy(), first)


def test_requires_grad(device):
    w = engine.randn(2, 2, requires_grad=True, device=device, generator=0)
    (w * w).sum().backward()
    np.testing.assert_allclose(ops.to_host(w.grad), 2 * w.numpy())
    with pytest.raises(TypeError, match="arange: only float tensors can require grad"):
        engine.arange(3, requires_grad=True, device=device)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match=r"zeros: negative dimension in shape \(2, -1\)"):
        engine.zeros(2, -1)
    with pytest.raises(TypeError, match="randn: dtype must be float32 or float64, got int64"):
        engine.randn(2, dtype="int64")
    with pytest.raises(TypeError, match="generator must be an np.random.Generator"):
        engine.randn(2, generator="seed")
    with pytest.raises(ValueError, match=r"randint: empty range \[3, 3\)"):
        engine.randint(3, 3)
    with pytest.raises(TypeError, match="unsupported dtype float16"):
        engine.ones(2, dtype="float16")
    with pytest.raises(ValueError, match="arange: step must not be zero"):
        engine.arange(0, 3, 0)
