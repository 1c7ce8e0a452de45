"""Write or check ops/warm_manifest.json, the kernels ops.warm compiles on a cold start.

    python scripts/warm_manifest.py            # write it
    python scripts/warm_manifest.py --check    # exit 1 when it differs from a fresh record

It records what `attn train` (the default tiny GPT, float32) calls: every jitted ops kernel
called from Python, with its argument types, and every by-address routine (ops/native.py)
with its dtype, each under the first stage that used it, in the order of first use: forward
(training and evaluation), backward, optimizer (clipping and AdamW), decode (greedy
generation). The record is made in a child process whose kernel cache is warm (a first
child warms it), because only there does a kernel's load tell it was called from Python: on
a cold cache the helpers a kernel compiles with are counted too. `--child` prints the record
and the kernels that child compiled rather than loaded (tests/ops/test_warm.py runs it after
`python -m ops.warm` on an empty cache: it must compile nothing).
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ops import warm

_LOG = []  # (kernel, signature or dtype) in the order this process first asked for them


def _name(obj):
    """(module, name) of an ops kernel or Entry, as its module holds it."""
    func = getattr(obj, "py_func", obj)
    module = func.__module__
    return module, next(n for n, o in vars(sys.modules[module]).items() if o is obj)


def _log_first_uses():
    """Log each kernel's first compile-or-load: a call from Python with a new signature
    goes through Dispatcher.compile (on a warm cache: the load), a routine through
    Entry.compiled."""
    from numba.core.dispatcher import Dispatcher

    import ops.native
    compile_, compiled = Dispatcher.compile, ops.native.Entry.compiled

    def logged_compile(self, sig):
        if self.py_func.__module__.startswith("ops."):
            _LOG.append((self, tuple(warm.encode(t) for t in sig)))
        return compile_(self, sig)

    def logged_compiled(self, dtype):
        _LOG.append((self, dtype))
        return compiled(self, dtype)
    Dispatcher.compile, ops.native.Entry.compiled = logged_compile, logged_compiled


def _record():
    """Run the stages in this process; returns the manifest: per stage, its kernels in the
    order of first use."""
    import numpy as np

    import ops.runtime
    ops.runtime.configure()
    _log_first_uses()
    from engine.models import GPT, GPTConfig
    from engine.models.generate import generate
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
        manifest[name] = []
        for obj, sig in _LOG:
            key = (*_name(obj), list(sig) if isinstance(sig, tuple) else sig.__name__)
            if repr(key) not in seen:
                seen.add(repr(key))
                manifest[name].append(list(key))

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
    return manifest


def _compiled():
    """The kernels this process compiled rather than loaded from the cache."""
    from numba.core.dispatcher import Dispatcher
    names = {".".join(_name(obj)) for obj, _ in list(_LOG)
             if isinstance(obj, Dispatcher) and obj.stats.cache_misses}
    names |= {f"{obj.__name__} {sig.__name__}" for obj, sig in list(_LOG)
              if not isinstance(obj, Dispatcher) and not obj.compiled(sig).cache_hits}
    return sorted(names)


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
