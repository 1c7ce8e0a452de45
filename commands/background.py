"""Training a run in a background thread while the main thread draws its progress bar and
answers Ctrl-C at once: how `attn demo` trains the default run of a task that has none.

The run is the one `attn train` makes: `engine.training.train` writes it into its run
directory (locked, checkpoint saved atomically). It is all or nothing: Ctrl-C (or SIGTERM)
asks the worker to stop after its current step, waits for it, and removes what it wrote,
so no partial checkpoint is left for the next `attn demo` to pick up; then KeyboardInterrupt
is raised (cli.main: exit status 130).

Why a thread is safe here (measured, not assumed): a 30-step GPT run trained in a worker
thread gave bit-for-bit the weights of the same run on the main thread, under both Numba
threading layers (tbb, and workqueue with NUMBA_THREADING_LAYER=workqueue), whichever ran
first. Only the worker runs kernels while it lives (workqueue must not be entered by two
threads at once); the main thread only draws. Why a thread is wanted: Ctrl-C is delivered to
a thread that does not block SIGINT. The worker is started with SIGINT and SIGTERM blocked,
so it and the TBB threads it creates never take them; the main thread unblocks them and
waits in 0.1 s slices, so a Ctrl-C stops the run at once (commands.terminal says why the
interactive demo keeps SIGINT blocked outside its prompt).

The trainer reports progress through its Reporter; `train_in_background` swaps in a reporter
that feeds the main thread's bar (steps, loss) and checks the stop request after each step.
"""

import contextlib
import os
import shutil
import signal
import threading

from engine.training import rundir, trainer
from engine.training.checkpoint import CONFIG_FILE, MODEL_FILE, OPTIM_FILE
from engine.training.metrics import METRICS_FILE
from engine.training.progress import Reporter, describe_eval, training_bar
from engine.training.rundir import RunDirError

_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_RUN_FILES = (CONFIG_FILE, MODEL_FILE, OPTIM_FILE, METRICS_FILE)


class _Shared:
    """What the worker tells the main thread, and the main thread's stop request."""

    def __init__(self, total):
        self.step, self.total, self.loss, self.header = 0, total, None, None
        self.evals = []  # (final, result), in order
        self.stop = threading.Event()  # set by the main thread: stop after this step
        self.done = threading.Event()  # set by the worker as it ends


class _Feed(Reporter):
    """The trainer's Reporter, drawing nothing: it hands step, loss and evaluations to the
    main thread and raises KeyboardInterrupt in the worker once a stop is requested (the
    trainer then saves and re-raises; the directory is removed afterwards)."""

    def __init__(self, cfg, run, shared):
        super().__init__(cfg, run, False)
        self.shared = shared
        shared.header = (f"{type(run.model).__name__} {cfg.config} "
                         f"({run.model.num_parameters():,} params) on task {cfg.task}: "
                         f"{cfg.steps} steps, batch {cfg.batch_size}, lr {cfg.lr:g}")

    def step(self, step, loss, tok_s):
        super().step(step, loss, tok_s)  # the moving average of the loss: self.loss
        self.shared.loss, self.shared.step = self.loss, step
        self._stop_if_asked()

    def evaluation(self, result, final=False):
        self.shared.evals.append((final, result))
        self._stop_if_asked()

    def interrupted(self, step):
        pass  # the main thread says what happened

    def _stop_if_asked(self):
        if self.shared.stop.is_set():
            raise KeyboardInterrupt


@contextlib.contextmanager
def _feeding(shared):
    """For the block, the trainer builds _Feed reporters (one run at a time)."""
    original = trainer.Reporter
    trainer.Reporter = lambda cfg, run, enabled: _Feed(cfg, run, shared)
    try:
        yield
    finally:
        trainer.Reporter = original


def train_in_background(cfg, console):
    """Train `cfg` (a TrainConfig with out_dir) in a worker thread; draw its progress bar
    on `console` from this, the main, thread. Returns the history `train` returns; raises
    what training raised; on Ctrl-C or SIGTERM stops the run, removes what it wrote in
    out_dir, and raises KeyboardInterrupt."""
    shared, box = _Shared(cfg.steps), {}
    made = not os.path.exists(cfg.out_dir)

    def work():
        try:
            box["history"] = trainer.train(cfg, progress=False)
        except BaseException as e:  # noqa: BLE001  (handed to the main thread)
            box["error"] = e
        finally:
            shared.done.set()

    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    worker = threading.Thread(target=work, name="attn-train", daemon=True)
    try:
        with _feeding(shared), _asking_to_stop(shared), training_bar(console, cfg.steps) as bar:
            worker.start()  # it and the threads it starts inherit the blocked mask
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            _draw(shared, bar, console)
    except BaseException:  # a second Ctrl-C, or an error of the main thread's own
        _remove_run(cfg.out_dir, made)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    if "error" in box or shared.stop.is_set():
        _remove_run(cfg.out_dir, made)
        if "error" in box and not isinstance(box["error"], KeyboardInterrupt):
            raise box["error"]
        raise KeyboardInterrupt
    return box["history"]


@contextlib.contextmanager
def _asking_to_stop(shared):
    """For the block, Ctrl-C and SIGTERM only ask the worker to stop (shared.stop); a second
    one raises KeyboardInterrupt, quitting at once.

    The first signal must not raise: Python runs its handler in the main thread at the next
    bytecode wherever that thread is, even with the signal blocked there (another thread of
    the process, an OpenBLAS one made at import, can take it), so a KeyboardInterrupt could
    come while the worker is being started, outside any code that stops it; the run
    directory, still locked by the worker, was then left behind."""
    def ask(signum, frame):
        if shared.stop.is_set():
            raise KeyboardInterrupt
        shared.stop.set()

    old = {sig: signal.signal(sig, ask) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _draw(shared, bar, console):
    """Update the bar until the worker ends, printing each evaluation as it comes; once a
    stop is asked, stop the bar, say so, and wait for the worker to end its step.

    It waits on an Event, not Thread.join: on Python 3.11 a join interrupted by Ctrl-C
    marks a running thread as ended (threading.Thread._wait_for_tstate_lock releases the
    thread's lock), which let the run directory be removed while the worker still held it."""
    said_header, said_stop, shown = False, False, 0
    while True:
        alive = not shared.done.is_set()
        if shared.stop.is_set() and not said_stop:
            bar.stop()
            console.print(f"[yellow]interrupted at step {shared.step} of {shared.total}:[/] "
                          f"stopping; the unfinished run is removed, nothing is saved (a "
                          f"second Ctrl-C quits at once)")
            said_stop = True
        if shared.header and not said_header:
            bar.console.print(shared.header)
            said_header = True
        if not said_stop:
            loss = "-" if shared.loss is None else f"{shared.loss:.4f}"
            bar.update(bar.task_ids[0], completed=shared.step, loss=loss)
        for final, result in shared.evals[shown:]:
            bar.console.print(("[bold green]final[/] " if final else "      ")
                              + describe_eval(result))
            shown += 1
        if not alive:
            return
        shared.done.wait(0.1)


def _remove_run(path, made):
    """Remove what an unfinished run wrote, holding the directory's run lock (so nothing is
    removed from under another run that took it meanwhile): the whole directory when this
    run made it, else only the run's own files (the lock file stays, as rundir says)."""
    if not os.path.isdir(path):
        return
    with contextlib.suppress(RunDirError), rundir.locked(path):
        if made:
            shutil.rmtree(path, ignore_errors=True)
            return
        for name in os.listdir(path):
            if name in _RUN_FILES or name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(path, name))
