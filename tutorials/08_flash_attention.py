# %% [markdown]
# # 8. Flash attention step by step: naive, tiled with a running max and sum, the kernel
#
# Tutorial 7 called the fused kernel and measured its memory. Here we write it. Naive
# attention makes the whole (T, T) score matrix, softmaxes each row, and multiplies by V:
# memory grows with T². Flash attention never makes that matrix: it walks the keys in
# tiles and keeps, per query row, a *running* max and a *running* sum of exponentials,
# rescaling what it has accumulated whenever the max grows (the online softmax). We build
# that in numpy, draw the rescaling, check the engine's Numba kernel against both, then
# time them and measure their memory from T = 256 to 2048.
#
# Set `ATTN_TUTORIAL_QUICK=1` to measure at T = 256 and 512 only (the tests do; the
# lesson about T² shows best at the full sizes).

# %%
import os
import time
import tracemalloc

import numpy as np

import ops
import ops.runtime

# The process tuning `attn` and the trainer apply (Numba's threading layer, one BLAS
# thread): importing the engine leaves your process alone, so a program that times
# kernels asks for it. See ops/runtime.py.
ops.runtime.configure()

QUICK = os.environ.get("ATTN_TUTORIAL_QUICK") == "1"
rng = np.random.default_rng(0)


def naive_attention(q, k, v, causal=True):
    """q, k, v (T, D) -> (T, D): the whole (T, T) matrix, then a stable row softmax."""
    T, D = q.shape
    s = q @ k.T / np.sqrt(D)                                  # (T, T) scores
    if causal:
        s = np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)  # no future keys
    p = np.exp(s - s.max(axis=-1, keepdims=True))             # (T, T)
    return (p / p.sum(axis=-1, keepdims=True)) @ v


T, D = 12, 8
q, k, v = (rng.standard_normal((T, D)) for _ in range(3))    # float64 for the reference
ref = naive_attention(q, k, v)
print("naive:", ref.shape, "| first row attends only to key 0, so it equals v[0]:",
      np.allclose(ref[0], v[0]))
assert np.allclose(ref[0], v[0])

# %% [markdown]
# ## The online softmax
#
# For one query row with scores s₁ … s_T: softmax needs the max m (for stability) and the
# sum l = Σ exp(sⱼ - m), both over the *whole* row. Reading the keys a tile at a time, keep
# the max so far m and the sum so far l. When a tile brings a larger max m', everything
# accumulated so far was computed against the old m, and is too large by exp(m' - m): so
# multiply l, and the unnormalised output acc = Σ exp(sⱼ - m) vⱼ, by α = exp(m - m') before
# adding the tile. After the last tile, out = acc / l, exactly as if we had seen the whole
# row at once. (The kernel also keeps lse = m + log l, all its backward pass needs.)

# %%
def tiled_attention(q, k, v, block_q=4, block_k=4, causal=True, trace=None):
    """The same result as naive_attention, never holding more than a (block_q, block_k)
    tile of scores. `trace` (a list) collects row 0's (tile, m, alpha, l) of the last
    query block, for the drawing below."""
    T, D = q.shape
    out = np.empty_like(q)
    for i0 in range(0, T, block_q):
        qi = q[i0:i0 + block_q]                               # (bq, D)
        m = np.full(len(qi), -np.inf)                         # running max per row
        l = np.zeros(len(qi))                                 # running sum per row
        acc = np.zeros_like(qi)                               # running unnormalised output
        for j0 in range(0, T, block_k):
            if causal and j0 > i0 + len(qi) - 1:
                break                                         # the whole tile is in the future
            s = qi @ k[j0:j0 + block_k].T / np.sqrt(D)        # (bq, bk): one tile of scores
            if causal:
                rows, cols = np.arange(i0, i0 + len(qi)), np.arange(j0, j0 + s.shape[1])
                s = np.where(cols[None, :] <= rows[:, None], s, -np.inf)
            m_new = np.maximum(m, s.max(axis=1))
            alpha = np.exp(m - m_new)                         # how much the old max overstated
            p = np.exp(s - m_new[:, None])                    # (bq, bk)
            l = alpha * l + p.sum(axis=1)
            acc = alpha[:, None] * acc + p @ v[j0:j0 + block_k]
            m = m_new
            if trace is not None and i0 + block_q >= T:
                trace.append((j0 // block_k, m[-1], alpha[-1], l[-1]))
        out[i0:i0 + len(qi)] = acc / l[:, None]
    return out


trace = []
tiled = tiled_attention(q, k, v, trace=trace)
print("max |tiled - naive| =", f"{np.abs(tiled - ref).max():.1e}")
assert np.allclose(tiled, ref, rtol=1e-12, atol=1e-12)

# %% [markdown]
# ## The rescaling, drawn
#
# The last query row (it sees all 12 keys) reads them in three tiles of four. Each line is
# one tile: the running max after it, the factor α that shrank what came before, and the
# running sum. The bar is l: it drops whenever the max jumps, then grows again (α is 0 on
# the first tile: there is nothing before it to rescale). The final l equals the sum
# computed from the whole row at once.

# %%
s_row = q[-1] @ k.T / np.sqrt(D)                              # the whole row, for the check
print(f"{'tile':>4} {'max so far':>11} {'alpha':>7} {'sum so far':>11}")
for tile, m_, alpha, l_ in trace:
    print(f"{tile:>4} {m_:>11.3f} {alpha:>7.3f} {l_:>11.3f}  " + "#" * round(8 * l_))
m_, l_ = trace[-1][1], trace[-1][3]
print(f"whole row: max {s_row.max():.3f}, sum {np.exp(s_row - s_row.max()).sum():.3f}")
assert np.isclose(m_, s_row.max()) and np.isclose(l_, np.exp(s_row - m_).sum())

# %% [markdown]
# ## The engine's Numba kernel
#
# `ops/attention_cpu.py` is this loop, made fast: tiles of 64 queries by 256 keys, each
# tile's scores one small matrix product on the register-tiled matmul block of tutorial 5,
# a vectorised exp, and a thread per run of (head, query tile). It takes (B, H, T, D)
# float32 and returns the output and the per-row lse.
#
# **First run:** this cell compiles the kernel, which can take a minute on a small machine
# (Numba caches it on disk, so the next run starts in about a second).

# %%
kernel = ops.kernel("attention", backend="numba")
q32, k32, v32 = (a.astype(np.float32)[None, None] for a in (q, k, v))   # (1, 1, T, D)
o, lse = kernel(q32, k32, v32, True, D ** -0.5, None)
s_all = np.where(np.tril(np.ones((T, T), dtype=bool)), q @ k.T / np.sqrt(D), -np.inf)
lse_ref = np.log(np.exp(s_all - s_all.max(1, keepdims=True)).sum(1)) + s_all.max(1)
print("kernel:", o.shape, "| max |kernel - naive| =", f"{np.abs(o[0, 0] - ref).max():.1e}")
assert np.allclose(o[0, 0], ref, atol=1e-5) and np.allclose(o[0, 0], tiled, atol=1e-5)
assert np.allclose(lse[0, 0], lse_ref, atol=1e-5)

# %% [markdown]
# ## Time and memory, T = 256 to 2048
#
# The three versions on one head of size 64 (causal), each timed best of three after a
# warm-up, and the peak of the numpy memory each call allocates (tracemalloc counts numpy
# arrays; the kernel's small per-thread tiles are included). Naive memory grows four times
# each time T doubles; the tiled forms grow only with their output. Timings on a shared
# machine are noisy: read the ratios, not the digits.

# %%
def measure(fn, *args):
    fn(*args)                                                 # warm up (and compile)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return min(times), peak


versions = {"naive numpy": lambda q, k, v: naive_attention(q[0, 0], k[0, 0], v[0, 0]),
            "tiled numpy": lambda q, k, v: tiled_attention(q[0, 0], k[0, 0], v[0, 0], 128, 128),
            "numba kernel": lambda q, k, v: kernel(q, k, v, True, 64 ** -0.5, None)}
results = {}
for T in ((256, 512) if QUICK else (256, 512, 1024, 2048)):
    qkv = [rng.standard_normal((1, 1, T, 64)).astype(np.float32) for _ in range(3)]
    results[T] = {name: measure(fn, *qkv) for name, fn in versions.items()}
    naive_t, naive_m = results[T]["naive numpy"]
    for name, (sec, peak) in results[T].items():
        print(f"T={T:<5} {name:<13} {sec * 1e3:8.2f} ms ({naive_t / sec:5.1f}x naive's speed)"
              f"  peak {peak / 2**20:7.2f} MiB ({peak / naive_m:5.2f}x naive's memory)")
first, last = min(results), max(results)
growth = results[last]["naive numpy"][1] / results[first]["naive numpy"][1]
print(f"T x{last // first}: naive memory x{growth:.1f}, kernel memory "
      f"x{results[last]['numba kernel'][1] / results[first]['numba kernel'][1]:.1f}")
assert growth > (last // first) ** 2 / 2                     # quadratic in T
assert results[last]["numba kernel"][1] < results[last]["naive numpy"][1] / 4

# %% [markdown]
# ## Exercises
#
# Fill in the code between the `# >>> exercise N` and `# <<< exercise N` lines.
# `attn tutorial 8 --exercise` writes a copy with these parts removed;
# `attn tutorial 8 --check FILE` runs this tutorial's asserts against your version.
#
# 1. `online_logsumexp(row, block)`: the log of Σ exp(row) read `block` entries at a time,
#    with a running max and sum only (no whole-row max). It is the lse the kernel keeps.
# 2. `merge(m1, l1, m2, l2)`: two partial (max, sum) pairs over disjoint keys combined into
#    the pair over all of them: how two threads that each saw half the keys would join.

# %%
def online_logsumexp(row, block):
    # >>> exercise 1: running max m and sum l over the blocks of `row`; return m + log(l)
    m, l = -np.inf, 0.0
    for j in range(0, len(row), block):
        m_new = max(m, row[j:j + block].max())
        l = l * np.exp(m - m_new) + np.exp(row[j:j + block] - m_new).sum()
        m = m_new
    return m + np.log(l)
    # <<< exercise 1


def merge(m1, l1, m2, l2):
    # >>> exercise 2: return (m, l) for the union of both key sets
    m = max(m1, m2)
    return m, l1 * np.exp(m1 - m) + l2 * np.exp(m2 - m)
    # <<< exercise 2


row = rng.standard_normal(50) * 20                            # large scores: stability matters
whole = row.max() + np.log(np.exp(row - row.max()).sum())
assert np.isclose(online_logsumexp(row, 7), whole), "online_logsumexp is not log sum exp"
halves = [(r.max(), np.exp(r - r.max()).sum()) for r in (row[:20], row[20:])]
m_, l_ = merge(*halves[0], *halves[1])
assert np.isclose(m_ + np.log(l_), whole), "merge does not give the whole row's lse"
print("online log-sum-exp and merge agree with the whole row:", round(whole, 4))
