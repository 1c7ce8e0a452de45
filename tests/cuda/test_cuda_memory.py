"""The caching allocator's cache management, each test on a fresh allocator state with a
small first segment: a larger cached block is split for a smaller request, empty_cache()
gives idle segments back to the driver (and only idle ones), and a driver out-of-memory
error releases the cache and retries once; memory_stats() tells the truth throughout."""

import pytest

import ops
import ops.cuda as oc
from ops.cuda import memory

KIB = 1024


@pytest.fixture
def fresh(monkeypatch):
    """An empty allocator whose first segment holds 8 KiB (blocks of the rest of the suite
    stay in their own segments and free lists once the test is over)."""
    oc.flush()
    monkeypatch.setattr(memory, "SEGMENT", 8 * KIB)
    monkeypatch.setattr(memory, "_FREE", {})
    monkeypatch.setattr(memory, "_SEGMENTS", [])
    monkeypatch.setattr(memory, "_STATS", dict.fromkeys(memory._STATS, 0))
    return ops.get_device("cuda").xp


def _full(xp, n, value):
    a = xp.full((n,), value, dtype=xp.float32)
    oc.flush()
    return a


def test_a_larger_cached_block_is_split_for_a_smaller_request(fresh):
    xp = fresh
    a = _full(xp, 2 * KIB, 0.0)  # 8 KiB: the whole first segment
    del a
    assert oc.memory_stats()["cached_bytes"] == 8 * KIB
    b = _full(xp, 512, 1.0)  # 2 KiB: no cached block of its class, no room at the top
    stats = oc.memory_stats()
    assert (stats["splits"], stats["driver_allocations"]) == (1, 1)
    assert (stats["allocated_bytes"], stats["cached_bytes"]) == (2 * KIB, 6 * KIB)
    c = _full(xp, 1536, 2.0)  # 6 KiB: the rest of the split block, exactly
    stats = oc.memory_stats()
    assert stats["driver_allocations"] == 1 and stats["cached_bytes"] == 0
    assert stats["reused"] == 2 and stats["allocated_bytes"] == 8 * KIB
    assert float(xp.sum(b)) == 512.0 and float(xp.sum(c)) == 2 * 1536.0  # no overlap


def test_empty_cache_gives_idle_segments_back_and_keeps_used_ones(fresh):
    xp = fresh
    kept = _full(xp, KIB, 3.0)  # 4 KiB of segment 1 (8 KiB)
    spare = _full(xp, KIB, 0.0)
    big = _full(xp, 4 * KIB, 0.0)  # 16 KiB: segment 2
    del spare, big
    before = oc.memory_stats()
    assert (before["segments"], before["cached_bytes"]) == (2, 20 * KIB)
    assert oc.empty_cache() == 16 * KIB  # segment 2 only: segment 1 holds `kept`
    after = oc.memory_stats()
    assert (after["segments"], after["reserved_bytes"], after["driver_frees"]) == (1, 8 * KIB, 1)
    assert after["cached_bytes"] == 4 * KIB and after["allocated_bytes"] == 4 * KIB
    assert float(xp.sum(kept)) == 3.0 * KIB
    del kept
    assert oc.empty_cache() == 8 * KIB and oc.empty_cache() == 0
    stats = oc.memory_stats()
    assert (stats["segments"], stats["reserved_bytes"], stats["cached_bytes"]) == (0, 0, 0)
    again = _full(xp, 10, 1.0)  # a new segment from the driver
    assert oc.memory_stats()["driver_allocations"] == 3 and float(xp.sum(again)) == 10.0


class _OutOfMemory(Exception):
    code = "CUresult.CUDA_ERROR_OUT_OF_MEMORY"


def _failing_driver(monkeypatch, failures):
    """Segment() raising the driver's out-of-memory error `failures` times, then working;
    returns the sizes asked for."""
    asked, real = [], memory.Segment

    def segment(size):
        asked.append(size)
        if len(asked) <= failures:
            raise _OutOfMemory("out of memory")
        return real(size)
    monkeypatch.setattr(memory, "Segment", segment)
    return asked


def test_out_of_memory_frees_the_cache_and_retries_once_with_the_bare_request(
        fresh, monkeypatch):
    xp = fresh
    idle = _full(xp, 2 * KIB, 0.0)  # fills segment 1 (8 KiB), then goes to the cache
    del idle
    asked = _failing_driver(monkeypatch, 1)
    a = _full(xp, 3 * KIB, 5.0)  # 12 KiB: a new segment; the doubled 16 KiB fails
    assert asked == [16 * KIB, 12 * KIB]
    stats = oc.memory_stats()
    assert (stats["driver_frees"], stats["segments"], stats["reserved_bytes"]) == (1, 1, 12 * KIB)
    assert stats["cached_bytes"] == 0 and float(xp.sum(a)) == 15.0 * KIB


def test_out_of_memory_twice_is_a_memory_error_naming_the_bytes(fresh, monkeypatch):
    xp = fresh
    _failing_driver(monkeypatch, 2)
    with pytest.raises(MemoryError, match="out of device memory for 8192 bytes"):
        xp.zeros((2 * KIB,), dtype=xp.float32)


def test_other_driver_errors_are_not_retried(fresh, monkeypatch):
    asked = []

    def broken(size):
        asked.append(size)
        raise RuntimeError("launch failed")
    monkeypatch.setattr(memory, "Segment", broken)
    with pytest.raises(RuntimeError, match="launch failed"):
        fresh.zeros((3,), dtype=fresh.float32)
    assert asked == [8 * KIB]
