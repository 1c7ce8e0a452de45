"""Time one training step (forward, backward, AdamW) of a GPT: ours on the numba backend, ours
on the numpy reference backend, and PyTorch CPU eager (benchmarks/torch_gpt.py) when it is
importable.

    python benchmarks/train_step.py --separate-processes [--configs tiny small] [--rounds 2]
    python benchmarks/train_step.py --scaling [--separate-processes]
    python benchmarks/train_step.py                  (every side in this one process)

--separate-processes (the README's figures) runs each side alone in its own process, rounds
times, alternating the order of the sides, and reports each side's best-round median: in one
process, OpenBLAS's and PyTorch's worker threads spin after their calls and take a core from
whatever runs next. The numpy-backend side runs with ENGINE_BACKEND=numpy (numpy's BLAS keeps
its threads), torch with its defaults (all cores, its SDPA). --scaling times the grid of
model sizes C = 64..512, T = 64..512, L = 2, 4 (batch 8, 4 heads, vocab 64) on ours and torch.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

BATCH = {"tiny": 32, "small": 16}  # the canonical batch sizes (README, Performance)
SIDES = ("numba", "numpy", "torch")
SCALING = [(c, t, layers) for layers in (2, 4) for t in (64, 256, 512) for c in (64, 128, 256, 512)]


def config(spec):
    """(GPTConfig, batch) for "tiny", "small" or a scaling point "C128-T256-L4" (batch 8)."""
    from engine.models import GPTConfig
    if spec in BATCH:
        return GPTConfig.from_name(spec), BATCH[spec]
    c, t, layers = (int(part[1:]) for part in spec.split("-"))
    return GPTConfig(vocab_size=64, block_size=t, n_embd=c, n_head=4, n_layer=layers), 8


def _batch(cfg, batch, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, cfg.vocab_size, size=(batch, cfg.block_size), dtype=np.int64)
    return idx, np.roll(idx, -1, axis=1)


def _median_step(step, repeats, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ours_step(spec):
    """One training step of our GPT at config `spec` (a function returning the loss)."""
    from engine.models import GPT
    from engine.optim import AdamW, weight_decay_groups
    cfg, batch = config(spec)
    model = GPT(cfg, rng=0)
    opt = AdamW(weight_decay_groups(model, 0.1), lr=1e-3)
    idx, targets = _batch(cfg, batch)

    def step():
        opt.zero_grad()
        _, loss = model(idx, targets)
        loss.backward()
        opt.step()
        return loss
    return step


def time_ours(spec, backend, repeats, warmup=3):
    import ops
    import ops.runtime
    ops.runtime.configure()  # as attn train does
    step = ours_step(spec)
    with ops.use_backend(backend):
        return _median_step(step, repeats, warmup)


def time_torch(spec, repeats, warmup=3):
    try:
        import torch
    except ImportError:
        return None
    from benchmarks.torch_gpt import TorchGPT
    cfg, batch = config(spec)
    torch.manual_seed(0)
    model = TorchGPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    idx, targets = (torch.from_numpy(a) for a in _batch(cfg, batch))

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(idx)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)),
                                                 targets.view(-1))
        loss.backward()
        opt.step()

    return _median_step(step, repeats, warmup)


def time_side(side, spec, repeats, warmup=3):
    """Median seconds of one step of `spec` on `side`, or None (torch missing)."""
    if side == "torch":
        return time_torch(spec, repeats, warmup)
    return time_ours(spec, side, repeats, warmup)


def _side_in_child(side, spec, repeats, warmup):
    env = {k: v for k, v in os.environ.items() if k not in ("ENGINE_BACKEND",)}
    if side == "numpy":
        env["ENGINE_BACKEND"] = "numpy"
    cmd = [sys.executable, os.path.abspath(__file__), "--side", side, "--configs", spec,
           "--repeats", str(repeats), "--warmup", str(warmup)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def measure(specs, sides, repeats, separate, rounds, warmup=3):
    """{spec: {side: seconds or None}}; separate: each (round, spec, side) in a fresh process,
    the sides' order reversed every other round; the best round's median is kept."""
    results = {spec: {} for spec in specs}
    if not separate:
        # torch last: its OpenMP threads spin after each call and would slow ours
        for side in sorted(sides, key=lambda s: s == "torch"):
            for spec in specs:
                results[spec][side] = time_side(side, spec, repeats, warmup)
        return results
    for r in range(rounds):
        for spec in specs:
            for side in (sides if r % 2 == 0 else tuple(reversed(sides))):
                s = _side_in_child(side, spec, repeats, warmup)
                old = results[spec].get(side)
                results[spec][side] = s if old is None or (s is not None and s < old) else old
    return results


def rows_of(results):
    rows = []
    for spec, r in results.items():
        cfg, batch = config(spec)
        ours = r.get("numba")
        row = {"config": spec, "batch": batch, "block_size": cfg.block_size,
               "n_embd": cfg.n_embd, "n_layer": cfg.n_layer}
        for side in SIDES:
            row[f"{side}_ms"] = None if r.get(side) is None else r[side] * 1e3
        row["ours_over_torch"] = (None if not ours or not r.get("torch")
                                  else ours / r["torch"])
        row["tokens_per_s"] = None if not ours else batch * cfg.block_size / ours
        rows.append(row)
    return rows


def print_table(rows, title, json_path=None):
    from rich.table import Table

    from benchmarks.report import show

    def ms(x):
        return "-" if x is None else f"{x:.1f} ms"

    table = Table(title=title)
    for col in ("config", "B x T", "ours (numba)", "ours (numpy ref)", "torch eager",
                "ours/torch", "tokens/s"):
        table.add_column(col, justify="right")
    for r in rows:
        ratio = r["ours_over_torch"]
        table.add_row(r["config"], f"{r['batch']} x {r['block_size']}", ms(r["numba_ms"]),
                      ms(r["numpy_ms"]), ms(r["torch_ms"]),
                      "-" if ratio is None else f"{ratio:.2f}x",
                      "-" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:,.0f}")
    show(table, rows, json_path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "small"],
                        help="tiny, small, or C<n>-T<n>-L<n> points")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--separate-processes", action="store_true",
                        help="each side alone in its own process (the README's figures)")
    parser.add_argument("--rounds", type=int, default=2, help="with --separate-processes")
    parser.add_argument("--scaling", action="store_true",
                        help="the model-size grid on ours (numba) and torch")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps first (default 3; 1 with --scaling)")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # a child's one job
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: the step on the GPU (benchmarks/cuda_bench.py); default cpu")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else (1 if args.scaling else 3)
    if args.side:
        seconds = time_side(args.side, args.configs[0], args.repeats, warmup)
        print(json.dumps({"seconds": seconds}))
        return 0
    if args.device == "cuda":
        from benchmarks import cuda_bench
        reason = cuda_bench.no_gpu_reason()
        if reason:
            print(reason)
            return 0
        cuda_bench.print_train_steps(args.configs, args.repeats)
        return 0
    specs = [f"C{c}-T{t}-L{n}" for c, t, n in SCALING] if args.scaling else args.configs
    sides = ("numba", "torch") if args.scaling else SIDES
    repeats = min(args.repeats, 3) if args.scaling else args.repeats
    rows = rows_of(measure(specs, sides, repeats, args.separate_processes, args.rounds, warmup))
    how = (f"each side alone in its own process, best of {args.rounds} rounds"
           if args.separate_processes else "all sides in one process")
    print_table(rows, f"one training step (fwd+bwd+AdamW), median of {repeats}, "
                      f"{os.cpu_count()} cores, {how}", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
