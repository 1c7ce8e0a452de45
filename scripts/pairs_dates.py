"""Write a pairs file of a realistic string rewrite, for `attn train --pairs`: ISO dates to
English ("2024-03-15" -> "15 March 2024"). python scripts/pairs_dates.py OUT.tsv [N] [SEED]"""

import sys

import numpy as np

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def lines(n, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        y, m, d = rng.integers(1900, 2100), rng.integers(1, 13), rng.integers(1, 29)
        yield f"{y:04d}-{m:02d}-{d:02d}\t{d} {MONTHS[m - 1]} {y}"


if __name__ == "__main__":
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write("\n".join(lines(n, seed)) + "\n")
