"""Glyphs: a seeded image-classification set the project draws itself, for the ViT.

Ten classes of line drawings (ring, square, triangle, plus, cross, diamond, equals, L, T,
chevron), each rendered anti-aliased on a small grey canvas (16x16 by default) with a random
scale, rotation, position, stroke width, contrast and pixel noise. Shifts and scales make
the classes hard for a linear classifier on the raw pixels (logistic regression; its
accuracy is reported beside the model's), while an attention model over patches learns them
in a minute.

Training images are drawn fresh from the batch's rng (an endless stream). The held-out
split is a fixed set drawn from the dataset's seed by a separate generator; `get_batch("val")`
and `evaluate` use it. Images are float32 (B, H, W) in [0, 1], labels int64 (B,).

Image files: `read_pgm` reads a PGM (P5/P2) in its declared range, `save_pgm` writes one;
engine.data.image_files reads the other formats and users' image sets.
"""


import numpy as np

import ops
from engine.autograd import no_grad
from engine.data.vocab import DataError
from engine.nn import eval_mode

CLASSES = ("ring", "square", "triangle", "plus", "cross", "diamond", "equals", "L", "T",
           "chevron")

# Each glyph is line segments ((x0, y0), (x1, y1)) in unit coordinates [-1, 1] (y down);
# the ring is a circle of radius 0.8 instead.
_SQUARE = [(-.7, -.7), (.7, -.7), (.7, .7), (-.7, .7), (-.7, -.7)]
_TRIANGLE = [(0, -.8), (.8, .65), (-.8, .65), (0, -.8)]
_DIAMOND = [(0, -.85), (.85, 0), (0, .85), (-.85, 0), (0, -.85)]


def _polyline(points):
    return [(points[i], points[i + 1]) for i in range(len(points) - 1)]


_SEGMENTS = {
    "square": _polyline(_SQUARE),
    "triangle": _polyline(_TRIANGLE),
    "plus": [((-.8, 0), (.8, 0)), ((0, -.8), (0, .8))],
    "cross": [((-.7, -.7), (.7, .7)), ((-.7, .7), (.7, -.7))],
    "diamond": _polyline(_DIAMOND),
    "equals": [((-.75, -.35), (.75, -.35)), ((-.75, .35), (.75, .35))],
    "L": [((-.5, -.8), (-.5, .8)), ((-.5, .8), (.6, .8))],
    "T": [((-.8, -.75), (.8, -.75)), ((0, -.75), (0, .85))],
    "chevron": [((-.8, .55), (0, -.55)), ((0, -.55), (.8, .55))],
}


def _segment_distance(px, py, segments):
    """Distance (n, P) from local points (n, P) to the nearest of the segments."""
    best = np.full(px.shape, np.inf)
    for (x0, y0), (x1, y1) in segments:
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        best = np.minimum(best, np.hypot(px - x0 - t * dx, py - y0 - t * dy))
    return best


def render_glyphs(labels, rng, size=16):
    """Images float32 (n, size, size) of the classes `labels` (n,), with random pose, stroke,
    contrast and noise drawn from rng (see the module docstring)."""
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.shape[0]
    half = size / 2
    scale = rng.uniform(0.5, 0.95, n) * (half - 1)  # pixels per unit
    angle = np.deg2rad(rng.uniform(-25, 25, n))
    room = np.maximum(half - 1 - scale * 0.85, 0.0)  # keep most of the glyph on the canvas
    cx = half + rng.uniform(-1, 1, n) * room
    cy = half + rng.uniform(-1, 1, n) * room
    stroke = rng.uniform(0.9, 2.0, n)  # pixels
    contrast = rng.uniform(0.6, 1.0, n)
    noise = rng.uniform(0.03, 0.2, n)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    xs, ys = xs.reshape(1, -1), ys.reshape(1, -1)  # (1, P) pixel centres
    dx, dy = xs - cx[:, None], ys - cy[:, None]  # (n, P)
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    lx = (cos * dx + sin * dy) / scale[:, None]  # rotate back, into unit coordinates
    ly = (-sin * dx + cos * dy) / scale[:, None]
    dist = np.empty_like(lx)
    for k, name in enumerate(CLASSES):
        rows = labels == k
        if not rows.any():
            continue
        if name == "ring":
            d = np.abs(np.hypot(lx[rows], ly[rows]) - 0.8)
        else:
            d = _segment_distance(lx[rows], ly[rows], _SEGMENTS[name])
        dist[rows] = d * scale[rows, None]  # back to pixels
    ink = np.clip(stroke[:, None] / 2 + 0.5 - dist, 0.0, 1.0) * contrast[:, None]
    img = ink + rng.normal(0.0, 1.0, ink.shape) * noise[:, None]
    return np.clip(img, 0.0, 1.0).astype(np.float32).reshape(n, size, size)


class GlyphImages:
    """The glyph classification set (see the module docstring); `seed` fixes the held-out
    images, `image_size` the canvas (at least 8)."""

    unit = "img"  # what the trainer's throughput counts

    def __init__(self, *, image_size=16, seed=0, held_out=2000):
        if not isinstance(image_size, int) or image_size < 8:
            raise DataError(f"glyphs: image_size must be an integer >= 8, got {image_size!r}")
        self.name, self.image_size, self.seed = "glyphs", image_size, seed
        self.channels, self.num_classes, self.classes = 1, len(CLASSES), CLASSES
        self._val = self._draw(np.random.default_rng([seed, 7]), held_out)
        self._baseline = None

    def _draw(self, rng, n):
        labels = rng.integers(0, self.num_classes, n)
        return render_glyphs(labels, rng, self.image_size), labels.astype(np.int64)

    def describe(self):
        return {"kind": "images", "name": self.name, "image_size": self.image_size,
                "seed": self.seed}

    def get_batch(self, split, batch_size, rng):
        """(images float32 (B, H, W), labels int64 (B,)): fresh training images, or a random
        choice from the fixed held-out set."""
        if split == "train":
            return self._draw(rng, batch_size)
        if split != "val":
            raise DataError(f"split must be 'train' or 'val', got {split!r}")
        pick = rng.integers(0, len(self._val[1]), batch_size)
        return self._val[0][pick], self._val[1][pick]

    def pixel_stats(self):
        """Per-channel (mean, std) of the training images (a fixed draw of 2,000 from the
        seed), for the model's input normalisation."""
        images, _ = self._draw(np.random.default_rng([self.seed, 13]), 2000)
        return (float(images.mean()),), (float(images.std()),)

    def held_out(self, n):
        """The first n held-out (images, labels)."""
        if n > len(self._val[1]):
            raise DataError(f"glyphs: {n} held-out images asked for, {len(self._val[1])} exist")
        return self._val[0][:n], self._val[1][:n]

    def evaluate(self, model, *, final=False, examples=200):
        """{"accuracy", "accuracy_n"} of `model` on the first `examples` held-out images, and
        at the end "linear_baseline": logistic regression on the pixels, on the same images."""
        images, labels = self.held_out(min(examples, len(self._val[1])))
        out = {"accuracy": float(np.mean(classify(model, images) == labels)),
               "accuracy_n": len(labels)}
        if final:
            out["linear_baseline"] = float(np.mean(self.linear_baseline(images) == labels))
        return out

    def linear_baseline(self, images, train_images=4000, iterations=200):
        """Predictions of multinomial logistic regression on the raw pixels (and a bias),
        fitted once on `train_images` training images drawn from the seed: full-batch
        gradient descent with Nesterov momentum and a small L2 penalty (about a second)."""
        if self._baseline is None:
            x, y = self._draw(np.random.default_rng([self.seed, 11]), train_images)
            x = _with_bias(x)
            xt = np.ascontiguousarray(x.T)
            onehot = np.eye(self.num_classes, dtype=np.float32)[y]
            w = np.zeros((x.shape[1], self.num_classes), np.float32)
            velocity = np.zeros_like(w)
            for _ in range(iterations):
                ahead = w + 0.9 * velocity
                z = x @ ahead
                p = np.exp(z - z.max(1, keepdims=True))
                p /= p.sum(1, keepdims=True)
                grad = xt @ (p - onehot) / len(x) + 1e-4 * ahead
                velocity = 0.9 * velocity - 0.5 * grad
                w = w + velocity
            self._baseline = w
        return np.argmax(_with_bias(images) @ self._baseline, axis=1)


def _with_bias(images):
    """Images (n, H, W) as float32 rows of pixels with a trailing 1: (n, H*W + 1)."""
    x = np.asarray(images, np.float32).reshape(len(images), -1)
    return np.concatenate([x, np.ones((len(x), 1), np.float32)], axis=1)


def classify(model, images, batch_size=500):
    """Predicted class ids (n,) of `model` for host images (n, H, W), in eval mode."""
    preds = []
    with eval_mode(model), no_grad():
        for start in range(0, len(images), batch_size):
            logits, _ = model(images[start:start + batch_size])
            xp = ops.array_namespace(logits.data)
            preds.append(ops.to_host(xp.argmax(logits.data, axis=-1)))
    return np.concatenate(preds) if preds else np.zeros(0, np.int64)


def read_pgm(path):
    """A PGM file (P5 or P2) as float32 (H, W): its values divided by its maxval."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:2]
    if magic not in (b"P5", b"P2"):
        raise ValueError("not a PGM file (no P5/P2 header)")
    fields, pos = [], 2
    while len(fields) < 3:  # width, height, maxval; '#' starts a comment
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        fields.append(int(data[pos:end]))
        pos = end
    w, h, maxval = fields
    if not (0 < w <= 4096 and 0 < h <= 4096 and 0 < maxval < 65536):
        raise ValueError(f"bad PGM header: width {w}, height {h}, maxval {maxval}")
    if magic == b"P2":
        values = np.array(data[pos:].split()[:w * h], dtype=np.float64)
    else:
        dtype = np.uint8 if maxval < 256 else np.dtype(">u2")
        start = pos + 1
        values = np.frombuffer(data[start:start + w * h * np.dtype(dtype).itemsize], dtype)
    if values.size != w * h:
        raise ValueError(f"PGM holds {values.size} pixels, its header says {w}x{h}")
    return (values.reshape(h, w).astype(np.float64) / maxval).astype(np.float32)


def save_pgm(path, image):
    """Write a grey image (H, W) with values in [0, 1] as a binary PGM (P5)."""
    img = np.clip(np.asarray(image, np.float64), 0, 1)
    if img.ndim != 2:
        raise DataError(f"save_pgm: image must be 2-D, got shape {img.shape}")
    pixels = np.round(img * 255).astype(np.uint8)
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (img.shape[1], img.shape[0]) + pixels.tobytes())

