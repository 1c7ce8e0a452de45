"""Run directories are ours alone: no symbolic link inside one is followed, another tool's
files are never overwritten, and a refused or failed run leaves nothing it created."""

import os

import pytest

from engine.training import TrainConfig, checkpoint, rundir, train
from engine.training.rundir import RunDirError
from tests.training.conftest import TINY_RUN


def _run(out, **extra):
    return train(TrainConfig(out_dir=str(out), **{**TINY_RUN, **extra}), progress=False)


@pytest.mark.parametrize("name", ["metrics.jsonl", ".lock", "config.json", "model.npz"])
def test_a_symlink_in_a_fresh_directory_is_refused_and_its_target_kept(tmp_path, name):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(target, out / name)
    with pytest.raises(RunDirError, match=f"symbolic link '{name}'"):
        _run(out)
    assert target.read_text() == "keep me\n"
    assert sorted(os.listdir(out)) == [name]  # nothing else was created in it


def test_a_symlinked_metrics_file_is_not_truncated_on_resume(ckpt_copy, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("x" * 10_000)
    os.replace(ckpt_copy / "metrics.jsonl", tmp_path / "m")
    os.symlink(target, ckpt_copy / "metrics.jsonl")
    with pytest.raises(RunDirError, match="symbolic link 'metrics.jsonl'"):
        _run(ckpt_copy, steps=3, resume=True)
    assert target.read_text() == "x" * 10_000


@pytest.mark.parametrize("names", [["model.npz"], ["metrics.jsonl"], ["notes.txt", "a.csv"]])
def test_another_tools_files_are_never_overwritten(tmp_path, names):
    out = tmp_path / "out"
    out.mkdir()
    for name in names:
        (out / name).write_bytes(b"theirs")
    with pytest.raises(RunDirError, match="is not empty .* holds no checkpoint"):
        _run(out)
    assert sorted(os.listdir(out)) == sorted(names)
    assert all((out / name).read_bytes() == b"theirs" for name in names)
    assert rundir.fresh(str(out)) == f"{out}-2"  # a run given no --out passes it by


def test_a_refused_run_leaves_nothing_it_created(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(Exception, match="unknown config"):
        _run(out, config="huge")
    assert not out.exists()
    existing = tmp_path / "empty"
    existing.mkdir()
    with pytest.raises(Exception, match="unknown config"):
        _run(existing, config="huge")
    assert os.listdir(existing) == []


def test_a_lock_removed_meanwhile_does_not_let_a_second_run_in(tmp_path):
    with rundir.locked(tmp_path):
        fd = os.open(tmp_path / ".lock", os.O_RDWR)  # opened by a run about to lock it
        os.unlink(tmp_path / ".lock")  # as a run that saved nothing does on exit
        os.close(os.open(tmp_path / ".lock", os.O_RDWR | os.O_CREAT))  # a third run's
        with pytest.raises(RunDirError, match="in use by another training run"):
            rundir._take_lock(str(tmp_path), fd, str(tmp_path / ".lock"))
        os.close(fd)
    _run(tmp_path)  # a successful run keeps its lock file beside the checkpoint
    assert os.path.isfile(tmp_path / ".lock") and not checkpoint.writer_active(tmp_path)


def test_an_error_after_a_kept_ctrl_c_is_that_ctrl_c_and_the_run_is_saved(tmp_path,
                                                                          monkeypatch):
    """A Ctrl-C inside a Numba compile is kept (support.interrupts_kept) and the compile then
    fails with a RuntimeError of its own: the run stops as interrupted, with a checkpoint."""
    from engine.training import support
    from engine.training import trainer as train_mod

    def step(run):
        support._kept.append(KeyboardInterrupt())
        raise RuntimeError("no compiled object yet for <Library '_pack'>")

    monkeypatch.setattr(train_mod, "_train_step", step)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "out")
    ckpt = checkpoint.load(tmp_path / "out")
    assert ckpt.train_state["step"] == 0 and ckpt.train_state["interrupted"] is True
