"""Nothing lost: run directories proved writable and locked, fresh names, the newest
run, failed saves that keep the run, stale temporaries cleaned, reads that wait out a save."""

import os
import shutil
import threading
import time

import pytest

from engine.training import SaveError, TrainConfig, checkpoint, rundir, train
from engine.training import trainer as train_mod
from engine.training.rundir import RunDirError
from tests.training.conftest import TINY_RUN


def test_an_unusable_directory_is_refused_before_any_work(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    for bad, words in [(afile, "exists and is not a directory"),
                       (afile / "sub", "Not a directory"), ("/proc/nope", "cannot save"),
                       ("/dev/full", "exists and is not a directory")]:
        with pytest.raises(RunDirError, match=words):
            train(TrainConfig(out_dir=str(bad), **TINY_RUN), progress=False)


def test_a_locked_directory_is_refused_and_the_lock_ends_with_the_block(tmp_path):
    with rundir.locked(tmp_path):
        assert checkpoint.writer_active(tmp_path)
        with pytest.raises(RunDirError, match=rf"is in use by another training run \(process "
                                              rf"{os.getpid()}\)"):
            train(TrainConfig(out_dir=str(tmp_path), **TINY_RUN), progress=False)
    assert not checkpoint.writer_active(tmp_path)
    train(TrainConfig(out_dir=str(tmp_path), **TINY_RUN), progress=False)  # free again
    with pytest.raises(RunDirError, match="already holds a checkpoint"):  # checked under
        train(TrainConfig(out_dir=str(tmp_path), **TINY_RUN), progress=False)  # the lock


def test_fresh_names_and_the_newest_run(tmp_path):
    base = str(tmp_path / "reverse")
    assert rundir.fresh(base) == base and rundir.newest(base) is None
    for expected in (base, base + "-2", base + "-3"):
        out = rundir.fresh(base)
        assert out == expected
        os.makedirs(out)
        (tmp_path / os.path.basename(out) / "config.json").write_text("{}")
    os.utime(tmp_path / "reverse" / "config.json", ns=(0, 2 * 10**18))  # resumed last
    assert rundir.newest(base) == base
    (tmp_path / "reverse-10").mkdir()  # no checkpoint in it: not a run
    (tmp_path / "reverse-x").mkdir()
    assert rundir.newest(base) == base


def _fail_saves(monkeypatch, steps):
    real = checkpoint.save

    def save(path_dir, model, optimizer, config, train_state):
        if train_state["step"] in steps:
            raise OSError(28, "No space left on device")
        return real(path_dir, model, optimizer, config, train_state)
    monkeypatch.setattr(checkpoint, "save", save)


def test_a_failed_periodic_save_warns_and_training_goes_on(tmp_path, monkeypatch, capsys):
    _fail_saves(monkeypatch, {1})
    history = train(TrainConfig(out_dir=str(tmp_path), **{**TINY_RUN, "ckpt_every": 1}),
                    progress=False)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning: could not save the checkpoint of step 1" in err
    assert "No space left on device; training goes on" in err
    assert history["final"] and checkpoint.load(tmp_path).train_state["step"] == 2


def test_a_failed_last_save_keeps_the_run_for_a_retry(tmp_path, monkeypatch):
    _fail_saves(monkeypatch, {2})
    with pytest.raises(SaveError, match="could not save the checkpoint of step 2") as err:
        train(TrainConfig(out_dir=str(tmp_path), **TINY_RUN), progress=False)
    monkeypatch.undo()
    train_mod.runs.save(err.value.run)  # the cause fixed, the same run saves
    assert checkpoint.load(tmp_path).train_state["step"] == 2
    elsewhere = tmp_path / "elsewhere"
    train_mod.runs.save(err.value.run, elsewhere)  # or saves in another directory
    resumed = train(TrainConfig(out_dir=str(elsewhere), resume=True, **{**TINY_RUN,
                                                                        "steps": 3}),
                    progress=False)
    assert resumed["train"]["step"] == [0, 1, 2]


def test_a_failed_save_on_ctrl_c_is_a_save_error(tmp_path, monkeypatch):
    real = train_mod._train_step

    def step(run):
        if run.step == 1:
            raise KeyboardInterrupt
        return real(run)
    monkeypatch.setattr(train_mod, "_train_step", step)
    _fail_saves(monkeypatch, {1})
    with pytest.raises(SaveError, match="interrupted at step 1, and could not save"):
        train(TrainConfig(out_dir=str(tmp_path), **TINY_RUN), progress=False)


def test_stale_temporaries_are_cleaned_by_the_next_save(ckpt_copy):
    stale = [ckpt_copy / ".model.npz.k2j3h.tmp", ckpt_copy / ".config.json.x.tmp"]
    for path in stale:
        path.write_bytes(b"half a save")
    keep = ckpt_copy / ".notes.tmp"
    keep.write_text("not ours")
    train(TrainConfig(out_dir=str(ckpt_copy), resume=True, **{**TINY_RUN, "steps": 3}),
          progress=False)
    assert not any(p.exists() for p in stale) and keep.exists()


@pytest.mark.slow
def test_a_read_during_a_save_waits_for_it(tmp_path, ckpt_copy, monkeypatch):
    other = shutil.copytree(ckpt_copy, tmp_path / "other")
    train(TrainConfig(out_dir=str(other), resume=True, **{**TINY_RUN, "steps": 3}),
          progress=False)
    good = (ckpt_copy / "model.npz").read_bytes()
    shutil.copy(other / "model.npz", ckpt_copy / "model.npz")  # mid-save: new model, old config
    with pytest.raises(checkpoint.CheckpointError, match="interrupted or mixed save"):
        checkpoint.load(ckpt_copy)  # no run holds the directory: a save that died

    def finish():
        time.sleep(0.3)
        (ckpt_copy / "model.tmp").write_bytes(good)
        os.replace(ckpt_copy / "model.tmp", ckpt_copy / "model.npz")
    with rundir.locked(ckpt_copy):  # a run is writing: the reader waits for the save
        thread = threading.Thread(target=finish)
        thread.start()
        start = time.monotonic()
        assert checkpoint.load(ckpt_copy).train_state["step"] == 2
        thread.join()
        assert time.monotonic() - start >= 0.25
    monkeypatch.setattr(checkpoint, "SETTLE_SECONDS", 0.2)
    shutil.copy(other / "model.npz", ckpt_copy / "model.npz")
    with rundir.locked(ckpt_copy), pytest.raises(checkpoint.CheckpointError, match="mixed"):
        checkpoint.load(ckpt_copy)  # and gives up after SETTLE_SECONDS


def test_the_cli_rescues_a_run_whose_last_save_fails(tmp_path, monkeypatch, capsys):
    import tempfile

    import cli
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real = checkpoint.save

    def save(path_dir, *rest):
        if "attn-rescue-" not in os.path.basename(path_dir):
            raise OSError(28, "No space left on device")
        return real(path_dir, *rest)
    monkeypatch.setattr(checkpoint, "save", save)
    argv = ["train", "--steps", "2", "--eval-every", "0", "--eval-examples", "10",
            "--min-len", "3", "--max-len", "5", "--batch-size", "8", "--quiet"]
    assert cli.main([*argv, "--out", str(tmp_path / "full")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not save the checkpoint of step 2" in err[0]
    assert "No space left on device; saved it instead in" in err[0]
    rescue = err[0].split("saved it instead in '")[1].split("'")[0]
    assert rescue.startswith(str(tmp_path / "attn-rescue-"))
    assert checkpoint.load(rescue).train_state["step"] == 2
