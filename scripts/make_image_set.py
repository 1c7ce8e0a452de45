"""Write a generated colour image set as an .npz for `attn train --model vit --images`:
the ten glyph shapes (engine.data.images) drawn in a random ink colour on a random
background colour, with per-channel noise, 8-bit RGB. The shape is the class; colour is a
nuisance the model must learn to ignore.

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
    fg, bg = rng.random((n, 1, 1, 3)), rng.random((n, 1, 1, 3))
    close = np.abs(fg - bg).sum(-1, keepdims=True) < 0.6  # keep the shape visible
    fg = np.where(close, 1 - bg, fg)
    img = bg + (fg - bg) * ink + rng.normal(0, 0.04, (n, size, size, 3))
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8), labels.astype(np.int64)


if __name__ == "__main__":
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 6000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    images, labels = colour_glyphs(n, seed, size)
    np.savez_compressed(sys.argv[1], images=images, labels=labels, classes=np.array(CLASSES))
