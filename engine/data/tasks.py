"""Training data: seeded synthetic sequence tasks and a character-level text corpus.

Synthetic tasks (reverse, copy, sort, add) share one 14-token vocabulary: the digits,
'+' between addends, '=' separating input from answer, '.' ending the answer and '_' as
padding. An example is the token sequence "input = answer ." padded to a fixed length;
`idx` is the sequence without its last token and `targets` the sequence shifted by one,
with every prompt and padding position set to IGNORE_INDEX so that the loss and the
exact-match score count the answer (and its end token) only.

The input is right-aligned in a field of max_len tokens (left-padded with '_'), so '='
always sits at the same position: answer token j of "reverse" then always reads the input
at a fixed position, which a two-layer model learns in a few hundred steps (with the input
left-aligned it must first find where the input ends, and learns far more slowly).

Held-out split: an input goes to "val" when a stable hash (blake2b) of its tokens falls
in one bucket of ten, so train and val never share an input, by construction.

Addition: operands are zero-padded to `digits` digits and the sum is written with
`digits + 1` digits, least significant first ("123+456=" answers "9750."), so the model
can produce each digit after the carry it depends on.

Vocabulary size: the model keeps its configured vocab_size (64 in the canonical configs)
when the data needs fewer tokens, and grows it to the data's size when a text has more
distinct characters (the model config's `for_data`, see engine.models.registry).

Evaluation belongs to the task (`evaluate`): exact match on a fixed held-out set, by
teacher forcing for periodic evaluations and by greedy decoding for the final one.
"""

import hashlib
import numbers

import numpy as np

import ops
from engine.data.vocab import DataError, Vocab
from engine.functional import IGNORE_INDEX
from engine.models.generate import generate
from engine.nn import eval_mode

TASKS = ("reverse", "copy", "sort", "add")
TASK_CHARS = "0123456789+=._"
PLUS, SEP, END, PAD = 10, 11, 12, 13


def answer_row(prompt, answer, seq_len, pad, end):
    """(idx (seq_len,), targets (seq_len,)) int64 of prompt + answer + end, padded with `pad`,
    scored on the answer and its end only (the rows of tasks and of pairs files)."""
    full = np.concatenate([prompt, answer, [end]])
    padded = np.full(seq_len + 1, pad, dtype=np.int64)
    padded[:len(full)] = full
    idx, targets = padded[:-1].copy(), padded[1:].copy()
    # Position t predicts token t+1: the prompt's last position ('=') predicts the first
    # answer token.
    targets[:len(prompt) - 1] = IGNORE_INDEX
    targets[len(full) - 1:] = IGNORE_INDEX
    return idx, targets
VAL_BUCKETS = 10  # one input in VAL_BUCKETS is held out
ENUMERATE_LIMIT = 20_000  # a task with at most this many inputs lists its held-out ones


def _is_val(tokens):
    """True when the input `tokens` belong to the held-out split (stable across runs)."""
    digest = hashlib.blake2b(np.asarray(tokens, np.uint8).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % VAL_BUCKETS == 0


class SyntheticTask:
    """One synthetic task; `get_batch` draws training or held-out examples from an rng.

    name: "reverse" (the default), "copy", "sort" (digit strings of min_len..max_len
    digits) or "add" (two `digits`-digit numbers). seed fixes the held-out evaluation set.
    """

    def __init__(self, name="reverse", *, min_len=8, max_len=16, digits=3, seed=0):
        if name not in TASKS:
            raise DataError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
        for key, value in (("min_len", min_len), ("max_len", max_len), ("digits", digits),
                           ("seed", seed)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
                raise DataError(f"{key} must be an integer >= 0, got {value!r}")
        if not 1 <= min_len <= max_len:
            raise DataError(f"need 1 <= min_len <= max_len, got {min_len}..{max_len}")
        if digits < 1:
            raise DataError(f"digits must be >= 1, got {digits}")
        self.name, self.min_len, self.max_len, self.digits = name, min_len, max_len, digits
        self.seed = seed
        self.vocab = Vocab(TASK_CHARS)
        # Longest full sequence: input, '=', answer, '.'; idx drops its last token.
        if name == "add":
            longest = (2 * digits + 1) + 1 + (digits + 1) + 1
        else:
            longest = 2 * max_len + 2
        self.seq_len = longest - 1
        self.pad_id = PAD  # the padding token (encoder-decoders mask it out of the source)
        self._held_out = {}

    @property
    def vocab_size(self):
        return len(self.vocab)

    def describe(self):
        """JSON-able description; `dataset_from_description` rebuilds the task from it."""
        return {"kind": "task", "name": self.name, "min_len": self.min_len,
                "max_len": self.max_len, "digits": self.digits, "seed": self.seed}

    def _random_inputs(self, rng, m):
        """`m` random inputs (int64 token arrays), drawn as one block from `rng`."""
        if self.name == "add":
            d = self.digits
            ab = rng.integers(0, 10, size=(m, 2 * d))
            plus = np.full((m, 1), PLUS)
            return list(np.concatenate([ab[:, :d], plus, ab[:, d:]], axis=1))
        lengths = rng.integers(self.min_len, self.max_len + 1, size=m)
        digits = rng.integers(0, 10, size=(m, self.max_len))
        return [row[:n] for row, n in zip(digits, lengths)]

    def answer(self, inp):
        """The answer tokens for input tokens `inp` (without '=' and '.')."""
        inp = np.asarray(inp, dtype=np.int64)
        if self.name == "reverse":
            return inp[::-1].copy()
        if self.name == "copy":
            return inp.copy()
        if self.name == "sort":
            return np.sort(inp)
        a = int(self.vocab.decode(inp[:self.digits]))
        b = int(self.vocab.decode(inp[self.digits + 1:]))
        total = f"{a + b:0{self.digits + 1}d}"[::-1]
        return self.vocab.encode(total)

    def sample_inputs(self, split, n, rng):
        """`n` random inputs of `split` ("train" or "val"), drawn by rejection."""
        if split not in ("train", "val"):
            raise DataError(f"split must be 'train' or 'val', got {split!r}")
        want_val = split == "val"
        out = []
        for _ in range(100):
            # Draw about twice what the split's share should yield, keep those in the split.
            share = 1 / VAL_BUCKETS if want_val else 1 - 1 / VAL_BUCKETS
            m = max(16, int(2 * (n - len(out)) / share))
            out += [x for x in self._random_inputs(rng, m) if _is_val(x) == want_val]
            if len(out) >= n:
                return out[:n]
        raise DataError(f"task {self.name!r} has (almost) no {split} examples; widen it")

    @property
    def input_width(self):
        """Tokens in the (right-aligned) input field of every prompt."""
        return 2 * self.digits + 1 if self.name == "add" else self.max_len

    def prompt(self, inp):
        """Prompt tokens for input `inp`: the input right-aligned in its field, then '='."""
        width = self.input_width
        if len(inp) > width:
            raise DataError(f"input of {len(inp)} tokens does not fit task {self.name!r} "
                            f"(at most {width})")
        out = np.full(width + 1, PAD, dtype=np.int64)
        out[width - len(inp):width] = inp
        out[width] = SEP
        return out

    def example(self, inp):
        """(idx (seq_len,), targets (seq_len,)) int64 for one input, answer-only targets."""
        return answer_row(self.prompt(inp), self.answer(inp), self.seq_len, PAD, END)

    def batch_of(self, inputs):
        """Stack the examples of `inputs`: (idx (B, T), targets (B, T)) int64."""
        pairs = [self.example(inp) for inp in inputs]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def get_batch(self, split, batch_size, rng):
        """A random batch of `split`: (idx int64 (B, T), targets int64 (B, T))."""
        return self.batch_of(self.sample_inputs(split, batch_size, rng))

    def held_out(self, n):
        """The first `n` distinct inputs of the fixed held-out evaluation set (a function of
        seed); fewer when the task has fewer held-out problems than `n` (all of them)."""
        have = self._held_out.get("inputs", [])
        if len(have) < n and not self._held_out.get("all"):
            space = self.input_space()
            if space <= ENUMERATE_LIMIT:  # small: the whole held-out split, in a seeded order
                have = self._all_val_inputs()
                self._held_out["all"] = True
            elif n * VAL_BUCKETS * 4 > space:
                raise DataError(f"task {self.name!r} has about {space // VAL_BUCKETS:,} "
                                f"held-out problems; {n:,} were asked for")
            else:  # large: drawn in fixed blocks of 100 from one rng, so a smaller set is a prefix
                rng, have, seen = np.random.default_rng([self.seed, 7]), [], set()
                while len(have) < n:
                    for x in self.sample_inputs("val", 100, rng):
                        if x.tobytes() not in seen:
                            seen.add(x.tobytes())
                            have.append(x)
            self._held_out["inputs"] = have
        return have[:n]

    def input_space(self):
        """How many distinct inputs the task has (both splits)."""
        if self.name == "add":
            return 10 ** (2 * self.digits)
        return sum(10 ** k for k in range(self.min_len, self.max_len + 1))

    def _all_val_inputs(self):
        """Every held-out input of a small task, in an order fixed by the seed."""
        lengths = ([2 * self.digits] if self.name == "add"
                   else range(self.min_len, self.max_len + 1))
        inputs = []
        for k in lengths:
            grid = np.indices((10,) * k).reshape(k, -1).T  # (10**k, k) every digit string
            if self.name == "add":
                grid = np.concatenate([grid[:, :self.digits], np.full((len(grid), 1), PLUS),
                                       grid[:, self.digits:]], axis=1)
            inputs += [x for x in grid.astype(np.int64) if _is_val(x)]
        order = np.random.default_rng([self.seed, 7]).permutation(len(inputs))
        return [inputs[i] for i in order]

    def parse_prompt(self, text):
        """Input tokens of a user prompt: digits ("31415") or, for add, "123+456" ('='
        optional; short addends are zero-padded)."""
        body = text.strip().removesuffix("=")
        if self.name == "add":
            parts = body.split("+")
            if len(parts) != 2 or not all(p.isdigit() and len(p) <= self.digits for p in parts):
                raise DataError(f"prompt {text!r} is not a sum of two numbers of at most "
                                f"{self.digits} digits, like 123+456")
            body = "+".join(p.zfill(self.digits) for p in parts)
        elif not (body.isdigit() and len(body) <= self.max_len):
            raise DataError(f"prompt {text!r} is not a string of 1 to {self.max_len} digits")
        return self.vocab.encode(body)

    def prompt_tokens(self, text):
        """The model's prompt (padded input, then '=') for a user prompt like "31415"."""
        return self.prompt(self.parse_prompt(text))

    def evaluate(self, model, *, final=False, examples=200):
        """This task's metrics for `model`: {"exact_match", "exact_match_n"} on the first
        `examples` held-out problems, decoded greedily when `final`, else teacher-forced."""
        examples = len(self.held_out(examples))  # distinct problems: fewer when few exist
        return {"exact_match": self.exact_match(model, examples, generate=final),
                "exact_match_n": examples}

    def exact_match(self, model, n=1000, *, generate=True, batch_size=500):
        """Fraction of `n` held-out problems whose whole answer (and end token) is right.

        generate=True decodes greedily with engine.models.generate; generate=False reads the
        argmax at every answer position of one teacher-forced forward pass. The two agree
        (greedy decoding reproduces the answer exactly when each next-token argmax given the
        true prefix is right), and the teacher-forced form is far cheaper for periodic evals.
        """
        inputs = self.held_out(n)
        fn = _exact_match_generate if generate else _exact_match_teacher_forced
        return fn(model, self, inputs, batch_size)


def _exact_match_teacher_forced(model, task, inputs, batch_size):
    correct = 0
    with eval_mode(model):
        for start in range(0, len(inputs), batch_size):
            idx, targets = task.batch_of(inputs[start:start + batch_size])  # host (B, T)
            logits, _ = model(idx, targets)  # targets ask for logits at every position
            xp = ops.array_namespace(logits.data)  # the argmax runs on the model's device
            pred = ops.to_host(xp.argmax(logits.data, axis=-1))  # (B, T'), copied to the host
            # An encoder-decoder returns its decoder's logits only: the last T' positions.
            targets = targets[:, targets.shape[1] - pred.shape[1]:]
            ok = (pred == targets) | (targets == IGNORE_INDEX)
            correct += int(ok.all(axis=1).sum())
    return correct / len(inputs)


def _exact_match_generate(model, task, inputs, batch_size):
    correct = 0
    with eval_mode(model):
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start:start + batch_size]
            prompts = np.stack([task.prompt(inp) for inp in chunk])  # (B, Tp), equal lengths
            wants = [np.append(task.answer(inp), END) for inp in chunk]
            steps = max(len(w) for w in wants)
            tokens = ops.to_host(generate(model, prompts, steps, greedy=True))  # host ints
            out = tokens[:, prompts.shape[1]:]
            # Tokens after a correct end token do not matter.
            correct += sum(bool(np.array_equal(row[:len(w)], w)) for row, w in zip(out, wants))
    return correct / len(inputs)
