"""Fixtures of the kernel tests: the serial and the threaded path of the row kernels."""

import pytest

from ops import elementwise


@pytest.fixture(params=[False, True], ids=["serial", "threads"])
def threads(request, monkeypatch):
    """Run on the calling thread, or force the prange path even for tiny inputs."""
    monkeypatch.setattr(elementwise, "PARALLEL_MIN", 0 if request.param else 1 << 62)
    return request.param
