"""Deferred launches, batched into multi-tensor kernels: a copy made by `asarray(copy=True)`
(the engine copies every parameter's gradient so) and the AdamW update of one parameter are
queued here instead of launched; the whole queue then runs as one launch per kind (29 AdamW
updates of the tiny GPT: one launch, not 29), as PyTorch's foreach / fused optimizers do.

Correctness: every array a queued launch reads or writes has its allocator block marked
`pending`; reading `.base` of such an array (which every kernel launch, view, host copy and
in-place write does) runs the queue first, and queueing work on an already pending block
runs the queue before queueing. So nobody sees memory before its queued writes, and the
queue holds its arrays alive (no block is reused under it). The queued launches of one flush
touch disjoint memory, so their order inside one launch does not matter.

A multi-tensor kernel reaches its arrays through one typed segment buffer per role (every
array of a dtype in an allocator segment is a view of it: ops/cuda/memory.py) and a tuple
of element offsets and sizes, one row per array (kernel parameters: no table to copy in);
block row y of the grid works on array y, grid-striding over its elements.
"""

import math

from numba import cuda

from ops.cuda import launch
from ops.cuda.launch import factory

# Arrays per launch: the offset tuple is a kernel parameter (4 KiB at most on older CUDA);
# the row count is rounded up to a power of two (empty rows) to compile few variants.
MAX_ROWS = 32
_PENDING = []


# Kinds of queued launch, in the order a flush runs them: a later kind may read what an
# earlier one writes (a copy of a column sum, an update from a copied gradient), never the
# reverse, so queueing only runs the queue first when that order would be broken.
RANKS = {"colsum": 1, "copy": 2, "scale": 3, "adamw": 4}
READ = 1  # Block.pending: 0 nothing queued; READ: read by queued launches; 10 + rank:
#           written by a queued launch of that rank


def _mark(kind, reads, writes):
    """Flags the blocks; runs the queue first when the new launch would write memory the
    queue touches, or read memory a queued launch of the same or a later kind writes."""
    rank = RANKS[kind]
    if any(a.owner.pending for a in writes) or any(a.owner.pending >= 10 + rank
                                                  for a in reads):
        flush()
    for a in reads:
        a.owner.pending = a.owner.pending or READ
    for a in writes:
        a.owner.pending = 10 + rank


def colsum(x, out):
    """Queue out (C,) = the column sums of C-contiguous x viewed as (R, C)."""
    _mark("colsum", (x,), (out,))
    _PENDING.append(("colsum", (out, x), ()))
    return out


def copy(src, dst):
    """Queue dst = src (both C-contiguous, one shape and dtype; dst new); returns dst."""
    _mark("copy", (src,), (dst,))
    _PENDING.append(("copy", (dst, src), ()))
    return dst


def scale(x, factor, out):
    """Queue out = x * factor (C-contiguous, x's dtype; factor a Python number): gradient
    clipping scales every gradient so, and the queue does them in one launch."""
    _mark("scale", (x,), (out,))
    _PENDING.append(("scale", (out, x), (factor,)))
    return out


def adamw(param, grad, m, v, hyper):
    """Queue param, m, v -= the AdamW update (hyper: the 8 constants of adamw_constants)."""
    _mark("adamw", (grad,), (param, m, v))
    _PENDING.append(("adamw", (param, grad, m, v), tuple(hyper)))


def flush():
    """Run every queued launch now: one multi-tensor launch per kind, dtype and segments."""
    if not _PENDING:
        return
    queued = list(_PENDING)
    _PENDING.clear()
    for _, arrays, _ in queued:
        for a in arrays:
            a.owner.pending = 0
    groups = {}
    for kind, arrays, hyper in queued:
        key = (kind, arrays[0].dtype.name) + tuple(a.owner.segment.index for a in arrays)
        groups.setdefault(key, []).append((arrays, hyper))
    for key, rows in sorted(groups.items(), key=lambda kv: RANKS[kv[0][0]]):
        for at in range(0, len(rows), MAX_ROWS):
            _RUN[key[0]](rows[at:at + MAX_ROWS])


def padded(n):
    return max(2, 1 << (n - 1).bit_length())


def _grid(rows):
    most = max(a[0].size for a, _ in rows)
    return (launch.blocks(most), padded(len(rows))), launch.THREADS


def _run_copies(rows):
    (dst, src), _ = rows[0]
    tab = []
    for (d, s), _ in rows:
        tab += [d.offset, s.offset, d.size]
    tab += [0, 0, 0] * (padded(len(rows)) - len(rows))
    _copy_kernel(dst.dtype.name, len(tab))[_grid(rows)](dst._base, src._base, tuple(tab))


def adamw_constants(lr, beta1, beta2, eps, weight_decay, step):
    """The 8 constants of one AdamW update: (b1, 1-b1, b2, 1-b2, 1-lr*wd, lr/(1-b1^t),
    1/(1-b2^t), eps)."""
    return (beta1, 1 - beta1, beta2, 1 - beta2, 1 - lr * weight_decay,
            lr / (1 - beta1 ** step), 1 / (1 - beta2 ** step), eps)


def _run_adamw(rows):
    (p, g, m, v), _ = rows[0]
    sets, tab = [], []
    for (pi, gi, mi, vi), hyper in rows:
        if hyper not in sets:
            sets.append(hyper)
        tab += [pi.offset, gi.offset, mi.offset, vi.offset, pi.size, sets.index(hyper)]
    tab += [0] * 6 * (padded(len(rows)) - len(rows))
    t = p.dtype.type
    consts = [t(x) for h in sets for x in h] + [t(0)] * 8 * (padded(len(sets)) - len(sets))
    _adamw_kernel(p.dtype.name, len(tab), len(consts))[_grid(rows)](
        p._base, g._base, m._base, v._base, tuple(tab), tuple(consts))


def _run_colsums(rows):
    (out, x), _ = rows[0]
    tab = []
    for (o, xi), _ in rows:
        tab += [o.offset, xi.offset, xi.size // max(o.size, 1), o.size]
    tab += [0, 0, 0, 0] * (padded(len(rows)) - len(rows))
    most = max(o.size for (o, _), _ in rows)
    grid = (launch.blocks(most), padded(len(rows))), launch.THREADS
    _colsum_kernel(out.dtype.name, len(tab))[grid](out._base, x._base, tuple(tab))


def _run_scales(rows):
    (out, x), _ = rows[0]
    t = out.dtype.type
    tab, factors = [], []
    for (o, xi), (factor,) in rows:
        tab += [o.offset, xi.offset, o.size]
        factors.append(t(factor))
    pad = padded(len(rows)) - len(rows)
    tab += [0, 0, 0] * pad
    factors += [t(0)] * pad
    _scale_kernel(out.dtype.name, len(tab))[_grid(rows)](out._base, x._base, tuple(tab),
                                                         tuple(factors))


_RUN = {"colsum": _run_colsums, "copy": _run_copies, "scale": _run_scales,
        "adamw": _run_adamw}


@factory
def _scale_kernel(dtype, width):
    """out[o0 + i] = x[x0 + i] * f for i < n, (o0, x0, n) = row blockIdx.y of tab, f its
    factor (in the arrays' dtype: the product rounds as the elementwise multiply's)."""
    @launch.jit
    def kernel(out, x, tab, factors):
        r = 3 * cuda.blockIdx.y
        o0, x0, n = tab[r], tab[r + 1], tab[r + 2]
        f = factors[cuda.blockIdx.y]
        for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, n,
                       cuda.gridDim.x * cuda.blockDim.x):
            out[o0 + i] = x[x0 + i] * f
    return kernel


@factory
def _colsum_kernel(dtype, width):
    """out[o0 + c] = sum over r < R of x[x0 + r * C + c], (o0, x0, R, C) = row blockIdx.y
    of tab: a thread per column, adding the rows in order (deterministic)."""
    T = launch.NUMBA_TYPES[dtype]

    @launch.jit
    def kernel(out, x, tab):
        r = 4 * cuda.blockIdx.y
        o0, x0, R, C = tab[r], tab[r + 1], tab[r + 2], tab[r + 3]
        for c in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, C,
                       cuda.gridDim.x * cuda.blockDim.x):
            acc = T(0)
            for i in range(R):
                acc += x[x0 + i * C + c]
            out[o0 + c] = acc
    return kernel


@factory
def _copy_kernel(dtype, width):
    """dst[d0 + i] = src[s0 + i] for i < n, (d0, s0, n) = row blockIdx.y of tab."""
    @launch.jit
    def kernel(dst, src, tab):
        r = 3 * cuda.blockIdx.y
        d0, s0, n = tab[r], tab[r + 1], tab[r + 2]
        for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, n,
                       cuda.gridDim.x * cuda.blockDim.x):
            dst[d0 + i] = src[s0 + i]
    return kernel


@factory
def _adamw_kernel(dtype, width, nconst):
    """AdamW on the arrays of row blockIdx.y of tab: (p, g, m, v offsets, n, constant set);
    h: the sets' 8 constants each, in the arrays' dtype (see adamw_constants)."""
    @launch.jit
    def kernel(p, g, m, v, tab, h):
        r = 6 * cuda.blockIdx.y
        po, go, mo, vo, n, c = tab[r], tab[r + 1], tab[r + 2], tab[r + 3], tab[r + 4], tab[r + 5]
        b1, c1, b2, c2 = h[8 * c], h[8 * c + 1], h[8 * c + 2], h[8 * c + 3]
        decay, step_size, inv_bc2, eps = h[8 * c + 4], h[8 * c + 5], h[8 * c + 6], h[8 * c + 7]
        for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, n,
                       cuda.gridDim.x * cuda.blockDim.x):
            gi = g[go + i]
            mi = b1 * m[mo + i] + c1 * gi
            vi = b2 * v[vo + i] + c2 * gi * gi
            m[mo + i] = mi
            v[vo + i] = vi
            p[po + i] = p[po + i] * decay - step_size * mi / (math.sqrt(vi * inv_bc2) + eps)
    return kernel


def pending():
    """How many launches are queued (for tests)."""
    return len(_PENDING)

