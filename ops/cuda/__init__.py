"""The "cuda" device: Numba CUDA kernels for every op on the contract list (ops/README.md).

ops/cuda/device.py registers the device (ops.devices imports it on the first
`get_device("cuda")`; importing ops never imports numba.cuda). A kernel family has the file
of the same name as its CPU forms in ops/, holding its kernels, their launchers and the
register(...) calls at the bottom:
  matmul           tiled, register-tiled matmul (nn, nt, tn; batched), linear, sum_rows
  softmax          softmax / log-softmax, one block per row (its row passes: cross-entropy's)
  layernorm        layer norm, forward and backward
  loss             cross-entropy, forward and backward
  attention        attention and attention_qkv: launchers, and a block per row for heads too
                   wide for the tiles
  attention_flash  tiled (flash-style) attention, forward and backward, masks included
  elementwise      the namespace's elementwise kernels, from one table per arity; gelu
  embedding        embedding forward and backward
  optim            adamw_update, sum_squares
  arrays           contiguous, scatter_add, dropout_mask
The machinery:
  device           registers the device
  cudaarray        CudaArray, a strided view of a Numba device buffer
  namespace        the array API namespace (`xp`) over CudaArrays
  reduce           reductions over any axes, from one table; the block reduction
  indexing         views, take, take_along_axis, gathers, setitem
  launch           launch constants (tests shrink them), launch counting, jit(cache=True)
  memory           the caching allocator (segments, size classes, blocks owned by views)
  deferred         queued launches run as multi-tensor kernels (copies, column sums, AdamW)
Counters: memory_stats(), launch_stats() below (and empty_cache()); docs/cuda.md tells the
whole story.
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
