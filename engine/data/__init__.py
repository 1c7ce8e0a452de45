"""Training data: seeded synthetic sequence tasks and character-level text; each dataset
describes itself (for checkpoints) and knows how to evaluate a model on itself."""

from engine.data.tasks import END, TASKS, SyntheticTask
from engine.data.text import CharDataset
from engine.data.vocab import DataError, Vocab, model_vocab_size
from engine.functional import IGNORE_INDEX

__all__ = ["END", "IGNORE_INDEX", "TASKS", "CharDataset", "DataError", "SyntheticTask", "Vocab",
           "dataset_from_description", "model_vocab_size"]


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
