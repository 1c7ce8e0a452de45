"""Images a user brings, for the ViT: a folder with one sub-folder per class (torchvision's
ImageFolder convention) of PGM, PNG or .npy images, or one .npz holding `images` (N, H, W)
or (N, H, W, C), `labels` (N,) and optionally `classes` (names, one per label).

Pixel values take their file's declared range, nothing is guessed: a PGM is divided by its
maxval, an integer array or PNG by its dtype's largest value (255 for 8 bits, 65535 for 16),
booleans are 0/1, and floating-point values are taken as given. Images are grey (H, W) or
colour (H, W, C); all of a set must have one square size and one channel count (the ViT's
patch size must divide the side; no resizing is done). PNG needs Pillow (the `[images]`
extra); without it, one line says so.

Held-out split: an image goes to "val" when a stable hash (blake2b) of its file name within
the folder (or its index in the .npz) falls in one bucket of ten. The model normalises its
pixels with the per-channel mean and std of the training split (`pixel_stats`, stored in
the model's config); class names are stored in the checkpoint with the dataset description.
"""

import hashlib
import os

import numpy as np

from engine.data.images import classify, read_pgm
from engine.data.vocab import DataError

EXTENSIONS = (".pgm", ".png", ".npy")
MAX_IMAGES = 200_000
VAL_BUCKETS = 10


def _is_val(key):
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % VAL_BUCKETS == 0


def scale_to_range(array, where):
    """float32 pixels of `array` in its declared range (module docstring); DataError naming
    `where` for non-numbers or non-finite values."""
    a = np.asarray(array)
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        if info.min < 0 and a.size and a.min() < 0:
            raise DataError(f"{where}: negative pixel values in a {a.dtype} image")
        return (a.astype(np.float64) / info.max).astype(np.float32)
    if not np.issubdtype(a.dtype, np.floating):
        raise DataError(f"{where}: pixels must be numbers, got dtype {a.dtype}")
    if a.size and not np.all(np.isfinite(a)):
        raise DataError(f"{where}: non-finite pixel values")
    return a.astype(np.float32)


def read_image(path):
    """An image file as float32 (H, W, C) in its declared range; DataError naming the file."""
    lower = path.lower()
    try:
        if lower.endswith(".npy"):
            img = scale_to_range(np.load(path, allow_pickle=False), f"image '{path}'")
        elif lower.endswith(".png"):
            img = _read_png(path)
        elif lower.endswith(".pgm"):
            img = read_pgm(path)
        else:
            raise DataError(f"image '{path}': not a .pgm, .png or .npy file")
    except (OSError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"image '{path}' cannot be read: {e}") from None
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or not img.size or img.shape[2] > 4:
        raise DataError(f"image '{path}' must be (H, W) or (H, W, C) with C <= 4, got shape "
                        f"{img.shape}")
    return img


def load_image(path, size=None):
    """A grey image float32 (H, W) from `.npy`, PGM (P5 binary, P2 ASCII) or PNG, its values
    in the file's declared range (PGM maxval, integer dtype range; floats as given: see
    engine.data.image_files); with `size`, it must be size x size. Errors name the file."""
    if not os.path.isfile(path):
        raise DataError(f"image '{path}' is not a file")
    img = read_image(path)
    if img.shape[2] != 1:
        raise DataError(f"image '{path}' must be a grey image, got {img.shape[2]} channels")
    img = img[:, :, 0]
    if size is not None and img.shape != (size, size):
        raise DataError(f"image '{path}' is {img.shape[1]}x{img.shape[0]}; the model takes "
                        f"{size}x{size}")
    return img


def _read_png(path):
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"image '{path}': PNG needs Pillow: pip install "
                        f"'attn-engine[images]' (or pip install pillow)") from None
    with Image.open(path) as im:
        if im.mode in ("P", "LA", "PA", "CMYK", "YCbCr", "HSV", "1"):
            im = im.convert("RGBA" if "A" in im.mode else ("L" if im.mode == "1" else "RGB"))
        a = np.array(im)
    if a.dtype == np.int32 and im.mode.startswith("I"):  # 16-bit grey PNGs open as mode I
        a = a.astype(np.uint16)
    return scale_to_range(a, f"image '{path}'")


class ImageFiles:
    """A user's image classification set (module docstring)."""

    unit = "img"

    def __init__(self, path):
        self.path, self.name = path, os.path.basename(os.path.normpath(path)) or "images"
        if os.path.isdir(path):
            images, labels, keys, classes = _read_folder(path)
        elif os.path.isfile(path) and path.lower().endswith(".npz"):
            images, labels, keys, classes = _read_npz(path)
        else:
            raise DataError(f"images '{path}' is neither a folder of class folders nor an "
                            f".npz file")
        val = np.array([_is_val(k) for k in keys])
        if val.all() or not val.any():
            raise DataError(f"images '{path}': its {len(keys)} images leave the "
                            f"{'training' if val.all() else 'held-out'} split empty (one in "
                            f"ten is held out, by hash); give more images")
        self._setup(classes, images.shape[2], images.shape[1])
        self._train = (images[~val], labels[~val])
        self._val = (images[val], labels[val])

    def _setup(self, classes, image_size, channels):
        self.classes, self.num_classes = tuple(classes), len(classes)
        self.image_size, self.channels = int(image_size), int(channels)
        self._train = self._val = None

    @classmethod
    def from_description(cls, desc):
        """A dataset for sampling only: class names and image shape, no files read."""
        self = cls.__new__(cls)
        self.path = desc["path"]
        self.name = os.path.basename(os.path.normpath(self.path)) or "images"
        self._setup(list(desc["classes"]), desc["image_size"], desc["channels"])
        return self

    def describe(self):
        return {"kind": "image_files", "name": self.name, "path": self.path,
                "classes": list(self.classes),
                "image_size": self.image_size, "channels": self.channels}

    def _split(self, split):
        if self._train is None:
            raise DataError(f"images '{self.path}' were not read (sampling-only dataset)")
        if split not in ("train", "val"):
            raise DataError(f"split must be 'train' or 'val', got {split!r}")
        return self._train if split == "train" else self._val

    def pixel_stats(self):
        """Per-channel (mean, std) of the training split; None for a sampling-only dataset
        (the checkpoint's model config keeps the statistics it was trained with)."""
        if self._train is None:
            return None
        images = self._split("train")[0]  # (N, C, H, W)
        std = images.std(axis=(0, 2, 3))
        return tuple(images.mean(axis=(0, 2, 3)).tolist()), tuple(np.where(std > 0, std, 1.0)
                                                                  .tolist())

    def get_batch(self, split, batch_size, rng):
        images, labels = self._split(split)
        pick = rng.integers(0, len(labels), batch_size)
        return images[pick], labels[pick]

    def held_out(self, n):
        images, labels = self._split("val")
        return images[:n], labels[:n]

    def evaluate(self, model, *, final=False, examples=200):
        images, labels = self.held_out(len(self._split("val")[1]) if final else examples)
        return {"accuracy": float(np.mean(classify(model, images) == labels)),
                "accuracy_n": len(labels)}

    def load(self, path):
        """One image file as the model takes it, (1, C, H, W); DataError on a mismatch."""
        img = read_image(path)
        want = (self.image_size, self.image_size, self.channels)
        if img.shape != want:
            raise DataError(f"image '{path}' is {img.shape[1]}x{img.shape[0]} with "
                            f"{img.shape[2]} channel(s); the model takes {want[1]}x{want[0]} "
                            f"with {want[2]}")
        return np.ascontiguousarray(img.transpose(2, 0, 1)[None])


def _stack(images, where):
    """(N, C, H, W) float32 of images (H, W, C), all one square shape."""
    first, first_where = images[0].shape, where[0]
    for img, w in zip(images, where):
        if img.shape != first:
            raise DataError(f"image '{w}' is {img.shape[1]}x{img.shape[0]}x{img.shape[2]}; "
                            f"'{first_where}' is {first[1]}x{first[0]}x{first[2]}: all images "
                            f"need one size and channel count")
    if first[0] != first[1]:
        raise DataError(f"image '{first_where}' is {first[1]}x{first[0]}: the ViT takes square "
                        f"images (crop or pad them first)")
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))


def _read_folder(path):
    classes = sorted(d for d in os.listdir(path)
                     if not d.startswith(".") and os.path.isdir(os.path.join(path, d)))
    if len(classes) < 2:
        raise DataError(f"images '{path}' needs at least two class folders, found "
                        f"{len(classes)}")
    images, labels, keys = [], [], []
    for label, name in enumerate(classes):
        folder = os.path.join(path, name)
        for file in sorted(os.listdir(folder)):
            full = os.path.join(folder, file)
            if file.startswith(".") or not file.lower().endswith(EXTENSIONS) or \
                    not os.path.isfile(full):
                continue
            if len(keys) >= MAX_IMAGES:
                raise DataError(f"images '{path}' holds over {MAX_IMAGES} images")
            images.append(read_image(full))
            labels.append(label)
            keys.append(f"{name}/{file}")
    if not images:
        raise DataError(f"images '{path}': no .pgm, .png or .npy files in its class folders")
    where = [os.path.join(path, k) for k in keys]
    return _stack(images, where), np.array(labels, np.int64), keys, classes


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z or "labels" not in z:
                raise DataError(f"images '{path}' needs arrays 'images' and 'labels', has "
                                f"{sorted(z.files)}")
            raw, labels = z["images"], z["labels"]
            names = z.get("classes")
    except (OSError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"images '{path}' cannot be read: {e}") from None
    if raw.ndim not in (3, 4) or not raw.shape[0] or (raw.ndim == 4 and raw.shape[3] > 4):
        raise DataError(f"images '{path}': 'images' must be (N, H, W) or (N, H, W, C), got "
                        f"shape {raw.shape}")
    if labels.shape != (raw.shape[0],) or not np.issubdtype(labels.dtype, np.integer) or \
            labels.min() < 0:
        raise DataError(f"images '{path}': 'labels' must be {raw.shape[0]} integers >= 0, got "
                        f"shape {labels.shape} dtype {labels.dtype}")
    n_classes = int(labels.max()) + 1
    classes = [str(c) for c in names] if names is not None else \
        [str(i) for i in range(n_classes)]
    if len(classes) < max(n_classes, 2):
        raise DataError(f"images '{path}': {len(classes)} class names for labels up to "
                        f"{n_classes - 1} (at least two classes)")
    images = scale_to_range(raw if raw.ndim == 4 else raw[..., None], f"images '{path}'")
    if images.shape[1] != images.shape[2]:
        raise DataError(f"images '{path}' are {images.shape[2]}x{images.shape[1]}: the ViT "
                        f"takes square images")
    images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    return images, labels.astype(np.int64), [str(i) for i in range(len(labels))], classes
