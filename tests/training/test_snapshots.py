"""Attention snapshots: recorded at evaluations, bounded, atomic, never through a link, read
without pickle, and replayed by `attn runs RUN --attention`."""

import os

import numpy as np
import pytest

from engine.models import attention_maps
from engine.training import TrainConfig, load_model, snapshots, train
from tests.cli.test_cli import _one_line_error, attn

RUN = {"steps": 6, "batch_size": 8, "eval_every": 2, "eval_examples": 10,
       "final_eval_examples": 10, "ckpt_every": 0,
       "model_overrides": {"n_layer": 1, "n_embd": 32, "n_head": 2},
       "task_options": {"min_len": 3, "max_len": 5}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("snap") / "run"
    train(TrainConfig(out_dir=str(out), **RUN), progress=False)
    return out


def test_a_run_records_its_probe_at_every_evaluation_and_the_end(run_dir):
    snap = snapshots.load(run_dir)
    assert list(snap["steps"]) == [2, 4, 6]  # evaluations at 2 and 4, the final one at 6
    assert snap["names"] == ["layer.0"]
    model, data = load_model(run_dir)
    inputs, labels = snapshots.probe(data, 0)
    want = attention_maps(model, inputs)["layer.0"][0]  # (H, T, T) of the saved weights
    assert snap["labels"] == labels and len(labels) == want.shape[-1]
    assert snap["maps"]["layer.0"].shape == (3, *want.shape)
    assert np.allclose(snap["maps"]["layer.0"][-1], want, atol=1e-3)  # float16
    assert not np.allclose(snap["maps"]["layer.0"][0], want, atol=1e-3)  # it changed


def _maps(value, heads=2, t=5):
    return {"layer.0": np.full((heads, t, t), value, dtype=np.float16)}


@pytest.mark.slow
def test_bounded_in_count_and_keeps_the_first_and_last(tmp_path):
    for step in range(1, 120):
        snapshots.record(tmp_path, step, _maps(step / 200), list("abcde"))
    snap = snapshots.load(tmp_path)
    steps = list(snap["steps"])
    assert len(steps) <= snapshots.MAX_SNAPSHOTS and steps[0] == 1 and steps[-1] == 119
    assert steps == sorted(steps) and len(steps) > snapshots.MAX_SNAPSHOTS // 3
    assert np.allclose(snap["maps"]["layer.0"][:, 0, 0, 0], np.array(steps) / 200, atol=1e-3)


def test_bounded_in_bytes_and_in_tokens(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshots, "MAX_BYTES", 3000)
    maps = {"small": np.zeros((2, 5, 5), np.float16), "big": np.zeros((2, 40, 40), np.float16)}
    snapshots.record(tmp_path, 1, maps, None)
    assert snapshots.load(tmp_path)["names"] == ["small"]  # the big one would pass the bound
    assert snapshots.load(tmp_path)["labels"] is None


def test_a_resumed_run_replaces_the_steps_it_repeats(tmp_path):
    for step in (10, 20, 30):
        snapshots.record(tmp_path, step, _maps(0.1), None)
    snapshots.record(tmp_path, 20, _maps(0.5), None)
    snap = snapshots.load(tmp_path)
    assert list(snap["steps"]) == [10, 20]
    assert np.allclose(snap["maps"]["layer.0"][:, 0, 0, 0], [0.1, 0.5], atol=1e-3)


def test_a_temporary_file_left_by_a_killed_write_is_removed(tmp_path):
    (tmp_path / ".attention.abc123.tmp").write_bytes(b"half a file")
    snapshots.record(tmp_path, 3, _maps(0.2), None)
    assert sorted(os.listdir(tmp_path)) == [snapshots.FILE]


def test_never_written_through_a_symlink(tmp_path):
    outside = tmp_path / "outside.npz"
    outside.write_bytes(b"not yours")
    run = tmp_path / "run"
    run.mkdir()
    os.symlink(outside, run / snapshots.FILE)
    snapshots.record(run, 1, _maps(0.2), None)
    assert outside.read_bytes() == b"not yours"
    assert not os.path.islink(run / snapshots.FILE)
    assert [n for n in os.listdir(run) if n.endswith(".tmp")] == []


def test_a_damaged_file_is_named_on_load_and_started_again_on_record(tmp_path):
    (tmp_path / snapshots.FILE).write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(snapshots.SnapshotError, match="attention.npz.*unreadable"):
        snapshots.load(tmp_path)
    snapshots.record(tmp_path, 7, _maps(0.3), None)
    assert list(snapshots.load(tmp_path)["steps"]) == [7]
    np.savez(tmp_path / snapshots.FILE, format=np.int64(1), steps=np.arange(2),
             names=np.array([{"a": 1}], dtype=object))  # pickled: refused, not loaded
    with pytest.raises(snapshots.SnapshotError, match="unreadable"):
        snapshots.load(tmp_path)


@pytest.mark.slow
def test_attn_runs_replays_the_snapshots(run_dir):
    r = attn("runs", str(run_dir), "--attention")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "attention snapshots: 3, steps 2 to 6" in " ".join(out.split())
    assert out.count("focus ") >= 3 and "snaps" in out
    snap = snapshots.load(run_dir)
    from commands.attention_replay import choose
    label, _, focuses = choose(snap)
    assert f"{label} at step 6 (focus {focuses[-1]:.2f}" in " ".join(out.split())


@pytest.mark.slow
def test_attn_runs_attention_errors_are_one_line(ckpt_copy):
    os.remove(ckpt_copy / snapshots.FILE)  # as a run made before snapshots existed
    _one_line_error(attn("runs", str(ckpt_copy), "--attention"), "no attention snapshots")
    _one_line_error(attn("runs", "--attention"), "name the run")


def test_focus_and_the_chosen_head():
    from commands.attention_replay import choose, focus
    assert focus(np.eye(4)) == 0.0  # no row sees two keys
    causal_uniform = np.tril(np.ones((4, 4))) / np.arange(1, 5)[:, None]
    assert np.isclose(focus(causal_uniform), np.mean([1 / 2, 1 / 3, 1 / 4]))
    sharp = np.tril(np.full((4, 4), 0.01))
    sharp[np.arange(4), np.arange(4)] = 0.97
    snap = {"maps": {"layer.0": np.stack([np.stack([causal_uniform, sharp])] * 2)}}
    assert choose(snap)[0] == "layer.0 head 1"


@pytest.mark.slow
def test_attn_runs_attention_plot(run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    from engine import viz
    path = tmp_path / "formed.png"
    r = attn("runs", str(run_dir), "--attention", "--plot", str(path))
    assert r.returncode == 0, r.stderr
    assert path.stat().st_size > 0 and "as it formed" in r.stdout
    panels = [(np.eye(3) * 0.5, "abc", "abc", "a"), (np.eye(3), "abc", "abc", "b")]
    fig = viz.snapshots_figure([1, 2, 3], [3.0, 2.0, 1.0], [2], panels)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 2 and all(im.get_clim() == (0.0, 1.0) for im in images)
    assert sum(1 for ax in fig.axes if ax.get_label() == "<colorbar>") == 1
