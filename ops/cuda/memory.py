"""The cuda device's caching allocator: device memory is taken from the driver in large
segments and handed out in blocks by size class; a freed block goes back to its class's
free list, never to the driver (as PyTorch's caching allocator does), so a training step
that repeats the sizes of the step before makes no driver allocation at all.

Every block lives inside a segment, and every array of one dtype in a segment is a view of
the same typed segment buffer (`typed(segment, dtype)`, made once): a kernel can reach many
arrays through one buffer argument and a tuple of element offsets (ops/cuda/deferred.py's
multi-tensor launches). Blocks start at multiples of ALIGN bytes, so an element offset
exists for every dtype.

A block is owned by a `Block` object that every view of its array holds; when the last view
goes, `Block.__del__` returns it to the free list. Kernels run in launch order on one
stream, so reusing a block after its arrays are gone is safe even while earlier launches
that used it are still queued on the GPU.

A request with no cached block of its class is carved from the newest segment's untouched
top, else split from the smallest larger cached block (the rest stays cached as a block of
its own; free blocks are not merged again), else served by a new segment. `empty_cache()`
gives every segment with no block in use back to the driver; a driver out-of-memory error
does that and retries once (with the bare request, not the doubled segment) before raising
MemoryError.
"""

import numpy as np
from numba import cuda

from ops.cuda import launch

ALIGN = 512  # bytes: block starts (and so element offsets) for every dtype
# The first segment; later ones double until a request fits. Small under the simulator,
# where a segment is a numpy array.
SEGMENT = (16 if launch.SIMULATOR else 256) << 20

_STATS = {"driver_allocations": 0, "driver_bytes": 0, "driver_frees": 0, "requests": 0,
          "reused": 0, "splits": 0, "allocated_bytes": 0, "peak_allocated_bytes": 0}
_FREE = {}       # size class (bytes) -> [(segment, byte offset)]
_SEGMENTS = []   # [Segment], newest last


_MADE = [0]      # segments ever made: a segment's index stays unique after releases


class Segment:
    """One driver allocation of `size` bytes, carved from the bottom up; `used`: bytes of
    its blocks in use."""
    __slots__ = ("index", "raw", "size", "top", "used", "views")

    def __init__(self, size):
        self.raw = cuda.device_array(size, np.uint8)
        self.size, self.top, self.used, self.views = size, 0, 0, {}
        self.index = _MADE[0]
        _MADE[0] += 1
        _STATS["driver_allocations"] += 1
        _STATS["driver_bytes"] += size


def typed(segment, dtype):
    """The whole segment as a 1-D device array of `dtype` (made once per dtype)."""
    view = segment.views.get(dtype)
    if view is None:
        view = segment.views[dtype] = segment.raw.view(dtype)
    return view


class Block:
    """Ownership of `size` bytes at `offset` in `segment`; `pending` (0 when none): a
    deferred launch (ops/cuda/deferred.py) reads or writes this memory, so it must run
    before anyone else touches it."""
    __slots__ = ("__weakref__", "offset", "pending", "segment", "size")

    def __init__(self, segment, offset, size):
        self.segment, self.offset, self.size, self.pending = segment, offset, size, 0

    def __del__(self):
        try:
            _STATS["allocated_bytes"] -= self.size
            self.segment.used -= self.size
            _FREE.setdefault(self.size, []).append((self.segment, self.offset))
        except (TypeError, AttributeError):  # interpreter shutdown: the module is gone
            pass


def size_class(nbytes):
    """Bytes reserved for a request: a multiple of ALIGN below 1 MiB, above that the next
    of four steps per power of two (at most 25% unused)."""
    n = max(int(nbytes), 1)
    if n <= 1 << 20:
        return -(-n // ALIGN) * ALIGN
    step = 1 << (n.bit_length() - 3)
    return -(-n // step) * step


def allocate(nbytes):
    """A Block of at least nbytes: a cached one of its size class, else carved from the
    newest segment, else split from a larger cached block, else from a new segment (the
    only driver allocation)."""
    size = size_class(nbytes)
    _STATS["requests"] += 1
    free = _FREE.get(size)
    newest = _SEGMENTS[-1] if _SEGMENTS else None
    if free:
        segment, offset = free.pop()
        _STATS["reused"] += 1
    elif newest is not None and newest.top + size <= newest.size:
        segment, offset, newest.top = newest, newest.top, newest.top + size
    elif (larger := min((k for k, v in _FREE.items() if k > size and v), default=None)):
        segment, offset = _FREE[larger].pop()
        _FREE.setdefault(larger - size, []).append((segment, offset + size))
        _STATS["reused"] += 1
        _STATS["splits"] += 1
    else:
        segment = _new_segment(max(2 * newest.size if newest else SEGMENT, size), size)
        offset, segment.top = 0, size
    segment.used += size
    _STATS["allocated_bytes"] += size
    _STATS["peak_allocated_bytes"] = max(_STATS["peak_allocated_bytes"],
                                         _STATS["allocated_bytes"])
    return Block(segment, offset, size)


def _out_of_memory(err):
    code = getattr(err, "code", None)
    return "OUT_OF_MEMORY" in str(code) or str(code) == "2"


def _new_segment(size, needed):
    """A new segment of `size` bytes; when the driver is out of memory, the cache goes back
    to it and one more try asks for `needed` bytes only."""
    try:
        segment = Segment(size)
    except Exception as err:  # (the driver's error type depends on its binding)
        if not _out_of_memory(err):
            raise
        empty_cache()
        try:
            segment = Segment(needed)
        except Exception as again:
            if not _out_of_memory(again):
                raise
            raise MemoryError(f"cuda: out of device memory for {needed} bytes "
                              f"({_STATS['allocated_bytes']} bytes in use)") from again
    _SEGMENTS.append(segment)
    return segment


def empty_cache():
    """Give every segment none of whose blocks is in use back to the driver (their cached
    blocks leave the cache); returns the bytes released."""
    idle = [s for s in _SEGMENTS if s.used == 0]
    if not idle:
        return 0
    if not launch.SIMULATOR:
        cuda.synchronize()  # (queued kernels may still use the memory)
    gone = {id(s) for s in idle}
    for size in list(_FREE):
        _FREE[size] = [(s, o) for s, o in _FREE[size] if id(s) not in gone]
        if not _FREE[size]:
            del _FREE[size]
    _SEGMENTS[:] = [s for s in _SEGMENTS if id(s) not in gone]
    for s in idle:
        s.raw = None
        s.views.clear()
    if not launch.SIMULATOR:
        cuda.current_context().deallocations.clear()  # numba frees lazily: free now
    _STATS["driver_frees"] += len(idle)
    return sum(s.size for s in idle)


def memory_stats():
    """Counters of the allocator: driver_allocations / driver_bytes (segments taken from the
    driver, ever), driver_frees (segments given back by empty_cache), requests and reused
    (blocks asked for, and how many came from the cache, splits counted), splits,
    allocated_bytes (blocks in use, by size class), cached_bytes (freed blocks kept for
    reuse), reserved_bytes (the segments held now), peak_allocated_bytes."""
    cached = sum(size * len(blocks) for size, blocks in _FREE.items())
    return {**_STATS, "cached_bytes": cached,
            "reserved_bytes": sum(s.size for s in _SEGMENTS), "segments": len(_SEGMENTS)}


def reset_peak():
    _STATS["peak_allocated_bytes"] = _STATS["allocated_bytes"]
