"""The BLAS thread policy: numpy's OpenBLAS gets one thread while the numba backend is the
process default, so its worker threads never spin against our kernels. Applied only by
`ops.runtime.configure()`, never on import.

Why (measured on the README's 2-core machine by benchmarks/blas_policy.py): after one numpy
BLAS call (`a @ b` on arrays, or a reference-form fallback such as attention with an explicit
mask), OpenBLAS's threads spin for about a second, and a 512^3 product on our Numba kernels
right after it took 2.9-3.6 ms instead of 1.6-1.9 ms; with OpenBLAS on one thread, 1.2-1.6 ms.
The numba backend's own hot path calls no BLAS; what pays is the user's numpy in the same
process, which loses its second thread (numpy's 512^3 product: 1.2 -> 2.2-2.5 ms).

ENGINE_BLAS_THREADS overrides: a number N gives BLAS N threads, "keep" leaves BLAS alone (the
benchmarks' numpy baselines run in their own processes with "keep"). With ENGINE_BACKEND=numpy
BLAS is left alone too: the numpy backend is BLAS. threadpoolctl (a dependency) does the work,
for OpenBLAS, MKL and BLIS alike.
"""

import os

from ops.registry import BACKENDS


def blas_threads_wanted():
    """BLAS threads to set, or None to leave BLAS as it is."""
    value = os.environ.get("ENGINE_BLAS_THREADS", "").strip().lower()
    if value == "keep":
        return None
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"ENGINE_BLAS_THREADS={value!r}: use a positive number or 'keep'")
        return int(value)
    backend = os.environ.get("ENGINE_BACKEND", BACKENDS[0]).strip().lower()
    return 1 if backend == "numba" else None


def apply_policy():
    """Limit BLAS threads as `blas_threads_wanted` says (ops.runtime.configure calls it);
    returns the number of threads set, or None when BLAS was left alone or threadpoolctl
    is missing."""
    threads = blas_threads_wanted()
    if threads is None:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a dependency, but a missing one must not stop the engine
        return None
    threadpool_limits(limits=threads, user_api="blas")
    return threads


def blas_info():
    """[{'library', 'version', 'threads'}] for each BLAS loaded in the process (attn info)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"library": i.get("internal_api"), "version": i.get("version"),
             "threads": i.get("num_threads")} for i in threadpool_info()
            if i.get("user_api") == "blas"]

