"""Write or check ops/warm_manifest.json, the kernels ops.warm compiles on a cold start.

    python scripts/warm_manifest.py            # write it
    python scripts/warm_manifest.py --check    # exit 1 when it differs from a fresh record

It records what `attn train` (the default tiny GPT, float32) calls: every jitted ops kernel
called from Python, with its argument types, and every by-address routine (ops/native.py)
with its dtype, each under the first stage that used it: forward (training and evaluation),
backward, optimizer (clipping and AdamW), decode (greedy generation). The record is made in
a child process whose kernel cache is warm (a first child warms it), because only there does
a kernel's load tell it was called from Python: on a cold cache the helpers a kernel
compiles with are counted too. `--child` prints the record and the kernels that child
compiled rather than loaded (tests/ops/test_warm.py runs it after `python -m ops.warm` on an
empty cache: it must compile nothing).
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ops import warm

_CALLS = set()  # (Entry, dtype) compiled or loaded in this process


def _record():
    """Run the stages in this process; returns the manifest dict."""
    import numpy as np

    import ops.native
    import ops.runtime
    ops.runtime.configure()
    compiled = ops.native.Entry.compiled

    def tracking(self, dtype):
        _CALLS.add((self, dtype))
        return compiled(self, dtype)
    ops.native.Entry.compiled = tracking

    from engine.generate import generate
    from engine.models import GPT, GPTConfig
    from engine.nn import eval_mode
    from engine.optim import AdamW, clip_grad_norm, weight_decay_groups
    from engine.training.config import TRAIN_DEFAULTS
    model = GPT(GPTConfig.from_name("tiny"), rng=0)
    cfg = model.config
    opt = AdamW(weight_decay_groups(model, 0.1), lr=1e-3)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, cfg.vocab_size, size=(TRAIN_DEFAULTS["batch_size"], cfg.block_size))
    targets = np.roll(idx, -1, axis=1)
    manifest, seen = {}, set()

    def stage(name):
        new = _used() - seen
        seen.update(new)
        manifest[name] = sorted([m, n, list(s) if isinstance(s, tuple) else s]
                                for m, n, s in new)

    with np.errstate(over="ignore", invalid="ignore"):
        _, loss = model(idx, targets)
        with eval_mode(model):
            model(idx, targets)
        stage("forward")
        loss.backward()
        stage("backward")
        clip_grad_norm(list(model.parameters()), 1.0)
        opt.step()
        stage("optimizer")
        generate(model, idx[:4, :8], 4, greedy=True)
        stage("decode")
    return {k: manifest[k] for k in warm.ORDER}


def _compiled():
    """The kernels this process compiled rather than loaded from the cache."""
    from numba.core.registry import CPUDispatcher
    names = sorted(f"{m}.{n}" for m, mod in list(sys.modules.items())
                   if m.startswith("ops.") and mod is not None
                   for n, obj in vars(mod).items()
                   if isinstance(obj, CPUDispatcher) and obj.__module__ == m
                   and obj.stats.cache_misses)
    return names + sorted(f"{entry.__name__} {dtype.__name__}" for entry, dtype in _CALLS
                          if not entry.compiled(dtype).cache_hits)


def _used():
    """{(module, name, signature or dtype)} of the ops kernels this process has called: the
    jitted ones from their cache statistics, the by-address ones from _CALLS."""
    from numba.core.registry import CPUDispatcher
    used = set()
    for mod_name, module in list(sys.modules.items()):
        if not mod_name.startswith("ops.") or module is None:
            continue
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == mod_name:
                stats = obj.stats
                for sig in set(stats.cache_hits) | set(stats.cache_misses):
                    used.add((mod_name, name, tuple(warm.encode(t) for t in sig)))
    for entry, dtype in _CALLS:
        module = entry.py_func.__module__
        name = next(n for n, o in vars(sys.modules[module]).items() if o is entry)
        used.add((module, name, dtype.__name__))
    return used


def _dumps(manifest):
    """The manifest as JSON with one kernel per line."""
    stages = [f'  "{stage}": [\n' + ",\n".join(f"    {json.dumps(e)}" for e in entries)
              + "\n  ]" for stage, entries in manifest.items()]
    return "{\n" + ",\n".join(stages) + "\n}\n"


def _child():
    """Record in a fresh process (run twice: the first warms the cache)."""
    cmd = [sys.executable, __file__, "--child"]
    for _ in range(2):
        out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["manifest"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        manifest = _record()
        print(json.dumps({"manifest": manifest, "compiled": _compiled()}))
        return 0
    fresh = _child()
    text = _dumps(fresh)
    if args.check:
        if warm.MANIFEST.read_text() != text:
            print(f"{warm.MANIFEST} is stale: run python scripts/warm_manifest.py",
                  file=sys.stderr)
            return 1
        return 0
    warm.MANIFEST.write_text(text)
    print(f"wrote {warm.MANIFEST}: " + ", ".join(f"{k} {len(v)}" for k, v in fresh.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
