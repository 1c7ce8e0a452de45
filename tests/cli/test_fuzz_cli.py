"""Fuzz (hypothesis) through the command line, in process: damaged config.json, metrics.jsonl
and .npz headers, and hostile argument lists for train, sample and runs. Every outcome is an
exit status with at most one error line (never a traceback), nothing runs unbounded, and
nothing is written outside the run directory the command was given.

Training itself is replaced by building the run (every loader and check a real run makes
first) and decoding is cut to a few tokens, so each example is quick."""

import contextlib
import io
import json
import os
import shutil
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli
import engine.models.generate
from engine.training import run as runs
from engine.training import trainer
from tests.training.test_fuzz_checkpoint import JSON_VALUES

# The same examples every run (CI must not pass or fail by luck); ATTN_FUZZ_SEARCH=N explores
# N fresh random examples per test instead, to look for new failures.
_SEARCH = int(os.environ.get("ATTN_FUZZ_SEARCH", "0") or 0)
FUZZ = settings(max_examples=_SEARCH or 25, deadline=None, database=None, derandomize=not _SEARCH,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture
def quick(monkeypatch):
    """Train: build the run (data, model, checks) and stop; sample: at most 4 tokens."""
    def build_only(cfg, progress):
        run = runs.resume_run(cfg) if cfg.resume else runs.new_run(cfg)
        return {**run.history, "final": {"step": run.step}}

    real = engine.models.generate.generate
    monkeypatch.setattr(trainer, "_train", build_only)
    monkeypatch.setattr(engine.models.generate, "generate",
                        lambda model, idx, n, **kw: real(model, idx, min(n, 4), **kw))


def _tree(root):
    """{path: (size, mtime)} of everything under `root` (what a command may not touch)."""
    found = {}
    for where, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(where, name)
            st_ = os.lstat(path)
            found[path] = (st_.st_size, st_.st_mtime_ns)
    return found


def _cli(argv, outside, inside=None):
    """Run `attn argv` in process: an exit status, at most one stderr line and no traceback,
    and nothing under `outside` changed except within `inside`."""
    before = {p: v for p, v in _tree(outside).items()
              if inside is None or not p.startswith(str(inside))}
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = cli.main(argv)
        except SystemExit as e:  # argparse's usage errors
            status = e.code
    lines = err.getvalue().strip().splitlines()
    assert status in (0, 1, 2), (argv, status, err.getvalue())
    assert status == 0 or len(lines) == 1, (argv, err.getvalue())
    assert "Traceback" not in err.getvalue(), (argv, err.getvalue())
    after = {p: v for p, v in _tree(outside).items()
             if inside is None or not p.startswith(str(inside))}
    assert after == before, (argv, set(after) ^ set(before))
    return status


def _arena(tiny_checkpoint):
    """A fresh directory holding a copy of the checkpoint (ck) and a file that must stay."""
    arena = tempfile.mkdtemp(prefix="fuzz-")
    ck = shutil.copytree(tiny_checkpoint, os.path.join(arena, "ck"))
    with open(os.path.join(arena, "precious.txt"), "w") as f:
        f.write("keep me\n")
    return arena, ck


# ---- metrics.jsonl -------------------------------------------------------------------------

LINES = st.one_of(JSON_VALUES.map(json.dumps), st.binary(max_size=30).map(
    lambda b: b.decode("latin-1")), st.fixed_dictionaries(
        {"kind": st.sampled_from(["train", "eval", "final", "x"])},
        optional={"step": JSON_VALUES, "loss": JSON_VALUES, "val_loss": JSON_VALUES,
                  "exact_match": JSON_VALUES}).map(json.dumps))


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_damaged_metrics_jsonl(tiny_checkpoint, quick, data):
    arena, ck = _arena(tiny_checkpoint)
    path = os.path.join(ck, "metrics.jsonl")
    with open(path, "rb") as f:
        rows = f.read().splitlines()
    at = data.draw(st.integers(0, len(rows) - 1), label="row")
    rows[at] = data.draw(LINES, label="line").encode("utf-8", "replace")
    with open(path, "wb") as f:
        f.write(b"\n".join(rows) + b"\n")
    _cli(["train", "--resume", "--out", ck, "--steps", "3", "--quiet"], arena, ck)
    _cli(["runs", ck], arena)
    _cli(["runs", "--root", arena], arena)
    shutil.rmtree(arena)


# ---- config.json ---------------------------------------------------------------------------

@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_damaged_config_json(tiny_checkpoint, quick, data):
    from tests.training.test_fuzz_checkpoint import _mutate_json
    arena, ck = _arena(tiny_checkpoint)
    path = os.path.join(ck, "config.json")
    with open(path, "rb") as f:
        raw = f.read()
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        raw = _mutate_json(data, raw)
    with open(path, "wb") as f:
        f.write(raw)
    _cli(["train", "--resume", "--out", ck, "--steps", "3", "--quiet"], arena, ck)
    _cli(["sample", "--ckpt", ck, "--num", "1"], arena)
    _cli(["runs", ck], arena)
    shutil.rmtree(arena)


# ---- .npz headers --------------------------------------------------------------------------

HEADERS = st.fixed_dictionaries({
    "descr": st.sampled_from(["<f4", "<f8", "<i8", "|b1", "|O", "<U3", "<f2", ">f4"]),
    "fortran_order": st.booleans(),
    "shape": st.lists(st.integers(0, 2**40), max_size=3).map(tuple)})


@pytest.mark.slow
@FUZZ
@given(header=HEADERS, data_len=st.integers(0, 64), name=st.sampled_from(
    ["model.npz", "optim.npz"]), compressed=st.booleans(), member=st.sampled_from(
    ["transformer.wte.weight.npy", "__save_id__.npy", "x.npy"]))
def test_npz_headers(tiny_checkpoint, quick, header, data_len, name, compressed, member):
    arena, ck = _arena(tiny_checkpoint)
    path = os.path.join(ck, name)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    body = io.BytesIO()
    np.lib.format.write_array_header_1_0(body, header)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compressed else
                         zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            if f"{key}.npy" != member:
                with zf.open(f"{key}.npy", "w") as f:
                    np.lib.format.write_array(f, value, allow_pickle=False)
        zf.writestr(member, body.getvalue() + bytes(data_len))
    _cli(["sample", "--ckpt", ck, "--num", "1"], arena)
    _cli(["train", "--resume", "--out", ck, "--steps", "3", "--quiet"], arena, ck)
    shutil.rmtree(arena)


# ---- argument lists ------------------------------------------------------------------------

VALUES = st.sampled_from(["0", "1", "-1", "2", "10000000000", "1e308", "nan", "inf", "-inf",
                          "", " ", "abc", "0.5", "1e-9", "tiny", "small", "gpt", "vit",
                          "seq2seq-gru", "seq2seq-transformer", "glyphs", "add", "reverse",
                          "/dev/zero", "/proc/self", ".", "..", "cpu", "cuda", "runs"])
TRAIN_FLAGS = ["--task", "--text", "--model", "--config", "--device", "--steps", "--seed",
               "--batch-size", "--lr", "--eval-every", "--eval-examples", "--ckpt-every",
               "--digits", "--min-len", "--max-len"]
SAMPLE_FLAGS = ["--task", "--model", "--prompt", "--temperature", "--top-k", "--tokens",
                "--num", "--seed", "--image"]


def _argv(data, flags, switches):
    argv = []
    for flag in data.draw(st.lists(st.sampled_from(flags), max_size=4, unique=True),
                          label="flags"):
        argv += [flag, data.draw(VALUES, label=flag)]
    return argv + data.draw(st.lists(st.sampled_from(switches), max_size=2, unique=True),
                            label="switches")


@pytest.mark.slow
@settings(FUZZ, max_examples=_SEARCH or 40)
@given(data=st.data())
def test_hostile_arguments(tiny_checkpoint, quick, monkeypatch, data):
    arena, ck = _arena(tiny_checkpoint)
    monkeypatch.chdir(arena)  # runs/ of a run given no --out lands here
    out = os.path.join(arena, "out")
    train = _argv(data, TRAIN_FLAGS, ["--resume", "--quiet"])
    where = data.draw(st.sampled_from([out, ck]), label="out")
    _cli(["train", *train, "--out", where], arena, where)  # only the run directory changes
    sample = _argv(data, SAMPLE_FLAGS, ["--greedy", "--attention"])
    _cli(["sample", "--ckpt", ck, *sample], arena)
    _cli(["runs", *data.draw(st.sampled_from([[], [ck], ["--root", arena], ["nope"]]),
                             label="runs")], arena)
    shutil.rmtree(arena)
