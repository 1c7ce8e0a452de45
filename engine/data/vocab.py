"""Character vocabularies and the error every dataset raises for bad input."""

import numpy as np


class DataError(ValueError):
    """A dataset cannot be built from what was given (bad task options, unreadable text)."""


class Vocab:
    """A character <-> token id mapping; token i is the character `itos[i]`."""

    def __init__(self, chars):
        self.itos = "".join(chars)
        self.stoi = {c: i for i, c in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise DataError("vocabulary characters must be distinct")

    def __len__(self):
        return len(self.itos)

    def encode(self, text):
        """Token ids (int64) of `text`; a character outside the vocabulary is a DataError."""
        unknown = sorted(set(text) - set(self.stoi))
        if unknown:
            shown = "".join(unknown[:10])
            raise DataError(f"characters {shown!r} are not in the vocabulary {self.itos!r}")
        return np.array([self.stoi[c] for c in text], dtype=np.int64)

    def decode(self, ids):
        """The text of token ids; ids past the vocabulary (a model's spare outputs) show as ?."""
        n = len(self.itos)
        return "".join(self.itos[i] if 0 <= i < n else "?" for i in map(int, ids))

