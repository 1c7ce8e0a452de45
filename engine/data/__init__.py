"""Training data: seeded synthetic sequence tasks and character-level text; each dataset
describes itself (for checkpoints) and evaluates a model on itself. What a dataset provides
is the contract written down in engine.models.registry."""

from engine.data.tasks import END, TASKS, SyntheticTask
from engine.data.text import CharDataset
from engine.data.vocab import DataError, Vocab
from engine.functional import IGNORE_INDEX

__all__ = ["END", "IGNORE_INDEX", "TASKS", "CharDataset", "DataError", "SyntheticTask", "Vocab",
           "build_dataset", "dataset_from_description"]


def build_dataset(*, task="reverse", text=None, task_options=None, seed=0, context_length):
    """The dataset a run asks for: character-level `text` (a file path) when given, cut in
    windows of `context_length` tokens, else the synthetic `task` with its `task_options`
    (min_len, max_len, digits) and held-out set fixed by `seed`."""
    if text is not None:
        return CharDataset(text, context_length)
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
    if kind == "text":
        if not need_text:
            return Vocab(desc["chars"])
        data = CharDataset(desc["path"], desc["block_size"])
        if data.vocab.itos != desc["chars"]:
            raise DataError(f"text file '{desc['path']}' changed: its characters differ "
                            "from the ones the checkpoint was trained on")
        return data
    raise DataError(f"unknown dataset kind {kind!r}")
