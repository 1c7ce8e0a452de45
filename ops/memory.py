"""glibc malloc tuning so large kernel outputs reuse freed memory instead of fresh pages.

Every kernel returns new arrays. glibc serves allocations above its mmap threshold (128 KiB,
raised only as large blocks are freed) with fresh mmap'd pages, which the kernel then
zero-fills on first touch: a (4096, 1024) float32 softmax forward+backward ran 8-60 ms,
page faults included, against 4.5 ms with the memory reused (benchmarks/kernels.py; numpy's
own temporaries gain too, 30 -> 21 ms). Raising the mmap and trim thresholds keeps freed
blocks in the heap for reuse -- the job PyTorch's caching allocator does -- at the cost of a
process that returns memory to the system less eagerly. ENGINE_MALLOC_TUNING=0 turns it off.
Applied only by `ops.runtime.configure()`, never on import.
"""

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 20  # older glibc caps it at 32 MiB on 64-bit: then that is used
TRIM_THRESHOLD = 512 << 20


def tune_malloc():
    """Apply the thresholds (ops.runtime.configure calls it); True when glibc accepted both."""
    if not sys.platform.startswith("linux") or os.environ.get("ENGINE_MALLOC_TUNING") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): leave the allocator alone
        return False
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) or mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    return bool(mmap_ok) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))

