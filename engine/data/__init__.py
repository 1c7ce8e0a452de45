"""Training data: seeded synthetic sequence tasks, character-level text and glyph images
(engine.data.images); each dataset
describes itself (for checkpoints) and evaluates a model on itself. What a dataset provides
is the contract written down in engine.models.registry."""

from engine.data.image_files import ImageFiles, load_image
from engine.data.images import GlyphImages, save_pgm
from engine.data.pairs import PairsDataset
from engine.data.tasks import END, TASKS, SyntheticTask
from engine.data.text import CharDataset
from engine.data.vocab import DataError, Vocab
from engine.functional import IGNORE_INDEX

IMAGE_TASKS = ("glyphs",)

__all__ = ["END", "IGNORE_INDEX", "IMAGE_TASKS", "TASKS", "CharDataset", "DataError",
           "GlyphImages", "ImageFiles", "PairsDataset", "SyntheticTask", "Vocab",
           "build_dataset", "dataset_from_description", "load_image", "save_pgm"]


def build_dataset(*, task="reverse", text=None, task_options=None, seed=0, context_length,
                  pairs=None, images=None, max_target=None):
    """The dataset a run asks for: character-level `text` (a file path) when given, cut in
    windows of `context_length` tokens, else the synthetic `task` with its `task_options`
    (min_len, max_len, digits) and held-out set fixed by `seed`; "glyphs" is the image
    set (task option image_size). A user's own data: `pairs`, a TSV file of
    source<TAB>target lines (engine.data.pairs), or `images`, a folder of class folders or
    an .npz (engine.data.image_files); `max_target` bounds a pair's target for an
    encoder-decoder (whose context is otherwise fitted to the file)."""
    if pairs is not None:
        return PairsDataset(pairs, context_length, max_target)
    if images is not None:
        return ImageFiles(images)
    if text is not None:
        return CharDataset(text, context_length)
    if task in IMAGE_TASKS:
        options = dict(task_options or {})
        unknown = sorted(set(options) - {"image_size"})
        if unknown:
            raise DataError(f"task {task!r} takes no {', '.join(unknown)} option")
        return GlyphImages(seed=seed, **options)
    unknown = sorted(set(task_options or {}) - {"min_len", "max_len", "digits"})
    if unknown:
        raise DataError(f"task {task!r} takes no {', '.join(map(repr, unknown))} option")
    return SyntheticTask(task, seed=seed, **(task_options or {}))


def dataset_from_description(desc, *, need_text=True):
    """Rebuild a dataset from its `describe()` dict.

    For text data with need_text=False (sampling), only the vocabulary is needed, so a
    `Vocab` is returned and the file need not exist any more.
    """
    kind = desc.get("kind")
    if kind == "task":
        return SyntheticTask(desc["name"], min_len=desc["min_len"], max_len=desc["max_len"],
                             digits=desc["digits"], seed=desc.get("seed", 0))
    if kind == "pairs":
        return PairsDataset.from_description(desc) if not need_text else \
            _same_pairs(desc)
    if kind == "image_files":
        return ImageFiles.from_description(desc) if not need_text else _same_images(desc)
    if kind == "images":
        return GlyphImages(image_size=desc["image_size"], seed=desc.get("seed", 0))
    if kind == "text":
        if not need_text:
            return Vocab(desc["chars"])
        data = CharDataset(desc["path"], desc["block_size"])
        if data.vocab.itos != desc["chars"]:
            raise DataError(f"text file '{desc['path']}' changed: its characters differ "
                            "from the ones the checkpoint was trained on")
        if desc.get("sha256", data.sha256) != data.sha256:  # older checkpoints hold no hash
            raise DataError(f"text file '{desc['path']}' changed since the checkpoint was "
                            f"trained on it (its contents differ)")
        return data
    raise DataError(f"unknown dataset kind {kind!r}")


def _same_pairs(desc):
    """The pairs file of a checkpoint being resumed, refused when its vocabulary changed."""
    data = PairsDataset(desc["path"])
    if data.describe() != desc:
        raise DataError(f"pairs file '{desc['path']}' changed: its characters or line "
                        f"lengths differ from the ones the checkpoint was trained on")
    return data


def _same_images(desc):
    """The image set of a checkpoint being resumed, refused when its classes or shape
    changed."""
    data = ImageFiles(desc["path"])
    if data.describe() != desc:
        raise DataError(f"images '{desc['path']}' changed: their classes or shape differ from "
                        f"the ones the checkpoint was trained on")
    return data
