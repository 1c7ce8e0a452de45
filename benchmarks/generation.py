"""Generation speed: tokens/s of greedy sampling from the GPT, ours with the KV cache, ours
recomputing the whole context every token, and PyTorch eager recomputing the whole context
(nanoGPT's `generate`: crop to block_size, forward, take the last position's logits).

    python benchmarks/generation.py [--configs tiny small] [--rounds 2] [--json PATH]

Each side runs alone in its own process (rounds times, the order alternating; the best round
is kept). Batch 1, a prompt of 8 tokens, then block_size - 8 new tokens, so the context grows
to the model's full block (64 for tiny, 128 for small), as `attn sample` does.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PROMPT = 8
SIDES = ("cached", "uncached", "torch")


def _setup(name):
    from engine.models import GPTConfig
    cfg = GPTConfig.from_name(name)
    prompt = np.random.default_rng(0).integers(0, cfg.vocab_size, (1, PROMPT), dtype=np.int64)
    return cfg, prompt, cfg.block_size - PROMPT


def time_ours(name, use_cache, repeats):
    import ops.runtime
    ops.runtime.configure()  # as attn sample does
    from engine.models import GPT
    from engine.models.generate import generate
    cfg, prompt, new = _setup(name)
    model = GPT(cfg, rng=0)
    generate(model, prompt, new, greedy=True, use_cache=use_cache)  # compile / warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        generate(model, prompt, new, greedy=True, use_cache=use_cache)
        best = min(best, time.perf_counter() - t0)
    return new / best


def time_torch(name, repeats):
    try:
        import torch
    except ImportError:
        return None
    from benchmarks.torch_gpt import TorchGPT
    cfg, prompt, new = _setup(name)
    torch.manual_seed(0)
    model = TorchGPT(cfg).eval()

    @torch.no_grad()
    def generate(idx):
        for _ in range(new):
            logits = model(idx[:, -cfg.block_size:])[:, -1, :]
            idx = torch.cat((idx, logits.argmax(dim=-1, keepdim=True)), dim=1)
        return idx

    start = torch.from_numpy(prompt)
    generate(start)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        generate(start)
        best = min(best, time.perf_counter() - t0)
    return new / best


def time_side(side, name, repeats):
    """Tokens per second (best of repeats) of one side on config `name`."""
    if side == "torch":
        return time_torch(name, repeats)
    return time_ours(name, side == "cached", repeats)


def _child(side, name, repeats):
    cmd = [sys.executable, os.path.abspath(__file__), "--side", side, "--configs", name,
           "--repeats", str(repeats)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["tokens_per_s"]


def measure(names, repeats, rounds):
    results = {name: {} for name in names}
    for r in range(rounds):
        for name in names:
            for side in (SIDES if r % 2 == 0 else tuple(reversed(SIDES))):
                tps = _child(side, name, repeats)
                old = results[name].get(side)
                results[name][side] = tps if old is None or (tps and tps > old) else old
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "small"],
                        choices=["tiny", "small"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # a child's one job
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.side:
        print(json.dumps({"tokens_per_s": time_side(args.side, args.configs[0], args.repeats)}))
        return 0
    results = measure(args.configs, args.repeats, args.rounds)
    from rich.table import Table
    table = Table(title=f"greedy generation, batch 1, prompt {PROMPT} -> full block, tokens/s "
                        f"(best of {args.repeats} x {args.rounds} rounds, each side alone), "
                        f"{os.cpu_count()} cores")
    for col in ("config", "ours, KV cache", "ours, no cache", "torch, full recompute",
                "cache / no cache", "ours / torch"):
        table.add_column(col, justify="right")
    rows = []
    for name, r in results.items():
        cached, uncached, torch_tps = r["cached"], r["uncached"], r.get("torch")
        rows.append({"config": name, **{f"{k}_tokens_per_s": v for k, v in r.items()}})
        table.add_row(name, f"{cached:,.0f}", f"{uncached:,.0f}",
                      "-" if torch_tps is None else f"{torch_tps:,.0f}",
                      f"{cached / uncached:.2f}x",
                      "-" if torch_tps is None else f"{cached / torch_tps:.2f}x")
    from benchmarks.report import show
    show(table, rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
