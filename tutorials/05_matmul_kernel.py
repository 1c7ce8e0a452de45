# %% [markdown]
# # 5. A matmul kernel in Numba: from three loops to a packed, register-tiled kernel
#
# C = A @ B is the hot spot of every model here: each linear layer is one, forward and
# backward. We write it five ways and time each against numpy (OpenBLAS). Every version is
# checked against numpy; the timings are printed for you to read, never asserted (this
# machine is shared and noisy, and the sizes are kept small so the tutorial runs fast).
#
# **First run:** the engine's Numba kernels compile the first time a cell uses them
# (seconds to a minute on a small machine, with no output meanwhile); they are cached on
# disk, so later runs start at once.

# %%
import os
import time

import numpy as np
from numba import njit, prange

import ops
import ops.runtime

# The process tuning `attn` and the trainer apply (Numba's threading layer, one BLAS
# thread): importing the engine leaves your process alone, so a program that times
# kernels asks for it. See ops/runtime.py.
ops.runtime.configure()

QUICK = os.environ.get("ATTN_TUTORIAL_QUICK") == "1"  # the tests' small sizes
rng = np.random.default_rng(0)


def best_time(fn, *args, repeat=3):
    """The fastest of `repeat` runs, in seconds (after one warm-up call that also compiles)."""
    fn(*args)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return min(times)


def rate(flops_per_second):
    """A rate in the unit that keeps it readable: 3.1 MFLOP/s, not 0.00 GFLOP/s."""
    for unit, scale in (("GFLOP/s", 1e9), ("MFLOP/s", 1e6), ("kFLOP/s", 1e3)):
        if flops_per_second >= scale:
            return f"{flops_per_second / scale:7.1f} {unit}"
    return f"{flops_per_second:7.1f} FLOP/s"


def report(name, seconds, n):
    """One timing line: the time and the rate (2 n^3 multiply-adds' worth of FLOPs)."""
    took = f"{seconds * 1e3:9.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:9.1f} us"
    print(f"{name:<36} n={n:<4} {took}  {rate(2 * n ** 3 / seconds)}")
    return seconds


n = 32
A = rng.standard_normal((n, n)).astype(np.float32)
B = rng.standard_normal((n, n)).astype(np.float32)
report("numpy (OpenBLAS)", best_time(np.matmul, A, B), n)

# %% [markdown]
# ## 1. Three loops in plain Python
#
# The definition: C[i, j] = Σ_p A[i, p] B[p, j]. Every multiply-add is interpreted
# bytecode: about a hundred nanoseconds each, a million times slower than the hardware.

# %%
def matmul_python(a, b):
    m, k = a.shape
    c = np.zeros((m, b.shape[1]), dtype=a.dtype)
    for i in range(m):
        for j in range(b.shape[1]):
            s = 0.0
            for p in range(k):
                s += a[i, p] * b[p, j]
            c[i, j] = s
    return c


assert np.allclose(matmul_python(A, B), A @ B, atol=1e-4)
report("python loops i, j, p", best_time(matmul_python, A, B, repeat=1), n)
assert rate(2 * 32 ** 3 / 0.01).strip() == "6.6 MFLOP/s"  # a slow row still reads as a rate

# %% [markdown]
# ## 2. The same loops, compiled
#
# `numba.njit` compiles the same source to machine code. Now the problem is memory: the
# inner loop walks down a column of B, a stride of n floats per step, so nearly every load
# misses the cache line the previous one brought in.

# %%
matmul_ijp = njit(matmul_python)
n = 256
A = rng.standard_normal((n, n)).astype(np.float32)
B = rng.standard_normal((n, n)).astype(np.float32)
assert np.allclose(matmul_ijp(A, B), A @ B, atol=1e-3)
report("numba i, j, p", best_time(matmul_ijp, A, B), n)
report("numpy (OpenBLAS)", best_time(np.matmul, A, B), n)

# %% [markdown]
# ## 3. Reorder the loops: i, p, j
#
# Make j the innermost index: C[i, :] += A[i, p] * B[p, :] reads a row of B and writes a
# row of C, both contiguous. The compiler can now vectorise the inner loop (8 float32 lanes
# per AVX2 instruction).

# %%
@njit(fastmath=True)
def matmul_ipj(a, b):
    m, k = a.shape
    n = b.shape[1]
    c = np.zeros((m, n), dtype=a.dtype)
    for i in range(m):
        for p in range(k):
            aip = a[i, p]
            for j in range(n):  # contiguous in b and c: vectorised
                c[i, j] += aip * b[p, j]
    return c


assert np.allclose(matmul_ipj(A, B), A @ B, atol=1e-3)
report("numba i, p, j (vectorised)", best_time(matmul_ipj, A, B), n)

# %% [markdown]
# ## 4. Tiles and threads
#
# For large matrices the rows of B no longer fit in the cache between uses: at n = 1024, B
# is 4 MiB and i, p, j streams all of it once per row of C. Blocking cuts the work into
# tiles (here BI x BP of A against BP rows of B, 512 KiB) that stay in cache while they
# are reused, and `prange` hands row blocks of C to different threads (each thread owns its
# rows of C: no two threads write the same element). At n = 256 B fits in cache anyway and
# the two are even, so we compare them at 1024, where the lesson can show. The time ratio
# printed is this machine's, today (threads on a busy machine wait for a core, and a fast
# L3 hides some of the traffic); the traffic itself is counted after it.

# %%
BI, BP = 32, 128


@njit(parallel=True, fastmath=True)
def matmul_tiled(a, b):
    m, k = a.shape
    n = b.shape[1]
    c = np.zeros((m, n), dtype=a.dtype)
    for ib in prange((m + BI - 1) // BI):  # each thread: BI rows of C
        for p0 in range(0, k, BP):
            for i in range(ib * BI, min((ib + 1) * BI, m)):
                for p in range(p0, min(p0 + BP, k)):
                    aip = a[i, p]
                    for j in range(n):
                        c[i, j] += aip * b[p, j]
    return c


assert np.allclose(matmul_tiled(A, B), A @ B, atol=1e-3)
big = 256 if QUICK else 1024
A3, B3 = (rng.standard_normal((big, big)).astype(np.float32) for _ in range(2))
t_ipj = report("numba i, p, j (vectorised)", best_time(matmul_ipj, A3, B3), big)
t_tiled = report("numba tiled + prange", best_time(matmul_tiled, A3, B3), big)
print(f"n={big}: tiled + prange takes {t_tiled / t_ipj:.2f}x the time of i, p, j")
# What tiling changes for certain, whatever the machine's load: how much of B comes from
# beyond the L2 cache at n = 1024 (B is 4 MiB, L2 about 1 MiB). i, p, j reads all of B once
# per row of C; a BP-row panel of B stays in cache while the BI rows of a block use it, so
# the tiled form reads B once per BI rows.
N = 1024
streamed = {"i, p, j": N * N * N * 4, "tiled": -(-N // BI) * N * N * 4}
print(f"n={N}: B read from beyond L2: i, p, j {streamed['i, p, j'] / 2**20:,.0f} MiB, tiled "
      f"{streamed['tiled'] / 2**20:,.0f} MiB ({streamed['i, p, j'] // streamed['tiled']}x less)")
assert streamed["i, p, j"] == BI * streamed["tiled"]

# %% [markdown]
# ## 5. The engine's kernel: packed panels and a register tile
#
# `ops/matmul_cpu.py` goes the rest of the way, as BLIS and GotoBLAS do: it copies
# ("packs") a KC x 16 panel of B into a contiguous buffer that stays in L1, and its
# micro-kernel keeps a 6 x 16 tile of C in twelve 256-bit registers, doing 6 x 2 fused
# multiply-adds per step of p with no loads or stores of C in between. Numba's compiler
# does not do that on its own, so the kernel spells the vector operations out with LLVM
# intrinsics. (`attn bench kernels` measures it on the model's real shapes.)

# %%
engine_matmul = ops.kernel("matmul", backend="numba")
assert np.allclose(engine_matmul(A, B), A @ B, atol=1e-3)
for size in (256, 512):
    A2 = rng.standard_normal((size, size)).astype(np.float32)
    B2 = rng.standard_normal((size, size)).astype(np.float32)
    report("engine (packed, 6x16 register tile)", best_time(engine_matmul, A2, B2), size)
    report("numpy (OpenBLAS)", best_time(np.matmul, A2, B2), size)

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 5 --exercise` writes a copy with these parts removed;
# `attn tutorial 5 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `matmul_tiles(a, b, tile)`: C = A @ B computed tile by tile: for each (tile × tile)
#    block of C, sum the products of the matching blocks of A and B (numpy `@` on the
#    blocks is fine). Sizes need not be multiples of the tile.

# %%
def matmul_tiles(a, b, tile):
    # >>> exercise 1: return C, built one (tile x tile) block at a time
    m, k = a.shape
    c = np.zeros((m, b.shape[1]), dtype=a.dtype)
    for i in range(0, m, tile):
        for j in range(0, b.shape[1], tile):
            for p in range(0, k, tile):
                c[i:i + tile, j:j + tile] += a[i:i + tile, p:p + tile] @ b[p:p + tile, j:j + tile]
    return c
    # <<< exercise 1


a_, b_ = rng.standard_normal((37, 29)), rng.standard_normal((29, 41))
assert np.allclose(matmul_tiles(a_, b_, 8), a_ @ b_), "tiled product differs from a @ b"
print("tiled product == a @ b")
