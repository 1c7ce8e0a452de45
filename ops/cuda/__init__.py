"""The "cuda" device: Numba CUDA kernels for every op on the contract list (ops/README.md).

ops/cuda/device.py registers the device (ops.devices imports it on the first
`get_device("cuda")`; importing ops never imports numba.cuda). The modules:
  launch       launch constants (tests shrink them), launch counting, jit(cache=True)
  array        CudaArray, a strided view of a Numba device buffer
  elementwise  the elementwise kernels, generated from one table per arity
  reduce       reductions over any axes, from one table
  indexing     views, take, take_along_axis, gathers, setitem
  namespace    the array API namespace (`xp`) over CudaArrays
  matmul       tiled, register-tiled matmul (nn, nt, tn; batched)
  rows         softmax / log-softmax and layer norm, one block per row
  flash        tiled (flash-style) attention, forward and backward, masks included
  attention    attention a block per row (heads too wide for flash's shared memory)
  kernels      the contract's launchers for the above, registered as "cuda"
  arrays       contiguous, embedding, scatter_add, dropout_mask, adamw_update
  loss         cross-entropy, forward and backward
  memory       the caching allocator (segments, size classes, blocks owned by their views)
  deferred     queued launches run as multi-tensor kernels (copies, column sums, AdamW)
Counters: memory_stats(), launch_stats() below (and empty_cache()); docs/cuda.md tells the whole story.
"""


def memory_stats():
    """The caching allocator's counters (ops/cuda/memory.py): driver allocations and bytes,
    requests served from the cache, bytes allocated / cached / reserved."""
    from ops.cuda.memory import memory_stats as stats
    return stats()


def empty_cache():
    """Give the cached device memory of every segment with no array in use back to the
    driver; returns the bytes released (memory_stats()["driver_frees"] counts segments)."""
    from ops.cuda.memory import empty_cache as release
    return release()


def launch_stats():
    """Kernel launches since the last reset_launch_stats(), in total and per kernel family."""
    from ops.cuda.launch import launch_stats as stats
    return stats()


def reset_launch_stats():
    from ops.cuda.launch import reset_launch_stats as reset
    reset()


def flush():
    """Run the deferred launches now (ops/cuda/deferred.py); the device does this by itself
    before anything reads or writes their memory. For timing: flush, then synchronize."""
    from ops.cuda.deferred import flush as run
    run()
