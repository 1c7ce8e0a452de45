"""Sequence pairs a user brings: a UTF-8 TSV file, one example a line, `source<TAB>target`,
learned character by character (seq2seq-gru, seq2seq-transformer, or the GPT reading
"source = target").

Rows are laid out like the synthetic tasks' (engine.data.tasks), so every model family and
the trainer read them unchanged: the source right-aligned in a field as wide as the longest
source (left-padded), a separator, the target, an end token; the targets are the row
shifted by one with the source positions ignored, so the loss and the scores count the
target only. One vocabulary serves both sides: four special tokens (padding, separator, end,
unknown), then every character of the training split's sources and targets; a held-out
character the training split never showed reads as the unknown token.

Held-out split: a line goes to "val" when a stable hash (blake2b) of its source falls in one
bucket of ten, so a source never sits in both splits. Scores: exact match (the whole target
and its end token) and character accuracy (target positions right), teacher-forced during
training and decoded greedily at the end.

Bad files are one DataError naming the file and the line: no tab (or more than one), an
empty side, a line longer than the model's context, bytes that are not UTF-8.
"""

import hashlib
import os

import numpy as np

import ops
from engine.data.tasks import answer_row
from engine.data.vocab import DataError, Vocab
from engine.functional import IGNORE_INDEX
from engine.models.generate import generate
from engine.nn import eval_mode

PAD, SEP, END, UNK = 0, 1, 2, 3
SPECIALS = "\x00\x01\x02\x03"  # their characters in the vocabulary string
MAX_BYTES = 64 << 20  # a bigger file is refused before it is read
MAX_SOURCE = 512  # characters: the encoder's field is as wide as the longest source
VAL_BUCKETS = 10


def _is_val(source):
    digest = hashlib.blake2b(source.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % VAL_BUCKETS == 0


def read_pairs(path, max_tokens=None, max_target=None):
    """[(line number, source, target)] of a TSV file; DataError naming the file and line for
    anything but `source<TAB>target` lines of UTF-8 (blank lines are skipped). max_tokens
    bounds len(source) + len(target) + 1, the tokens a line takes in a decoder-only model's
    row; max_target (an encoder-decoder's decoder positions) bounds len(target) + 1
    instead, its source field being fitted to the file."""
    if not os.path.isfile(path):
        raise DataError(f"pairs file '{path}' is not a file")
    if os.path.getsize(path) > MAX_BYTES:
        raise DataError(f"pairs file '{path}' is over {MAX_BYTES >> 20} MiB")
    with open(path, "rb") as f:
        raw = f.read()
    pairs = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        where = f"{path}:{number}"
        try:
            text = line.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError as e:
            raise DataError(f"{where}: not UTF-8 (byte {e.start + 1} of the line)") from None
        if not text.strip():
            continue
        parts = text.split("\t")
        if len(parts) != 2:
            raise DataError(f"{where}: needs one tab between source and target, found "
                            f"{len(parts) - 1}")
        source, target = parts
        if not source or not target:
            raise DataError(f"{where}: the {'source' if not source else 'target'} is empty")
        if any(c in SPECIALS for c in text):
            raise DataError(f"{where}: holds a control character U+0000..U+0003")
        if len(source) > MAX_SOURCE:
            raise DataError(f"{where}: the source has {len(source)} characters; at most "
                            f"{MAX_SOURCE}")
        if max_target is not None:
            if len(target) + 1 > max_target:
                raise DataError(f"{where}: the target has {len(target)} characters; the "
                                f"model's decoder takes at most {max_target - 1}")
        elif max_tokens is not None and len(source) + len(target) + 1 > max_tokens:
            raise DataError(f"{where}: {len(source)} + {len(target)} characters do not fit "
                            f"the model's context of {max_tokens} tokens")
        pairs.append((number, source, target))
    if not pairs:
        raise DataError(f"pairs file '{path}' holds no source<TAB>target lines")
    return pairs


class PairsDataset:
    """The examples of a pairs file (module docstring). `max_tokens` is the model's context,
    `max_target` an encoder-decoder's decoder positions (lines that cannot fit are refused
    by number; see read_pairs)."""

    unit = "ex"

    def __init__(self, path, max_tokens=None, max_target=None):
        self.path, self.name = path, os.path.basename(path)
        pairs = read_pairs(path, max_tokens, max_target)
        train = [(s, t) for _, s, t in pairs if not _is_val(s)]
        val = [(s, t) for _, s, t in pairs if _is_val(s)]
        if not train or not val:
            raise DataError(f"pairs file '{path}': its {len(pairs)} lines leave the "
                            f"{'training' if not train else 'held-out'} split empty (one "
                            f"source in ten is held out, by hash); give more lines")
        chars = sorted({c for s, t in train for c in s + t})
        self._setup(Vocab(SPECIALS + "".join(chars)), max(len(s) for _, s, _ in pairs),
                    max(len(t) for _, _, t in pairs))
        self._train = [self._encode_pair(s, t) for s, t in train]
        self._val = [self._encode_pair(s, t) for s, t in val]

    def _setup(self, vocab, input_width, target_width):
        self.vocab, self.input_width, self.target_width = vocab, input_width, target_width
        self.pad_id = PAD
        self.seq_len = input_width + 1 + target_width  # the row minus its last token
        self._train = self._val = None

    @classmethod
    def from_description(cls, desc):
        """A dataset for sampling only (no file needed): vocabulary and widths."""
        self = cls.__new__(cls)
        self.path, self.name = desc["path"], os.path.basename(desc["path"])
        self._setup(Vocab(desc["chars"]), int(desc["input_width"]), int(desc["target_width"]))
        return self

    @property
    def vocab_size(self):
        return len(self.vocab)

    def describe(self):
        return {"kind": "pairs", "name": self.name, "path": self.path, "chars": self.vocab.itos,
                "input_width": self.input_width, "target_width": self.target_width}

    def encode(self, text):
        """Token ids of text; characters the training split never showed are UNK."""
        return np.array([self.vocab.stoi.get(c, UNK) for c in text], dtype=np.int64)

    def decode(self, ids):
        """Text of token ids, up to the end token; specials show as nothing."""
        out = []
        for i in map(int, ids):
            if i == END:
                break
            out.append("" if i < len(SPECIALS) else self.vocab.decode([i]))
        return "".join(out)

    def _encode_pair(self, source, target):
        return self.encode(source), self.encode(target)

    def parse_prompt(self, text):
        """Source tokens of a user's source text."""
        if not text or len(text) > self.input_width:
            raise DataError(f"a source of 1 to {self.input_width} characters is needed, got "
                            f"{len(text)}")
        return self.encode(text)

    def prompt(self, source):
        """The source right-aligned in its field, then the separator."""
        out = np.full(self.input_width + 1, PAD, dtype=np.int64)
        out[self.input_width - len(source):self.input_width] = source
        out[self.input_width] = SEP
        return out

    def example(self, pair):
        source, target = pair
        return answer_row(self.prompt(source), target, self.seq_len, PAD, END)

    def batch_of(self, pairs):
        rows = [self.example(p) for p in pairs]
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

    def _split(self, split):
        if self._train is None:
            raise DataError(f"pairs file '{self.path}' was not read (sampling-only dataset)")
        if split not in ("train", "val"):
            raise DataError(f"split must be 'train' or 'val', got {split!r}")
        return self._train if split == "train" else self._val

    def get_batch(self, split, batch_size, rng):
        pairs = self._split(split)
        return self.batch_of([pairs[i] for i in rng.integers(0, len(pairs), batch_size)])

    def held_out(self, n):
        """The first n held-out (source, target) token pairs (fewer when fewer exist)."""
        return self._split("val")[:n]

    def evaluate(self, model, *, final=False, examples=200):
        """{"exact_match", "char_accuracy", "exact_match_n"} on held-out pairs: decoded
        greedily when `final`, else teacher-forced."""
        pairs = self.held_out(examples)
        exact, chars = score(model, self, pairs, generate_answers=final)
        return {"exact_match": exact, "char_accuracy": chars, "exact_match_n": len(pairs)}

    def translate(self, model, sources):
        """Greedy answers (token arrays, up to and without the end token) for sources."""
        prompts = np.stack([self.prompt(s) for s in sources])
        with eval_mode(model):
            out = ops.to_host(generate(model, prompts, self.target_width + 1, greedy=True))
        answers = []
        for row in out[:, prompts.shape[1]:]:
            stop = np.flatnonzero(row == END)
            answers.append(row[:stop[0]] if len(stop) else row)
        return answers


def score(model, data, pairs, *, generate_answers, batch_size=250):
    """(exact match, character accuracy) of model on pairs; a character counts when the
    answer has the target's character at its position (the end token counts as one)."""
    exact = right = total = 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        wants = [np.append(t, END) for _, t in chunk]
        if generate_answers:
            gots = [np.append(a, END) for a in data.translate(model, [s for s, _ in chunk])]
        else:
            gots = _teacher_forced(model, data, chunk)
        for want, got in zip(wants, gots):
            n = min(len(want), len(got))
            hits = int(np.sum(want[:n] == got[:n]))
            right, total = right + hits, total + len(want)
            exact += int(hits == len(want) and len(got) == len(want))
    return exact / max(len(pairs), 1), right / max(total, 1)


def _teacher_forced(model, data, chunk):
    """Per pair, the argmax at each target position given the true prefix."""
    idx, targets = data.batch_of(chunk)
    with eval_mode(model):
        logits, _ = model(idx, targets)
        xp = ops.array_namespace(logits.data)
        pred = ops.to_host(xp.argmax(logits.data, axis=-1))  # (B, T')
    targets = targets[:, targets.shape[1] - pred.shape[1]:]
    return [p[t != IGNORE_INDEX] for p, t in zip(pred, targets)]
