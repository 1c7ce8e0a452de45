"""Character-level language-modelling data from a UTF-8 text file, and its bigram baseline."""

import hashlib
import os
import stat

import numpy as np

from engine.data.vocab import DataError, Vocab

TEXT_VAL_FRACTION = 0.1
# The largest text file read (bytes): its characters become int64 tokens (8 bytes each), so
# 64 MiB of text is up to 512 MiB of tokens. A larger corpus wants a tokenizer and a
# memory-mapped dataset, which this character model is not.
MAX_TEXT_BYTES = 64 * 2**20


def _read_text(path):
    """(the UTF-8 contents of `path`, their sha256), or a DataError that names the file: a
    regular file of at most MAX_TEXT_BYTES (a device or pipe such as /dev/zero never ends)."""
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise DataError(f"text file '{path}' is not a regular file")
            raw = f.read(MAX_TEXT_BYTES + 1)
    except FileNotFoundError:
        raise DataError(f"text file '{path}' does not exist") from None
    except OSError as e:
        raise DataError(f"cannot read text file '{path}': {e.strerror or e}") from None
    if len(raw) > MAX_TEXT_BYTES:
        raise DataError(f"text file '{path}' is larger than {MAX_TEXT_BYTES // 2**20} MiB, "
                        f"the most a character model reads")
    try:
        return raw.decode("utf-8-sig"), _digest(raw)
    except UnicodeDecodeError as e:
        raise DataError(f"text file '{path}' is not UTF-8 text "
                        f"(invalid byte at offset {e.start})") from None


def _digest(raw):
    return hashlib.sha256(raw).hexdigest()


class CharDataset:
    """Character-level language modelling data from a UTF-8 text file.

    The vocabulary is the sorted set of characters in the file; the first 90% of the
    characters are the training split and the last 10% the validation split. A batch is
    `batch_size` random windows of `block_size` characters, targets shifted by one.
    """

    def __init__(self, path, block_size, *, text=None):
        self.path = str(path)
        if text is None:
            text, self.sha256 = _read_text(self.path)
        else:
            self.sha256 = _digest(text.encode("utf-8"))
        need = 10 * (block_size + 1)
        if len(text) < need:
            raise DataError(f"text file '{self.path}' has {len(text)} characters; "
                            f"block_size {block_size} needs at least {need} "
                            f"(10% is held out for validation)")
        self.block_size = self.seq_len = int(block_size)
        self.vocab = Vocab(sorted(set(text)))
        data = self.vocab.encode(text)
        n_train = len(data) * 9 // 10
        self.splits = {"train": data[:n_train], "val": data[n_train:]}

    @classmethod
    def from_text(cls, text, block_size, name="<text>"):
        """A dataset over a string already in memory (tests, generated corpora)."""
        return cls(name, block_size, text=text)

    @property
    def vocab_size(self):
        return len(self.vocab)

    def describe(self):
        return {"kind": "text", "path": os.path.abspath(self.path), "chars": self.vocab.itos,
                "block_size": self.block_size, "sha256": self.sha256}

    def get_batch(self, split, batch_size, rng):
        """Random windows of `split`: (idx int64 (B, T), targets int64 (B, T))."""
        if split not in self.splits:
            raise DataError(f"split must be 'train' or 'val', got {split!r}")
        data, T = self.splits[split], self.block_size
        starts = rng.integers(0, len(data) - T, size=batch_size)
        offsets = starts[:, None] + np.arange(T)[None, :]  # (B, T)
        return data[offsets], data[offsets + 1]

    def evaluate(self, model, *, final=False, examples=None):
        """This dataset's metrics: at the end of a run, {"bigram_baseline"} to compare the
        validation loss with (the model itself is not needed: the trainer measures its loss;
        `examples` is ignored, text has no held-out problems)."""
        return {"bigram_baseline": self.bigram_baseline()} if final else {}

    def bigram_baseline(self):
        """Validation loss (nats per character) of an add-one smoothed bigram model."""
        V = self.vocab_size
        train, val = self.splits["train"], self.splits["val"]
        counts = np.ones((V, V), dtype=np.float64)
        np.add.at(counts, (train[:-1], train[1:]), 1.0)
        logp = np.log(counts / counts.sum(axis=1, keepdims=True))
        return float(-logp[val[:-1], val[1:]].mean())
