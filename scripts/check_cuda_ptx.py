"""Compile every cuda kernel to PTX with the real CUDA compiler (numba-cuda's NVVM; no GPU
needed) and check what the simulator cannot see:

- a float32 kernel must contain no float64 instruction or register (`.f64`): a float64
  constant or promotion in float32 code (a GPU runs float64 at 1/2 to 1/64 of the speed);
- the hot kernels (matmul, softmax, attention) must not spill to local memory
  (`ld.local` / `st.local` in the PTX: local arrays not promoted to registers), and when
  ptxas is at hand (the nvidia-cuda-nvcc wheel of the [cuda] extra) their machine code must
  report no spill bytes and fit the registers of one block (threads x registers <= 65536).

    python scripts/check_cuda_ptx.py              # cc 7.5 and 9.0, float32 and float64
    python scripts/check_cuda_ptx.py --cc 9.0 --only matmul

Run without NUMBA_ENABLE_CUDASIM (the simulator has no compiler). Needs numba-cuda with its
CUDA wheels: pip install -e ".[cuda]". Exit status 1 when any check fails.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from numba import config, cuda, types  # (after the path set-up)

from ops.cuda import arrays as plumbing
from ops.cuda import (
    attention,
    deferred,
    elementwise,
    embedding,
    indexing,
    launch,
    layernorm,
    loss,
    matmul,
    optim,
    reduce,
    softmax,
)
from ops.cuda import attention_flash as flash
from ops.cuda.launch import MAXDIM, NUMBA_TYPES

I, B, U = types.int64, types.boolean, types.uint64
TUP, TUP4 = types.UniTuple(types.int64, MAXDIM), types.UniTuple(types.int64, 4)
HOT = ("matmul", "matmul_nt", "matmul_tn", "softmax", "softmax_backward", "log_softmax",
       "log_softmax_backward", "attention", "attention_backward")
# float32 kernels allowed float64: libdevice's sinf / cosf / tanf reduce huge arguments
# (|x| > 105615, the Payne-Hanek path) with one float64 multiply; none is on a training path.
# cross_entropy_backward.scale (grad / count) and sum_squares accumulate in float64 on purpose.
F64_ALLOWED = {"unary.sin", "unary.cos", "unary.tan", "cross_entropy_backward.scale",
               "sum_squares"}


def threads(name):
    """Threads per block the launcher uses for kernel `name` (GPU settings)."""
    if name.startswith("matmul"):
        return (matmul.TILE_M // matmul.REG_M) * (matmul.TILE_N // matmul.REG_N)
    return launch.ROW_THREADS


def a(dtype, ndim=1):
    """A C-contiguous array type (what CudaArray.dev() and buffers give the kernels)."""
    return types.Array(NUMBA_TYPES[dtype], ndim, "C")


def cases(dt):
    """(name, kernel, signature) for every kernel at float dtype dt."""
    T = NUMBA_TYPES[dt]
    A4 = types.Array(T, 4, "A")  # attention's (B, H, T, D) strided views
    fl = (dt, 64, 64) + flash.shape(dt, 64, 64)  # the tiled attention at head size 64
    out = []
    for op in elementwise.UNARY:
        if op in ("bitwise_invert", "logical_not"):
            continue  # integer / bool only
        res = "bool" if op in elementwise.PREDICATES else dt
        out.append((f"unary.{op}", elementwise.unary_kernel(op, dt),
                    (a(res), a(dt), I, TUP, TUP, I, I)))
    for op in elementwise.BINARY:
        if op.startswith(("bitwise", "logical")):
            continue
        res = "bool" if op in elementwise.COMPARISONS else dt
        out.append((f"binary.{op}", elementwise.binary_kernel(op, dt),
                    (a(res), a(dt), I, TUP, a(dt), I, TUP, TUP, I, I)))
    C, S = elementwise.CONTIGUOUS, elementwise.SCALAR  # the no-division index modes
    out += [
        ("unary.exp.contiguous", elementwise.unary_kernel("exp", dt, C),
         (a(dt), a(dt), I, TUP, TUP, I, I)),
        ("binary.add.contiguous_scalar", elementwise.binary_kernel("add", dt, C, S),
         (a(dt), a(dt), I, TUP, a(dt), I, TUP, TUP, I, I)),
        ("copy.contiguous", elementwise.copy_kernel(dt, C, C),
         (a(dt), I, TUP, a(dt), I, TUP, TUP, I, I)),
        ("where", elementwise.where_kernel(dt),
         (a(dt), a("bool"), I, TUP, a(dt), I, TUP, a(dt), I, TUP, TUP, I, I)),
        ("copy", elementwise.copy_kernel(dt), (a(dt), I, TUP, a(dt), I, TUP, TUP, I, I)),
        ("fill", elementwise.fill_kernel(dt), (a(dt), T, I)),
        ("arange", elementwise.arange_kernel(dt), (a(dt), T, T, I)),
        ("argmax", reduce.argmax_kernel(dt, True), (a("int64"), a(dt), I, TUP, TUP, I, I, I)),
        ("take", indexing.take_kernel(dt), (a(dt), a(dt), I, a("int64"), I, I, I, I)),
        ("take_along_axis", indexing.along_kernel(dt),
         (a(dt), a(dt), I, a("int64"), I, I, I, I)),
        ("gather", indexing.gather_kernel(dt), (a(dt), a(dt), a("int64"), I)),
    ]
    for op in reduce.REDUCTIONS:
        if op in ("any", "all"):  # bool read as uint8, bool written
            out.append((f"reduce.{op}", reduce.reduce_kernel(op, "uint8"),
                        (a("bool"), a("bool"), I, TUP, TUP, I, I, I, types.uint8)))
            continue
        sig = (a(dt), a(dt), I, TUP, TUP, I, I, I, T)
        out += [(f"reduce.{op}", reduce.reduce_kernel(op, dt), sig),
                (f"reduce_thread.{op}", reduce.thread_reduce_kernel(op, dt), sig)]
        if op in ("sum", "prod"):
            out += [(f"cumulative_{op}", reduce.scan_kernel(op, dt, initial), sig)
                    for initial in (False, True)]
    for ta, tb, name in ((False, False, "matmul"), (False, True, "matmul_nt"),
                         (True, False, "matmul_tn")):
        out.append((name, matmul.matmul_kernel(dt, ta, tb), (a(dt, 3),) * 3 + (I, I, I)))
    for log, name in ((False, "softmax"), (True, "log_softmax")):
        out += [(name, softmax.softmax_kernel(dt, log), (a(dt, 2), a(dt, 2))),
                (name + "_backward", softmax.softmax_backward_kernel(dt, log), (a(dt, 2),) * 3)]
    out += [
        ("layer_norm", layernorm.layer_norm_kernel(dt),
         (a(dt, 2), a(dt), a(dt), a(dt, 2), a(dt), a(dt), T)),
        ("layer_norm_backward.dx", layernorm.layer_norm_dx_kernel(dt),
         (a(dt, 2), a(dt, 2), a(dt, 2), a(dt), a(dt), a(dt))),
        ("layer_norm_backward.dwdb", layernorm.layer_norm_dwdb_kernel(dt, layernorm.ROWS_PER_BLOCK),
         (a(dt, 2), a(dt, 2), a(dt, 2), a(dt, 2), a(dt), a(dt))),
        ("cross_entropy", loss._ce_forward_kernel(dt),
         (a(dt), a(dt), a(dt, 2), a("int64"), I)),
        ("cross_entropy.mean", loss._ce_mean_kernel(dt), (a(dt), a(dt), a("int64"), I)),
        ("cross_entropy_backward.scale", loss._ce_scale_kernel(dt),
         (a(dt), a("float64"), a("int64"), I)),
        ("cross_entropy_backward", loss._ce_backward_kernel(dt),
         (a(dt, 2), a(dt, 2), a("int64"), a(dt), a(dt), I)),
        ("attention", attention.forward_kernel(dt),
         (A4, a(dt, 3), A4, A4, A4, B, T, a(dt), I, TUP4, B)),
        ("attention.flash", flash.flash_forward_kernel(*fl),
         (A4, a(dt, 3), A4, A4, A4, B, T, a(dt), I, TUP4, B)),
        ("attention_backward.flash_dq", flash.flash_dq_kernel(*fl),
         (A4, a(dt, 3), A4, A4, A4, A4, A4, a(dt, 3), B, T, a(dt), I, TUP4, B)),
        ("attention_backward.flash_dkv", flash.flash_dkv_kernel(*fl),
         (A4, A4, a(dt, 3), A4, A4, A4, A4, a(dt, 3), B, T, a(dt), I, TUP4, B)),
        ("attention_backward.dq", attention.dq_kernel(dt),
         (A4, a(dt, 3), A4, A4, A4, A4, A4, a(dt, 3), B, T, a(dt), I, TUP4, B)),
        ("attention_backward.dkv", attention.dkv_kernel(dt),
         (A4, A4, a(dt, 3), A4, A4, A4, A4, a(dt, 3), B, T, a(dt), I, TUP4, B)),
        ("scatter_add", plumbing._scatter_kernel(dt), (a(dt), a("int64"), a(dt), I)),
        ("embedding_backward", embedding._embedding_backward_kernel(dt),
         (a(dt, 2), a("int64"), a(dt, 2), I, I)),
        ("deferred_colsum", deferred._colsum_kernel(dt, 4 * 32),
         (a(dt), a(dt), types.UniTuple(I, 4 * 32))),
        ("dropout_mask", plumbing._dropout_kernel(dt), (a(dt), U, T, T, I)),
        ("adamw_update", deferred._adamw_kernel(dt, 6 * 32, 8 * 2),
         (a(dt),) * 4 + (types.UniTuple(I, 6 * 32), types.UniTuple(T, 8 * 2))),
        ("deferred_scale", deferred._scale_kernel(dt, 3 * 32),
         (a(dt), a(dt), types.UniTuple(I, 3 * 32), types.UniTuple(T, 32))),
        ("sum_squares", optim._sum_squares_kernel(dt, 3 * 32),
         (a("float64"), a(dt), types.UniTuple(I, 3 * 32))),
        ("deferred_copy", deferred._copy_kernel(dt, 3 * 32),
         (a(dt), a(dt), types.UniTuple(I, 3 * 32))),
    ]
    return out


def find_ptxas():
    """ptxas of the nvidia-cuda-nvcc wheel (the [cuda] extra), else one on PATH, else None."""
    try:
        import nvidia.cuda_nvcc as nvcc
        path = os.path.join(next(iter(nvcc.__path__)), "bin", "ptxas")
        if os.path.exists(path):
            return path
    except ImportError:
        pass
    return shutil.which("ptxas")


def assemble(ptxas, ptx, cc, threads):
    """Problems ptxas -v reports for a hot kernel: spill bytes, or more registers than a
    block of `threads` threads can have (65536 per block: the launch would fail)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "k.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        out = subprocess.run([ptxas, f"--gpu-name=sm_{cc[0]}{cc[1]}", "-v", src, "-o",
                              os.path.join(tmp, "k.cubin")], capture_output=True, text=True,
                             check=False)
    if out.returncode:
        return [f"ptxas failed: {out.stderr.strip().splitlines()[-1:]}"], None
    regs = max((int(r) for r in re.findall(r"Used (\d+) registers", out.stderr)), default=0)
    spills = sum(int(b) for b in re.findall(r"(\d+) bytes spill", out.stderr))
    problems = [f"ptxas: {spills} bytes of register spills"] if spills else []
    if regs * threads > 65536:
        problems.append(f"ptxas: {regs} registers x {threads} threads > 65536 per block")
    return problems, regs


def check(name, dt, ptx):
    problems = []
    if dt == "float32" and ".f64" in ptx and name not in F64_ALLOWED:
        lines = [ln.strip() for ln in ptx.splitlines() if ".f64" in ln]
        problems.append(f"float64 in a float32 kernel ({len(lines)} lines, e.g. {lines[0]})")
    if name.split(".")[0] in HOT and ("ld.local" in ptx or "st.local" in ptx):
        problems.append("spills to local memory (ld.local/st.local)")
    return problems


def cache_keys(kernels):
    """Problems with numba-cuda's on-disk cache key of each kernel (launch.jit gives every
    kernel cache=True): the key hashes the closure's values, so they must pickle, and two
    kernels of one factory with equal signatures must get different keys. Returns
    (problems, number of distinct keys)."""
    import hashlib

    from numba.cuda.serialize import dumps
    problems, keys = [], {}
    for name, kernel, sig in kernels:
        fn = kernel.py_func
        try:
            cells = tuple(c.cell_contents for c in fn.__closure__ or ())
            digest = hashlib.sha256(dumps(cells)).hexdigest()
        except Exception as err:  # noqa: BLE001  (report every kernel)
            problems.append(f"{name}: closure does not pickle for the cache key: {err}")
            continue
        key = (fn.__code__.co_code, str(sig), digest)
        if key in keys and keys[key] != name:
            problems.append(f"{name}: same cache key as {keys[key]}")
        keys[key] = name
    return problems, len(keys)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cc", nargs="*", default=["7.5", "9.0"])
    parser.add_argument("--dtype", nargs="*", default=["float32", "float64"])
    parser.add_argument("--only", default="", help="kernels whose name contains this")
    args = parser.parse_args(argv)
    if config.ENABLE_CUDASIM:
        sys.exit("check_cuda_ptx: unset NUMBA_ENABLE_CUDASIM (the simulator has no compiler)")
    failed, count, assembled, start = [], 0, 0, time.perf_counter()
    registers = []
    ptxas = find_ptxas()
    for cc in args.cc:
        cap = tuple(int(p) for p in cc.split("."))
        for dt in args.dtype:
            for name, kernel, sig in cases(dt):
                if args.only not in name:
                    continue
                try:
                    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=cap)
                except Exception as err:  # noqa: BLE001  (report every kernel, then fail)
                    failed.append(f"cc {cc} {dt} {name}: does not compile: "
                                  f"{str(err).splitlines()[0][:200]}")
                    continue
                count += 1
                problems = check(name, dt, ptx)
                if ptxas and name.split(".")[0] in HOT:
                    found, regs = assemble(ptxas, ptx, cap, threads(name))
                    problems += found
                    assembled += 1
                    registers.append(f"cc {cc} {dt} {name}: {regs} registers per thread x "
                                     f"{threads(name)} threads")
                failed += [f"cc {cc} {dt} {name}: {p}" for p in problems]
    for dt in args.dtype:
        problems, distinct = cache_keys([c for c in cases(dt) if args.only in c[0]])
        failed += [f"{dt} cache key: {p}" for p in problems]
        print(f"check_cuda_ptx: {distinct} distinct on-disk cache keys for the {dt} kernels")
    print(f"check_cuda_ptx: {count} kernels compiled in {time.perf_counter() - start:.0f} s "
          f"(cc {', '.join(args.cc)}; {', '.join(args.dtype)}); hot kernels assembled by "
          f"ptxas: {assembled if ptxas else 'no ptxas found'}; {len(failed)} problems")
    for line in registers:
        print("  " + line)
    for line in failed:
        print("  " + line)
    if not count:
        print("check_cuda_ptx: no kernel compiled (see --only)")
    return 1 if failed or not count else 0


if __name__ == "__main__":
    sys.exit(main())
