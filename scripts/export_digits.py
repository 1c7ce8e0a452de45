"""Write scikit-learn's bundled handwritten digits (1,797 grey 8x8 images, ten classes; the
UCI optical digits test set, shipped inside the scikit-learn package, no download) as an
.npz for `attn train --model vit --images`: `images` float32 (N, 8, 8) in [0, 1] (the
set's 0-16 counts divided by 16), `labels` int64, `classes` "0".."9".

    pip install scikit-learn            # only for this script; nothing else imports it
    python scripts/export_digits.py digits.npz
    python -m benchmarks.twins.compare --images digits.npz --steps 1000
"""

import sys

import numpy as np


def digits():
    """(images float32 (1797, 8, 8) in [0, 1], labels int64 (1797,)), or SystemExit with
    one line when scikit-learn is absent."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("export_digits: needs scikit-learn (pip install scikit-learn)") \
            from None
    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/export_digits.py OUT.npz")
    images, labels = digits()
    np.savez_compressed(sys.argv[1], images=images, labels=labels,
                        classes=np.array([str(k) for k in range(10)]))
    print(f"{sys.argv[1]}: {len(labels)} images {images.shape[1]}x{images.shape[2]}")
