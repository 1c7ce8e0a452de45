"""Fuzz (hypothesis): flip bytes, keys and values of a real checkpoint's config.json, model.npz
and optim.npz; loading it for sampling and for resuming either works or raises one of the
engine's clear errors (CheckpointError, DataError, ConfigError), never anything else.
"""

import io
import json
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.data import DataError
from engine.training import CheckpointError, ConfigError, load_model
from engine.training import run as runs

CLEAR = (CheckpointError, DataError, ConfigError)
FILES = ("config.json", "model.npz", "optim.npz")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=5)
ARRAYS = st.sampled_from([np.zeros(0, np.float32), np.full((2, 3), np.nan, np.float32),
                          np.ones((64, 32), np.float64), np.arange(6), np.array(["abc"]),
                          np.array(True), np.float32(1e38) * np.ones((4,), np.float32)])


def _paths(doc, prefix=()):
    """Every (container path, key) of a JSON document, depth first."""
    items = (doc.items() if isinstance(doc, dict) else
             enumerate(doc) if isinstance(doc, list) else ())
    for key, value in items:
        yield prefix, key
        yield from _paths(value, prefix + (key,))


def _mutate_json(data, text):
    doc = json.loads(text)
    paths = list(_paths(doc))
    where, key = paths[data.draw(st.integers(0, len(paths) - 1), label="path")]
    parent = doc
    for k in where:
        parent = parent[k]
    action = data.draw(st.sampled_from(["delete", "rename", "replace"]), label="action")
    if action == "replace" or isinstance(parent, list):
        parent[key] = data.draw(JSON_VALUES, label="value")
    elif action == "delete":
        del parent[key]
    else:
        parent[data.draw(st.text(max_size=6), label="new key")] = parent.pop(key)
    return json.dumps(doc).encode()


def _mutate_npz(data, raw):
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    key = data.draw(st.sampled_from(sorted(arrays)), label="array")
    action = data.draw(st.sampled_from(["delete", "rename", "replace"]), label="action")
    if action == "replace":
        arrays[key] = data.draw(ARRAYS, label="value")
    elif action == "delete":
        del arrays[key]
    else:
        arrays[data.draw(st.text("abc._", min_size=1, max_size=6), label="new key")] = \
            arrays.pop(key)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _flip_bytes(data, raw):
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        raw[data.draw(st.integers(0, len(raw) - 1), label="at")] = data.draw(
            st.integers(0, 255), label="byte")
    return bytes(raw)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_checkpoint_loads_or_raises_a_clear_error(tiny_checkpoint, tmp_path_factory,
                                                            data):
    ck = shutil.copytree(tiny_checkpoint, tmp_path_factory.mktemp("fuzz") / "ck")
    name = data.draw(st.sampled_from(FILES), label="file")
    raw = (ck / name).read_bytes()
    how = data.draw(st.sampled_from(["bytes", "structure"]), label="how")
    if how == "bytes":
        raw = _flip_bytes(data, raw)
    elif name == "config.json":
        raw = _mutate_json(data, raw)
    else:
        raw = _mutate_npz(data, raw)
    (ck / name).write_bytes(raw)
    for load in (lambda: load_model(ck),
                 lambda: runs.resume_run(runs.resume_config(str(ck), {"steps": 3}))):
        try:
            load()
        except CLEAR as e:
            assert str(e).strip(), "an error without a message"
