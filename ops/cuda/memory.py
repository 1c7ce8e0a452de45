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
"""

import numpy as np
from numba import cuda

from ops.cuda import launch

ALIGN = 512  # bytes: block starts (and so element offsets) for every dtype
# The first segment; later ones double until a request fits. Small under the simulator,
# where a segment is a numpy array.
SEGMENT = (16 if launch.SIMULATOR else 256) << 20

_STATS = {"driver_allocations": 0, "driver_bytes": 0, "requests": 0, "reused": 0,
          "allocated_bytes": 0, "peak_allocated_bytes": 0}
_FREE = {}       # size class (bytes) -> [(segment, byte offset)]
_SEGMENTS = []   # [Segment], newest last


class Segment:
    """One driver allocation of `size` bytes, carved from the bottom up."""
    __slots__ = ("index", "raw", "size", "top", "views")

    def __init__(self, size):
        self.raw = cuda.device_array(size, np.uint8)
        self.size, self.top, self.views, self.index = size, 0, {}, len(_SEGMENTS)
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
    newest segment, else from a new segment (the only driver allocation)."""
    size = size_class(nbytes)
    _STATS["requests"] += 1
    free = _FREE.get(size)
    if free:
        segment, offset = free.pop()
        _STATS["reused"] += 1
    else:
        segment = _SEGMENTS[-1] if _SEGMENTS else None
        if segment is None or segment.top + size > segment.size:
            grown = 2 * segment.size if segment else SEGMENT
            segment = Segment(max(grown, size))
            _SEGMENTS.append(segment)
        offset, segment.top = segment.top, segment.top + size
    _STATS["allocated_bytes"] += size
    _STATS["peak_allocated_bytes"] = max(_STATS["peak_allocated_bytes"],
                                         _STATS["allocated_bytes"])
    return Block(segment, offset, size)


def memory_stats():
    """Counters of the allocator: driver_allocations / driver_bytes (segments taken from the
    driver, never given back), requests and reused (blocks asked for, and how many came from
    the cache), allocated_bytes (blocks in use, by size class), cached_bytes (freed blocks
    kept for reuse), reserved_bytes (all segments), peak_allocated_bytes."""
    cached = sum(size * len(blocks) for size, blocks in _FREE.items())
    return {**_STATS, "cached_bytes": cached,
            "reserved_bytes": sum(s.size for s in _SEGMENTS), "segments": len(_SEGMENTS)}


def reset_peak():
    _STATS["peak_allocated_bytes"] = _STATS["allocated_bytes"]
