# %% [markdown]
# # 13. CUDA in Numba: threads, blocks, shared memory, a tiled matmul and softmax
#
# `numba.cuda.jit` compiles Python to GPU kernels. Without a GPU, Numba's CUDA *simulator*
# (`NUMBA_ENABLE_CUDASIM=1`) runs the same kernels on the CPU, each GPU thread as a Python
# thread: far too slow for real work, exact enough to learn and test with. This tutorial
# turns the simulator on for itself (before `numba.cuda` is first imported) and keeps every
# shape tiny. The engine's own CUDA device is a separate piece of work; here we write
# kernels by hand.
#
# **First run:** Numba compiles each kernel at its first launch, here for the simulator
# (a second or two each); nothing is cached between runs in simulator mode.

# %%
import math
import os

import numba
import numpy as np

import ops

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
numba.config.ENABLE_CUDASIM = os.environ["NUMBA_ENABLE_CUDASIM"] == "1"  # numba is imported
from numba import cuda  # after the simulator switch, on purpose

print("simulator:", numba.config.ENABLE_CUDASIM, "| CUDA available:", cuda.is_available())
assert cuda.is_available()

# %% [markdown]
# ## Threads and blocks
#
# A launch `kernel[blocks, threads_per_block](...)` starts blocks × threads copies of the
# kernel. Each knows its place: `cuda.blockIdx.x`, `cuda.threadIdx.x`, `cuda.blockDim.x`;
# `cuda.grid(1)` is blockIdx.x * blockDim.x + threadIdx.x, its index in the whole grid.

# %%
@cuda.jit
def where_am_i(block, thread, grid):
    i = cuda.grid(1)            # each thread writes element i of each output
    if i < grid.size:           # the last block may have threads past the end
        block[i] = cuda.blockIdx.x
        thread[i] = cuda.threadIdx.x
        grid[i] = i


n = 10
block, thread, grid = (np.full(n, -1) for _ in range(3))
where_am_i[3, 4](block, thread, grid)  # 3 blocks of 4 threads: 12 threads for 10 elements
print("block ", block, "\nthread", thread, "\ngrid  ", grid)
assert list(grid) == list(range(n)) and list(block) == [i // 4 for i in range(n)]

# %% [markdown]
# ## A grid-stride loop: any size, any launch
#
# Rather than one thread per element, each thread steps through the array by the size of
# the whole grid (`cuda.gridsize(1)`), so a fixed launch covers any n.

# %%
@cuda.jit
def add(x, y, out):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):   # thread t handles t, t + stride, ...
        out[i] = x[i] + y[i]


x, y = np.arange(37, dtype=np.float32), np.ones(37, dtype=np.float32)
out = np.zeros_like(x)
add[2, 8](x, y, out)                         # 16 threads for 37 elements
assert np.array_equal(out, x + y)
print("37 elements added by 16 threads")

# %% [markdown]
# ## Shared memory: a tiled matmul
#
# Global memory is slow; each block has a small fast scratchpad, `cuda.shared.array`.
# Each thread computes C[i, j] of a TILE × TILE block of C: for each tile step, the block's
# threads load one tile of A and one of B into shared memory together (one element each),
# wait for each other (`cuda.syncthreads()`), and then all read the tiles TILE times.
# Every element of A and B is fetched from global memory once per tile instead of once per
# multiply.

# %%
TILE = 4


@cuda.jit
def matmul_tiled(a, b, c):
    sa = cuda.shared.array((TILE, TILE), numba.float32)
    sb = cuda.shared.array((TILE, TILE), numba.float32)
    ty, tx = cuda.threadIdx.y, cuda.threadIdx.x
    j, i = cuda.grid(2)            # this thread's C[i, j]: x runs along columns, y rows
    acc = numba.float32(0.0)
    for t in range((a.shape[1] + TILE - 1) // TILE):
        p = t * TILE
        sa[ty, tx] = a[i, p + tx] if i < a.shape[0] and p + tx < a.shape[1] else 0
        sb[ty, tx] = b[p + ty, j] if p + ty < b.shape[0] and j < b.shape[1] else 0
        cuda.syncthreads()                                # the tiles are complete
        for q in range(TILE):
            acc += sa[ty, q] * sb[q, tx]
        cuda.syncthreads()                                # done reading before reloading
    if i < c.shape[0] and j < c.shape[1]:
        c[i, j] = acc


rng = np.random.default_rng(0)
a = rng.standard_normal((6, 5)).astype(np.float32)       # sizes not multiples of TILE
b = rng.standard_normal((5, 7)).astype(np.float32)
c = np.zeros((6, 7), dtype=np.float32)
blocks = (math.ceil(7 / TILE), math.ceil(6 / TILE))  # (x: column tiles, y: row tiles)
matmul_tiled[blocks, (TILE, TILE)](a, b, c)
print("C = A @ B with", blocks, "blocks of", (TILE, TILE), "threads; max error",
      np.abs(c - a @ b).max())
assert np.allclose(c, a @ b, atol=1e-5)

# %% [markdown]
# ## Softmax: one block per row, a reduction in shared memory
#
# Each block owns one row. Its threads first find the row's maximum together (each takes a
# strided share of the row, then a tree reduction halves the active threads each step),
# then the sum of exp(x - max) the same way, then each writes its share of the output.

# %%
THREADS = 8


@cuda.jit(device=True)  # a device function: called from kernels, not launched
def block_reduce(buf, t, is_max):
    """Reduce buf[0:THREADS] into buf[0] (a tree: 8 -> 4 -> 2 -> 1 active threads)."""
    step = THREADS // 2
    while step > 0:
        if t < step:
            buf[t] = max(buf[t], buf[t + step]) if is_max else buf[t] + buf[t + step]
        cuda.syncthreads()
        step //= 2


@cuda.jit
def softmax_rows(x, y):
    row, t = cuda.blockIdx.x, cuda.threadIdx.x
    buf = cuda.shared.array(THREADS, numba.float32)
    m = -math.inf
    for j in range(t, x.shape[1], THREADS):          # this thread's share of the row
        m = max(m, x[row, j])
    buf[t] = m
    cuda.syncthreads()
    block_reduce(buf, t, True)
    m = buf[0]
    cuda.syncthreads()                               # all have read the max
    s = 0.0
    for j in range(t, x.shape[1], THREADS):
        s += math.exp(x[row, j] - m)
    buf[t] = s
    cuda.syncthreads()
    block_reduce(buf, t, False)
    for j in range(t, x.shape[1], THREADS):
        y[row, j] = math.exp(x[row, j] - m) / buf[0]


x = (rng.standard_normal((3, 13)) * 30).astype(np.float32)   # large scores: stability matters
y = np.zeros_like(x)
softmax_rows[x.shape[0], THREADS](x, y)
reference = ops.kernel("softmax", backend="numpy")(x)
print("rows sum to", y.sum(axis=1), "| max difference from the engine's reference",
      np.abs(y - reference).max())
assert np.allclose(y, reference, atol=1e-6)

# %% [markdown]
# ## The engine's own CUDA device
#
# The engine's "cuda" device runs kernels built the same way (ops/cuda/: a block per row,
# the reductions in shared memory, float32 and float64). `ops.kernel("softmax", "cuda")`
# is its softmax; `ops.to_device` copies an array onto the (here simulated) GPU and
# `ops.to_host` copies the answer back. A tensor made with `device="cuda"` uses the same
# kernel through `F.softmax`. The engine's numpy reference judges both, as above.

# %%
import engine.functional as F
from engine import Tensor

x_gpu = ops.to_device(x, "cuda")                     # the scores of the cell above
y_gpu = ops.kernel("softmax", "cuda")(x_gpu)
print(ops.get_device("cuda"), "| on the device:", type(y_gpu).__name__, y_gpu.shape,
      "| max difference from the reference", np.abs(ops.to_host(y_gpu) - reference).max())
assert np.allclose(ops.to_host(y_gpu), reference, atol=1e-6)
t = F.softmax(Tensor(x, device="cuda"), axis=-1)     # the same kernel, under a tensor
assert t.device == "cuda" and np.allclose(ops.to_host(t.data), reference, atol=1e-6)

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 13 --exercise` writes a copy with these parts removed;
# `attn tutorial 13 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `scale_rows`: a kernel where each thread computes out[i, j] = x[i, j] * s[i] for the
#    elements of a 2-D grid-stride loop (`cuda.grid(2)`, `cuda.gridsize(2)`), so any
#    launch covers any shape.

# %%
@cuda.jit
def scale_rows(x, s, out):
    # >>> exercise 1: two nested grid-stride loops (rows along y, columns along x)
    j0, i0 = cuda.grid(2)
    sj, si = cuda.gridsize(2)
    for i in range(i0, x.shape[0], si):
        for j in range(j0, x.shape[1], sj):
            out[i, j] = x[i, j] * s[i]
    # <<< exercise 1


xs = rng.standard_normal((5, 7)).astype(np.float32)
ss = rng.standard_normal(5).astype(np.float32)
outs = np.zeros_like(xs)
scale_rows[(2, 1), (2, 2)](xs, ss, outs)                  # 4 x 2 threads for 7 x 5 elements
assert np.allclose(outs, xs * ss[:, None]), "scale_rows missed or mis-scaled elements"
print("scale_rows covered a (5, 7) array with 8 threads")
