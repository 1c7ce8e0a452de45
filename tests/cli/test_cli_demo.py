"""`attn demo`: the scripted path (--input, --json) for every model family, the interactive
prompt through a pipe and through a real pseudo-terminal (with Ctrl-C), and bad input."""

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

from engine.training import TrainConfig, checkpoint, train
from tests.cli.test_cli import ROOT, _one_line_error, attn

FAST = {"eval_every": 0, "eval_examples": 10, "final_eval_examples": 10, "ckpt_every": 0,
        "warmup_steps": 20, "batch_size": 32}
REVERSE5 = {"task": "reverse", "task_options": {"min_len": 5, "max_len": 5}}
RUNS = {  # family: (settings, steps); only the GPT trains long enough to learn (~2 s)
    "gpt": ({**REVERSE5, "lr": 3e-3,
             "model_overrides": {"n_layer": 2, "n_embd": 32, "block_size": 16}}, 150),
    "seq2seq-gru": ({**REVERSE5, "model_overrides": {"n_embd": 16, "hidden": 16,
                                                     "attn_size": 16}}, 2),
    "seq2seq-transformer": ({**REVERSE5, "model_overrides": {
        "n_embd": 16, "n_enc_layer": 1, "n_dec_layer": 1}}, 2),
    "vit": ({"task": "glyphs", "model_overrides": {"n_layer": 1, "n_embd": 16}}, 2),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{family: checkpoint directory}, each trained once for this module."""
    base, out = tmp_path_factory.mktemp("demo"), {}
    for family, (settings, steps) in RUNS.items():
        out[family] = str(base / family)
        train(TrainConfig(model=family, steps=steps, out_dir=out[family], **settings, **FAST),
              progress=False)
    return out


def _json(*args):
    r = attn("demo", *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow
def test_gpt_output_maps_and_the_mirror_head(runs):
    r = attn("demo", "--ckpt", runs["gpt"], "--input", "31415")
    assert r.returncode == 0, r.stderr
    assert "31415 -> 51413. ok" in r.stdout and "layer 1 of 2 (layer.1)" in r.stdout
    assert "head 3 of 4 (focus" in r.stdout and "one scale, 0 to 1" in r.stdout
    out = _json("--ckpt", runs["gpt"], "--input", "31415")
    assert out["output"] == "51413." and out["ok"] is True
    m = out["maps"]["layer.0"]
    assert "".join(m["rows"]) == "".join(m["cols"]) == "31415=51413."  # tokens on both axes
    assert len(m["heads"]) == 4 and len(m["heads"][0]) == 12 and len(m["heads"][0][0]) == 12
    assert "attends to the mirrored input position" in out["note"]
    assert int(out["note"].split(": ")[1].split("%")[0]) >= 50  # a head reads the mirror


@pytest.mark.slow
@pytest.mark.parametrize("family,names", [
    ("seq2seq-gru", {"alignment"}),
    ("seq2seq-transformer", {"encoder.0", "decoder.0.self", "decoder.0.cross"})])
def test_encoder_decoder_maps(runs, family, names):
    out = _json("--ckpt", runs[family], "--input", "31415")
    assert set(out["maps"]) == names
    for m in out["maps"].values():
        rows, cols = len(m["heads"][0]), len(m["heads"][0][0])
        assert (len(m["rows"]), len(m["cols"])) == (rows, cols)
    cols = out["maps"]["alignment" if family == "seq2seq-gru" else "decoder.0.cross"]["cols"]
    assert "".join(cols) == "31415"  # the source on the columns


@pytest.mark.slow
def test_vit_image_file(runs, tmp_path):
    import numpy as np
    image = tmp_path / "img.npy"
    np.save(image, np.zeros((16, 16), dtype=np.float32))
    r = attn("demo", "--ckpt", runs["vit"], "--input", str(image), "--layer", "0", "--head", "1")
    assert r.returncode == 0, r.stderr
    assert "class token -> patches" in r.stdout and "head 1 of" in r.stdout
    m = _json("--ckpt", runs["vit"], "--input", str(image))["maps"]["layer.0"]
    assert m["rows"][0] == "c" and len(m["rows"]) == 17  # class token + 16 patches


@pytest.mark.slow
def test_newest_run_of_the_task_by_default(runs, tmp_path):
    shutil.copytree(runs["gpt"], tmp_path / "runs" / "reverse")
    r = attn("demo", "--input", "31415", "--layer", "0", "--head", "0", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "51413." in r.stdout


@pytest.mark.slow
def test_bad_input(runs, tmp_path):
    _one_line_error(attn("demo", "--ckpt", runs["gpt"], "--input", "zz"), "zz")
    _one_line_error(attn("demo", "--ckpt", runs["gpt"], "--json"), "--json needs --input")
    _one_line_error(attn("demo", "--ckpt", runs["gpt"], "--input", "31415", "--layer", "7"),
                    "layers 0 to 1")
    _one_line_error(attn("demo", "--ckpt", runs["vit"], "--input", "missing.pgm"), "missing")
    _one_line_error(attn("demo", "--input", "31415", "--no-train", cwd=str(tmp_path)),
                    "no checkpoint")
    _one_line_error(attn("demo", "--input", "31415", "--steps", "0"), "--steps")


def _shown(chunk):
    """(layer name, head) of the one map a demo answer showed."""
    name = chunk.split("(layer.")[1].split(")")[0]
    return f"layer.{name}", int(chunk.split("\nhead ")[1].split(" of")[0])


@pytest.mark.slow
def test_interactive_through_a_pipe(runs):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "demo", "--ckpt",
                        runs["gpt"]], input="31415\nh 2\nn\nl 1\nh 9\nl 7\nbad\nzz\ns\nq\n",
                       capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "31415 -> 51413." in out
    answers = out.split("31415 -> 51413.")[1].split("\n> ")
    named = out.split("attends to the mirrored input position")[0].split("\n")[-1].split()
    assert _shown(answers[0]) == (named[0], int(named[2]))  # opens on the head it names
    assert _shown(answers[1])[1] == 2 and _shown(answers[2])[1] == 3  # h 2, n
    assert _shown(answers[3]) == ("layer.1", 0)  # l 1
    assert "head 9: there are heads 0 to 3" in answers[4]  # refused, not clamped
    assert "layer 7: there are layers 0 to 1" in answers[5]
    assert "is not a string" in out  # zz: said, and the prompt goes on
    assert "attention snapshots: 1, steps 150 to 150" in " ".join(out.split())  # s


@pytest.mark.slow
def test_inputs_outside_the_trained_lengths_are_flagged(runs):
    r = attn("demo", "--ckpt", runs["gpt"], "--input", "313", "--layer", "0", "--head", "0")
    assert r.returncode == 0, r.stderr
    assert "trained on inputs of 5 to 5 digits; this one has 3" in " ".join(r.stdout.split())
    assert "warning" not in attn("demo", "--ckpt", runs["gpt"], "--input", "31415").stdout
    assert "5 to 5 digits" in _json("--ckpt", runs["gpt"], "--input", "31")["warning"]


@pytest.mark.slow
def test_maps_are_coloured_on_one_scale_in_a_colour_terminal(runs):
    env = {**os.environ, "FORCE_COLOR": "1", "COLORTERM": "truecolor", "COLUMNS": "200"}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "demo", "--ckpt",
                        runs["gpt"], "--input", "31415", "--layer", "0"], capture_output=True,
                       text=True, cwd=ROOT, timeout=300, check=False, env=env)
    assert r.returncode == 0, r.stderr
    assert "38;2;253;231;37" in r.stdout  # the ramp's top colour (#fde725) on weights near 1
    lines = [line for line in r.stdout.splitlines() if "head 0 of 4" in line]
    assert lines and "head 3 of 4" in lines[0]  # four 12-column heads fit side by side


def _read_until(fd, text, timeout=60):
    seen, end = b"", time.monotonic() + timeout
    while text.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {text!r} in {seen.decode(errors='replace')[-500:]}")
        seen += os.read(fd, 65536)
    return seen.decode(errors="replace")


# Run the rest of argv in a new session whose controlling terminal is the pty on stdin, so
# the terminal turns Ctrl-C into SIGINT as a real one does.
IN_A_TERMINAL = ("import fcntl, os, sys, termios; os.setsid(); "
                 "fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                 "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


@pytest.mark.slow
def test_interactive_in_a_pseudo_terminal_arrows_and_ctrl_c(runs):
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", IN_A_TERMINAL, os.path.join(ROOT, "cli.py"),
                             "demo", "--ckpt", runs["gpt"]],
                            stdin=slave, stdout=slave, stderr=slave, cwd=ROOT)
    os.close(slave)
    try:
        _read_until(master, "input> ")
        os.write(master, b"31415\n")
        assert "51413." in _read_until(master, "\n> ")
        os.write(master, b"h 1\n")
        assert "head 1 of 4" in _read_until(master, "\n> ")
        os.write(master, b"\x1b[C")  # right arrow: the next head, at once (no Enter)
        assert _shown(_read_until(master, "\n> ")) == ("layer.0", 2)
        os.write(master, b"\x1b[B")  # down arrow: the next layer
        assert _shown(_read_until(master, "\n> ")) == ("layer.1", 0)
        os.write(master, b"\x1b[B")  # down again: the last layer stays
        assert _shown(_read_until(master, "\n> ")) == ("layer.1", 0)
        os.write(master, b"h 9x\x7f\x7f3\n")  # typed, with Backspace
        assert _shown(_read_until(master, "\n> ")) == ("layer.1", 3)
        os.write(master, b"\x03")  # Ctrl-C, as the terminal sends it: SIGINT
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


@pytest.mark.slow
def test_train_first_when_there_is_no_run(tmp_path):
    args = ("demo", "--steps", "2", "--input", "31415926", "--layer", "0", "--head", "0")
    r = attn(*args, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "training the default one into runs/reverse" in r.stdout
    assert "2/2" in r.stdout and "final" in r.stdout  # the bar's last state, the final eval
    assert "31415926 ->" in r.stdout
    ck = checkpoint.load(str(tmp_path / "runs" / "reverse"))  # what attn train writes
    assert ck.train_state["step"] == 2 and not ck.train_state["interrupted"]
    assert ck.config["model_family"] == "gpt" and ck.config["train"]["task"] == "reverse"
    r = attn(*args, cwd=str(tmp_path))  # now there is one: no training
    assert r.returncode == 0 and "training" not in r.stdout
    _one_line_error(attn("demo", "--task", "frob", "--input", "3", cwd=str(tmp_path)),
                    "the demo trains only a task")
    assert not (tmp_path / "runs" / "frob").exists()


@pytest.mark.slow
def test_train_first_then_json(tmp_path):
    """--json: the training's messages and bar go to stderr, stdout is the JSON alone."""
    r = attn("demo", "--task", "copy", "--steps", "1", "--input", "123", "--json",
             cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["input"] == "123" and set(out["maps"]) == {"layer.0", "layer.1"}
    assert "training the default one into runs/copy" in r.stderr
    assert checkpoint.load(str(tmp_path / "runs" / "copy")).train_state["step"] == 1


@pytest.mark.slow
def test_train_first_then_the_prompt(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "demo", "--task", "sort",
                        "--steps", "1"], input="321\nq\n", capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "saved in runs/sort" in r.stdout and "type an input" in r.stdout
    assert "321 ->" in r.stdout and "expected 123." in r.stdout  # one step: not learnt yet


def _wait_for(path, proc, timeout=60):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"no {path}"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_the_training_keeps_no_checkpoint(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "cli.py"), "demo", "--steps",
                             "100000", "--input", "31415926"], cwd=str(tmp_path), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run = tmp_path / "runs" / "reverse"
    try:
        _wait_for(run / ".lock", proc)  # training started: the run directory is locked
        time.sleep(1.0)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted at step" in out and "nothing is saved" in out
    assert err.strip().splitlines() == ["attn demo: error: interrupted"]
    assert not run.exists()  # no partial checkpoint for the next attn demo to load


@pytest.mark.slow
def test_ctrl_c_while_training_in_a_pseudo_terminal(tmp_path):
    """The interactive demo blocks SIGINT in its main thread (commands.terminal); the
    training still stops at once on Ctrl-C from the terminal."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", IN_A_TERMINAL, os.path.join(ROOT, "cli.py"),
                             "demo", "--steps", "100000"],
                            stdin=slave, stdout=slave, stderr=slave, cwd=str(tmp_path))
    os.close(slave)
    try:
        _read_until(master, "/100000")  # the bar is drawn
        os.write(master, b"\x03")
        assert "attn demo: error: interrupted" in _read_until(master, "error: interrupted")
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert not (tmp_path / "runs" / "reverse").exists()


CTRL_C_AS_THE_WORKER_STARTS = """
import os, signal, sys, threading, time, types
sys.path.insert(0, sys.argv[1])
from rich.console import Console
import commands.background as bg
from engine.training import TrainConfig

class Thread(threading.Thread):
    def start(self):
        super().start()
        if self.name == "attn-train":  # Ctrl-C taken by another thread (an OpenBLAS one)
            while not os.path.exists("run/.lock"):  # once the worker holds the run
                time.sleep(0.01)
            other = threading.Thread(target=ctrl_c)  # while the main thread blocks it
            other.start()
            other.join()
            time.sleep(0.2)  # Python runs the handler here, before start() returns


def ctrl_c():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.raise_signal(signal.SIGINT)

bg.threading = types.SimpleNamespace(**dict(vars(threading), Thread=Thread))
try:
    bg.train_in_background(TrainConfig(task="reverse", steps=100000, out_dir="run"),
                           Console(stderr=True))
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.slow
def test_ctrl_c_while_the_worker_is_being_started(tmp_path):
    """The first Ctrl-C only asks the worker to stop, wherever the main thread is: one that
    came during Thread.start (outside the bar's wait) had left the run directory behind."""
    r = subprocess.run([sys.executable, "-c", CTRL_C_AS_THE_WORKER_STARTS, ROOT],
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 130, r.stderr
    assert "interrupted at step" in r.stderr and "nothing is saved" in r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_sample_attention_shows_the_most_focused_head_not_a_mean(runs):
    import numpy as np

    from engine import viz
    from engine.training import load_model
    r = attn("sample", "--ckpt", runs["gpt"], "--prompt", "31415", "--attention")
    assert r.returncode == 0, r.stderr
    model, task = load_model(runs["gpt"])
    tokens = np.concatenate([task.prompt_tokens("31415"), task.vocab.encode("51413.")])
    ranked = viz.alignments(model, tokens, task.input_width)
    label, best, sharp = ranked[0]
    assert sharp == max(f for _, _, f in ranked) and len(ranked) == 8  # 2 layers x 4 heads
    mean = np.mean([a for _, a, _ in ranked if a.shape == best.shape], axis=0)
    assert sharp > viz.focus(mean) + 0.2  # what the head mean used to hide
    text = " ".join(r.stdout.split())
    assert f"{label}, the most focused of 8 head(s) (focus {sharp:.2f}" in text
    heat = r.stdout.split("attended to")[1].strip("\n").splitlines()
    assert heat[0].split() == list("31415")
    assert heat[1].startswith("5 ") and heat[1].rstrip().endswith("██")  # 5 reads the last 5


def test_the_demo_and_train_draw_the_one_training_bar():
    """`attn demo`'s background training and `attn train` show the same bar (one builder in
    engine.training.progress); only train's has the units per second."""
    import io

    from rich.console import Console

    from engine.training.progress import training_bar
    for unit in (None, "img"):
        console = Console(file=io.StringIO(), width=100, force_terminal=False)
        bar = training_bar(console, 10, completed=3, unit=unit)
        bar.update(bar.task_ids[0], loss="1.2500", **({"tok_s": "1,234"} if unit else {}))
        console.print(bar.get_renderable())
        line = " ".join(console.file.getvalue().split())
        assert line.startswith("train") and "3/10 loss 1.2500" in line, line
        assert ("1,234 img/s" in line) == (unit is not None), line
    import commands.background as bg
    assert bg.training_bar is training_bar
