"""Compile once per machine, proven without a GPU: one process compiles two of the device's
kernels with cache=True (numba-cuda's disk cache) and saves them, a second process with the
same cache directory loads both with zero compiles and gets the first one's PTX back; a
third, for another compute capability, compiles again (the capability is part of the key).

numba-cuda needs the driver at three points, replaced here (docs/cuda.md): the compute
capability (`get_current_device()` in _Kernel.__init__ and `devices.get_context()` in the
cache key's magic tuple; fixed here) and `_Kernel.bind()` after a compile (it loads the
module into a CUDA context, cuModuleLoadData; here it only finalises the code library and
makes the PTX, which is what the cache stores). Everything else is numba-cuda's own code:
the index key, the pickled payload, the load. The processes run the real compiler (not the
simulator), so this skips where numba-cuda cannot compile (no NVVM)."""

import json
import os
import subprocess
import sys

import pytest

PROBE = r'''
import hashlib, json, sys
import numba.cuda.dispatcher as disp
from numba import types
from numba.cuda.cudadrv import devices

cc = tuple(int(p) for p in sys.argv[1].split("."))


class Device:
    compute_capability = cc


class Context:
    device = Device()


disp.get_current_device = lambda: Device()
devices.get_context = lambda *a, **k: Context()


def bind(self):  # the driver's module load, replaced by making the PTX
    self._codelibrary.get_asm_str(cc=cc)


disp._Kernel.bind = bind
from ops.cuda import matmul, softmax

A = lambda n: types.Array(types.float32, n, "C")
kernels = [(softmax.softmax_kernel("float32", False), (A(2), A(2))),
           (matmul.matmul_kernel("float32", False, True), (A(3),) * 3 + (types.int64,) * 3)]
out = {"hits": 0, "misses": 0, "cached_ptx": 0, "ptx": []}
for k, sig in kernels:
    compiled = k.kernel.compile(sig)
    out["hits"] += sum(k.kernel._cache_hits.values())
    out["misses"] += sum(k.kernel._cache_misses.values())
    out["cached_ptx"] += cc in compiled._codelibrary._ptx_cache
    ptx = compiled._codelibrary.get_asm_str(cc=cc)
    out["ptx"].append(hashlib.sha256(ptx.encode()).hexdigest())
print(json.dumps(out))
'''


def _run(cache_dir, cc):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env.update(NUMBA_CACHE_DIR=str(cache_dir), PYTHONPATH=os.getcwd())
    done = subprocess.run([sys.executable, "-c", PROBE, cc], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    if done.returncode:
        tail = done.stderr.strip().splitlines()[-1:] or ["?"]
        if "NVVM" in done.stderr or "nvvm" in done.stderr:
            pytest.skip(f"numba-cuda cannot compile here: {tail[0]}")
        raise AssertionError(f"probe failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_every_kernel_and_compiles_none(tmp_path):
    first = _run(tmp_path, "9.0")
    assert (first["hits"], first["misses"]) == (0, 2)
    assert any(name.endswith(".nbi") for _, _, files in os.walk(tmp_path) for name in files)
    second = _run(tmp_path, "9.0")
    assert (second["hits"], second["misses"]) == (2, 0)
    assert second["cached_ptx"] == 2  # the PTX came out of the cache, not from NVVM
    assert second["ptx"] == first["ptx"]
    other = _run(tmp_path, "7.5")  # another GPU: its own entries
    assert (other["hits"], other["misses"]) == (0, 2)
    assert other["ptx"] != first["ptx"]
