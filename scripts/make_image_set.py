"""Write a generated colour image set as an .npz for `attn train --model vit --images`:
the ten glyph shapes (engine.data.images) drawn in a random ink colour (one channel at
least bright) on a random dark background, with per-channel noise, 8-bit RGB. The shape is
the class; colour is a nuisance the model must learn to ignore.

    python scripts/make_image_set.py OUT.npz [N] [SEED] [SIZE]
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.data.images import CLASSES, render_glyphs  # (after the path set-up)


def colour_glyphs(n, seed=0, size=16):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    ink = render_glyphs(labels, rng, size)[..., None]  # (n, H, W, 1) in [0, 1]
    bg = rng.uniform(0.0, 0.3, (n, 1, 1, 3))  # a dark background of any tint
    fg = rng.uniform(0.2, 1.0, (n, 1, 1, 3))  # ink of any colour, one channel at least bright
    fg[np.arange(n), 0, 0, rng.integers(0, 3, n)] = rng.uniform(0.8, 1.0, n)
    img = bg + (fg - bg) * ink + rng.normal(0, 0.04, (n, size, size, 3))
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8), labels.astype(np.int64)


if __name__ == "__main__":
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 6000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    images, labels = colour_glyphs(n, seed, size)
    np.savez_compressed(sys.argv[1], images=images, labels=labels, classes=np.array(CLASSES))
