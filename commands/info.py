"""`attn info`: what this installation runs on: versions, the Numba threading layer and
threads, the kernel cache, CPU vector features, and the CUDA status.

numba.cuda is imported only with --cuda: by default the CUDA line reads the environment
(NUMBA_ENABLE_CUDASIM) and the installed packages (importlib.metadata), nothing more.
"""

import importlib
import importlib.metadata
import os
import pkgutil
import platform

PACKAGES = ("numpy", "numba", "llvmlite", "rich", "tbb", "numba-cuda", "array-api-strict")
VECTOR_FEATURES = ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl")


def add_args(p):
    p.add_argument("--cuda", action="store_true",
                   help="also import numba.cuda and ask it for a GPU (or the simulator)")
    p.add_argument("--json", action="store_true", help="print the facts as one JSON object")
    p.add_argument("--ops", action="store_true",
                   help="instead, every kernel: the engine code calling it, its forms per "
                        "implementation (reference, cpu, strict, cuda) as file:line, and the "
                        "test files naming it")
    p.epilog = "examples:\n  attn info\n  attn info --cuda --json\n  attn info --ops"


def run(args):
    if args.ops:
        from commands import op_table
        table = op_table.op_table(cuda=args.cuda)
        if args.json:
            import json
            print(json.dumps(table, indent=2))
        else:
            op_table.print_table(table)
        return 0
    facts = collect(cuda=args.cuda)
    if args.json:
        import json
        print(json.dumps(facts, indent=2))
        return 0
    _print(facts)
    return 0


def collect(cuda=False):
    """Every fact `attn info` shows, as a JSON-able dict."""
    import numba

    import ops
    from ops import numba_config
    return {"python": platform.python_version(), "platform": platform.platform(),
            "versions": _versions(),
            "backend": ops.get_backend(), "devices": list(ops.device_names()),
            "threading": {"layer": numba.config.THREADING_LAYER,
                          "active": _active_layer(), "threads": numba_config.num_threads()},
            "kernel_cache": kernel_cache(), "cpu": cpu_features(), "blas": _blas(),
            "cuda": cuda_status(probe=cuda)}


def _blas():
    """numpy's BLAS libraries and their threads (ops/blas.py's policy), and the vector width
    the matmul kernel compiled for."""
    from ops import simd
    from ops.blas import blas_info
    return {"libraries": blas_info(), "vector_bits": simd.VEC_BITS}


def _versions():
    found = {}
    for name in ("attn-engine", *PACKAGES):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _active_layer():
    import numba
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process yet
        return None


def kernel_cache():
    """Where Numba caches the compiled kernels, and whether it is warm: some jitted functions
    have cache files and none is older than its source (helpers inlined into their callers
    never get files of their own, so "all of them" is not the test)."""
    from numba.core.registry import CPUDispatcher

    import ops
    from ops.devices import OPTIONAL_MODULES
    kernels, cached, stale, where = 0, 0, 0, set()
    for info in pkgutil.iter_modules(ops.__path__):
        name = f"ops.{info.name}"
        if info.ispkg or name in OPTIONAL_MODULES:  # the CPU kernels only: never import an
            continue  # optional device (ops.strict needs array-api-strict, ops.cuda numba.cuda)
        module = importlib.import_module(name)
        for fn in vars(module).values():
            if not (isinstance(fn, CPUDispatcher) and fn.__module__ == module.__name__):
                continue
            kernels += 1
            try:  # Numba's cache internals: the index file this function would load from
                index = fn._cache._cache_file._index_path
            except AttributeError:
                continue
            where.add(os.path.dirname(index))
            if os.path.exists(index):
                cached += 1
                stale += os.path.getmtime(index) < os.path.getmtime(fn.py_func.__code__.co_filename)
    return {"dir": os.environ.get("NUMBA_CACHE_DIR") or ", ".join(sorted(where)),
            "functions": kernels, "cached": cached, "stale": stale,
            "warm": cached > 0 and stale == 0}


def first_compile_note():
    """A line to print before training when no kernel is in the cache yet (a fresh install,
    or a new NUMBA_CACHE_DIR): the first step then compiles them, which would otherwise look
    like a hang. None when some are cached, or off the numba backend."""
    import ops
    if ops.get_backend() != "numba" or kernel_cache()["cached"]:
        return None
    return ("first run here: the first step compiles the kernels (about 10 s on 2 cores, "
            "15 s on one); they are cached for every later run")


def cpu_features():
    """The CPU's name and which SIMD extensions it has (LLVM's view, else /proc/cpuinfo)."""
    try:
        import llvmlite.binding as llvm
        name = llvm.get_host_cpu_name()
        flags = {f[1:] for f in llvm.get_host_cpu_features().flatten().split(",")
                 if f.startswith("+")}
        source = "llvm"
    except Exception:  # noqa: BLE001  (an older llvmlite: fall back to the kernel's list)
        name, flags, source = platform.processor() or "unknown", _proc_flags(), "/proc/cpuinfo"
    return {"name": name, "source": source, "cores": os.cpu_count(),
            "features": {f: f in flags for f in VECTOR_FEATURES}}


def _proc_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return {"sse4.2" if f == "sse4_2" else f for f in line.split(":")[1].split()}
    except OSError:
        pass
    return set()


def cuda_status(probe=False):
    """The CUDA situation; only `probe` imports numba.cuda (which may take seconds)."""
    import importlib.util
    status = {"simulator_env": os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
              "numba_cuda_installed": _installed("numba-cuda"),
              "numba_cuda_module": importlib.util.find_spec("numba.cuda") is not None,
              "probed": probe}
    if probe:
        try:
            from numba import cuda
            status["available"] = bool(cuda.is_available())
            status["simulator"] = bool(getattr(cuda, "simulator", None) and
                                       os.environ.get("NUMBA_ENABLE_CUDASIM") == "1")
            if status["available"] and status["simulator"]:
                status["device"] = "the CUDA simulator"
            elif status["available"]:
                status["device"] = str(cuda.get_current_device().name)
        except Exception as e:  # noqa: BLE001  (any failure to find CUDA is the answer)
            status["available"], status["error"] = False, f"{type(e).__name__}: {e}"
    return status


def _installed(name):
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def _print(facts):
    from rich.console import Console
    from rich.table import Table
    table = Table(show_header=False, title="attn info", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("python", f"{facts['python']} ({facts['platform']})")
    table.add_row("packages", ", ".join(f"{k} {v}" for k, v in facts["versions"].items()
                                        if v is not None))
    missing = [k for k, v in facts["versions"].items() if v is None]
    if missing:
        table.add_row("not installed", ", ".join(missing))
    t = facts["threading"]
    table.add_row("backend", f"{facts['backend']} (devices: {', '.join(facts['devices'])})")
    table.add_row("threads", f"{t['threads']} threads, threading layer {t['layer']}"
                  + (f" (running: {t['active']})" if t["active"] else ""))
    c = facts["kernel_cache"]
    table.add_row("kernel cache", f"{c['dir']}: " + ("[green]warm[/]" if c["warm"] else
                  "[yellow]cold[/] (the first run compiles, ~10-15 s)") + f"; {c['cached']} of "
                  f"{c['functions']} jitted functions cached, {c['stale']} stale")
    cpu = facts["cpu"]
    table.add_row("cpu", f"{cpu['name']}, {cpu['cores']} cores; " + " ".join(
        f"[green]{f}[/]" if on else f"[dim]-{f}[/]" for f, on in cpu["features"].items())
        + f" (from {cpu['source']})")
    b = facts["blas"]
    libs = ", ".join(f"{x['library']} {x['version']} on {x['threads']} thread"
                     f"{'s' if x['threads'] != 1 else ''}" for x in b["libraries"]) or "none seen"
    table.add_row("blas", f"{libs} (ENGINE_BLAS_THREADS); our kernels: {b['vector_bits']}-bit "
                  f"vectors")
    table.add_row("cuda", _cuda_line(facts["cuda"]))
    Console().print(table)


def _cuda_line(s):
    package = ("numba-cuda installed" if s["numba_cuda_installed"] else
               "numba-cuda not installed" + (" (numba's own numba.cuda is present)"
                                             if s["numba_cuda_module"] else ""))
    line = (f"{package}; "
            f"NUMBA_ENABLE_CUDASIM {'=1 (simulator)' if s['simulator_env'] else 'not set'}")
    if not s["probed"]:
        return line + "; --cuda probes for a GPU"
    if s.get("available"):
        return line + f"; available: {s.get('device', '?')}"
    return line + f"; no CUDA device ({s.get('error', 'numba.cuda.is_available() is False')})"
