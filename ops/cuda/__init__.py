"""The "cuda" device: Numba CUDA kernels for every op on the contract list (ops/README.md).

ops/cuda/device.py registers the device (ops.devices imports it on the first
`get_device("cuda")`; importing ops never imports numba.cuda). The modules:
  launch       threads per block and other launch constants (tests shrink them)
  array        CudaArray, a strided view of a Numba device buffer
  elementwise  the elementwise kernels, generated from one table per arity
  reduce       reductions over any axes, from one table
  indexing     views, take, take_along_axis, gathers, setitem
  namespace    the array API namespace (`xp`) over CudaArrays
  matmul       tiled, register-tiled matmul (nn, nt, tn; batched)
  rows         softmax / log-softmax and layer norm, one block per row
  attention    flash-style fused attention, forward and backward
  kernels      the contract's launchers for the above, registered as "cuda"
  arrays       contiguous, embedding, scatter_add, dropout_mask, adamw_update
"""
