"""Work that must not run on the GUI thread: training, inference over frames, exports and checks.

Each worker is a QObject moved to its own QThread. Its signals reach slots of QObjects living in
the GUI thread (queued connections); nothing it sends carries a tensor. Training updates are
batched so the GUI receives at most about 20 a second, whatever the trainer's logging rate.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from pit_engine.classes import NUM_CLASSES
from pit_engine.compare import Comparison, compare
from pit_engine.data.io import read_rgb
from pit_engine.errors import UserError, out_of_memory
from pit_engine.events import CheckpointSaved, Evaluated, Finished, Health, Started, Step
from pit_engine.export import read_truth
from pit_engine.predict import Prediction, Predictor
from pit_engine.train import Trainer

UPDATE_INTERVAL_S = 0.05  # at most ~20 GUI updates a second
THUMBNAIL_WIDTH = 96


def start_thread(worker: QObject, name: str, on_finished=()) -> QThread:
    """Move `worker` to a new thread that runs its `run` slot and ends when it emits `done`;
    `on_finished` slots are connected to the thread's `finished` before it starts, since a quick
    job can finish before a connection made after `start()` exists (and would never be reaped)."""
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # quit from the worker's own thread: a queued quit would wait on a possibly blocked GUI thread
    worker.done.connect(thread.quit, Qt.DirectConnection)
    for slot in on_finished:
        thread.finished.connect(slot)
    thread.start()
    return thread


def _line(exc: BaseException) -> str:
    if isinstance(exc, torch.OutOfMemoryError):
        return out_of_memory(exc, "inference").line()
    return exc.line() if isinstance(exc, UserError) else f"error: internal error: {exc!r}"


class TrainWorker(QObject):
    started = Signal(object)  # events.Started
    steps = Signal(list)  # [events.Step], batched
    evaluated = Signal(object)  # events.Evaluated
    health = Signal(object)  # events.Health
    checkpoint = Signal(object)  # events.CheckpointSaved
    message = Signal(str)  # the trainer's log lines
    finished = Signal(object)  # events.Finished
    done = Signal()

    def __init__(self, config, run_dir, resume: bool = False):
        super().__init__()
        self.trainer = Trainer(config, run_dir, resume, log=self.message.emit)
        self._pending: list[Step] = []
        self._last = 0.0

    # pause/resume/stop are the trainer's own thread-safe controls: the worker thread is busy
    # inside `run`, so a queued slot call would only arrive after training ends
    def pause(self):
        self.trainer.pause()

    def resume(self):
        self.trainer.resume()

    def stop(self):
        self.trainer.stop()

    @Slot()
    def run(self):
        try:
            self.trainer.run(self._on_event)
        finally:
            self.done.emit()

    def _flush(self):
        if self._pending:
            self.steps.emit(self._pending)
            self._pending = []
            self._last = time.monotonic()

    def _on_event(self, event):
        if isinstance(event, Step):
            self._pending.append(event)
            if time.monotonic() - self._last >= UPDATE_INTERVAL_S:
                self._flush()
            return
        self._flush()
        signal = {Started: self.started, Evaluated: self.evaluated, Health: self.health,
                  CheckpointSaved: self.checkpoint, Finished: self.finished}[type(event)]
        signal.emit(event)


class Cancelled(Exception):
    pass


class TaskWorker(QObject):
    """Runs `function(progress)` once: `progress(items)` wraps the job's iterable, reporting
    (done, total) at most ~20 times a second and raising Cancelled after `cancel()`."""
    progress = Signal(int, int)
    succeeded = Signal(object)
    failed = Signal(str, str)  # one line, traceback (empty for bad input)
    done = Signal()

    def __init__(self, function):
        super().__init__()
        self.function = function
        self._cancel = threading.Event()

    def cancel(self):
        self._cancel.set()

    def _progress(self, items, total=None, **_tqdm_options):
        if total is None:
            items = items if hasattr(items, "__len__") else list(items)
            total = len(items)
        last, done = 0.0, 0
        for item in items:
            if self._cancel.is_set():
                raise Cancelled()
            if time.monotonic() - last >= UPDATE_INTERVAL_S:
                self.progress.emit(done, total)
                last = time.monotonic()
            yield item
            done += 1
        self.progress.emit(done, total)

    @Slot()
    def run(self):
        try:
            self.succeeded.emit(self.function(self._progress))
        except Cancelled:
            self.failed.emit("cancelled", "")
        except UserError as exc:
            self.failed.emit(exc.line(), "")
        except Exception as exc:  # a bug: the line for the dialog, the traceback for the log
            self.failed.emit(_line(exc), traceback.format_exc())
        finally:
            self.done.emit()


class Relay(QObject):
    """Calls plain Python callbacks for a TaskWorker's signals in the GUI thread.

    A closure connected to a worker's signal would run in the worker's thread; a bound slot of
    this object, created in the GUI thread, makes the connection queued into the GUI thread."""

    def __init__(self, worker: TaskWorker, on_progress, on_succeeded, on_failed, parent=None):
        super().__init__(parent)
        self._progress, self._succeeded, self._failed = on_progress, on_succeeded, on_failed
        worker.progress.connect(self.progress)
        worker.succeeded.connect(self.succeeded)
        worker.failed.connect(self.failed)

    @Slot(int, int)
    def progress(self, done: int, total: int):
        self._progress(done, total)

    @Slot(object)
    def succeeded(self, result):
        self._succeeded(result)

    @Slot(str, str)
    def failed(self, line: str, details: str):
        self._failed(line, details)


@dataclass
class FrameResult:
    """Everything the Inspect view shows about one frame, computed off the GUI thread."""
    path: Path
    generation: int  # which pair of models made it
    image: np.ndarray
    truth: np.ndarray | None  # trainIds, when the frame has a label
    a: Prediction | None  # the baseline (source-only) model
    b: Prediction | None  # the adapted model
    comparison: Comparison | None  # a vs b (with truth when there is one)
    thumbnail: np.ndarray
    scores: tuple  # per-image mIoU of a and b against the truth (None without truth or model)
    truth_present: np.ndarray | None  # C bools: the classes the ground truth holds
    matrices: tuple = (None, None)  # C x C confusion of a and of b against the truth (None without either)
    facts: dict | None = None  # what the frame filters ask, kept after the arrays leave the cache

    @property
    def nbytes(self) -> int:
        arrays = [self.image, self.truth, self.thumbnail]
        for p in (self.a, self.b):
            if p is not None:
                arrays += [p.classes, p.confidence, p.cams, p.seeds, p.regions]
        if self.comparison is not None:
            arrays += [self.comparison.differ, self.comparison.outcome]
        return sum(a.nbytes for a in arrays if a is not None)

    def miou(self, which: str) -> float | None:
        """Per-image mIoU of model 'a' or 'b' against the truth (None without truth or model)."""
        return self.scores[0 if which == "a" else 1]


def frame_result(path: Path, generation: int, image, truth, a, b) -> FrameResult:
    """Everything derived once per frame here, in the worker, so that redrawing (an opacity
    slider drag, a class toggle) never recomputes a score or a histogram."""
    cmp = compare(a.classes, b.classes, truth) if a and b else None
    scores, matrices = [None, None], [None, None]
    if truth is not None:
        if cmp is not None:
            scores, matrices = [cmp.miou_a, cmp.miou_b], [cmp.matrix_a, cmp.matrix_b]
        else:
            alone = [compare(p.classes, p.classes, truth) if p else None for p in (a, b)]
            scores = [c.miou_a if c else None for c in alone]
            matrices = [c.matrix_a if c else None for c in alone]
    present = np.bincount(truth.ravel(), minlength=256)[:NUM_CLASSES] > 0 if truth is not None else None
    return FrameResult(path, generation, image, truth, a, b, cmp, thumbnail(image), tuple(scores), present,
                       tuple(matrices), frame_facts(a, b, present))


def frame_facts(a, b, truth_present) -> dict:
    """The classes a frame's truth holds, either model predicts, and either pivot gets wrong
    (present where absent, absent where there), as sets of class ids."""
    preds = [p for p in (a, b) if p is not None]
    predicted = set()
    for p in preds:  # bincount, not np.unique: no sort of a full-resolution map
        predicted |= set(np.flatnonzero(np.bincount(p.classes.ravel(), minlength=256)[:NUM_CLASSES]).tolist())
    truth = set(np.flatnonzero(truth_present).tolist()) if truth_present is not None else set()
    wrong = set()
    if truth_present is not None:
        for p in preds:
            if p.has_pivot:
                wrong |= set(np.flatnonzero((p.pivot == 1) & ~truth_present).tolist())
                wrong |= set(np.flatnonzero((p.pivot == 0) & truth_present).tolist())
    return {"truth": truth, "predicted": predicted, "pivot_wrong": wrong}


def thumbnail(image: np.ndarray, width: int = THUMBNAIL_WIDTH) -> np.ndarray:
    h, w = image.shape[:2]
    size = (width, max(1, round(h * width / w)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


class InferenceWorker(QObject):
    """Predicts frames with up to two checkpoints, in request order, urgent requests first.

    `set_models` and `request` are thread-safe and return at once; results arrive through
    `ready`. Changing the models starts a new generation: queued frames of the old one are
    dropped, so a result never mixes two model pairs."""
    ready = Signal(object)  # FrameResult
    models_loaded = Signal(int, str, str)  # generation, name of a, name of b ("" when absent)
    failed = Signal(str, str)  # path (empty for a model), one line
    done = Signal()

    def __init__(self, device: str = "cpu"):
        super().__init__()
        self.device = device
        self._wake = threading.Condition()
        self._queue: OrderedDict[Path, None] = OrderedDict()
        self._models: deque = deque()
        self._stopping = False
        self.generation = 0
        self._a = self._b = None

    def set_models(self, checkpoint_a, checkpoint_b) -> int:
        with self._wake:
            self.generation += 1
            self._queue.clear()
            self._models.append((self.generation, checkpoint_a, checkpoint_b))
            self._wake.notify()
            return self.generation

    def request(self, paths, urgent: bool = False) -> None:
        with self._wake:
            for path in (reversed(list(paths)) if urgent else paths):
                path = Path(path)
                if urgent:
                    self._queue[path] = None
                    self._queue.move_to_end(path, last=False)
                else:
                    self._queue.setdefault(path, None)
            self._wake.notify()

    def forget(self) -> None:
        """Drop every queued frame (a new folder replaces the old one)."""
        with self._wake:
            self._queue.clear()

    def shutdown(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()

    @Slot()
    def run(self):
        try:
            while True:
                with self._wake:
                    while not (self._stopping or self._models or (self._queue and self._has_models())):
                        self._wake.wait()
                    if self._stopping:
                        return
                    if self._models:
                        job = ("models", self._models.popleft())
                    else:
                        path, _ = self._queue.popitem(last=False)
                        job = ("frame", (self.generation, path))
                if job[0] == "models":
                    self._load(*job[1])
                else:
                    self._predict(*job[1])
        finally:
            self.done.emit()

    def _has_models(self) -> bool:
        return self._a is not None or self._b is not None

    def _load(self, generation, checkpoint_a, checkpoint_b):
        loaded, errors = [], []
        for checkpoint in (checkpoint_a, checkpoint_b):
            if not checkpoint:
                loaded.append(None)
                continue
            try:
                loaded.append(Predictor.from_checkpoint(checkpoint, self.device))
            except Exception as exc:
                loaded.append(None)
                errors.append(_line(exc))
        self._a, self._b = loaded
        # the view forgets a failed checkpoint before the dialog says why, so nothing done after
        # the dialog (opening the other slot, say) can try the broken file again
        self.models_loaded.emit(generation, self._a.name if self._a else "", self._b.name if self._b else "")
        for line in errors:
            self.failed.emit("", line)

    def _predict(self, generation, path: Path):
        try:
            image = read_rgb(path)
            a = self._a.predict(image) if self._a else None
            b = self._b.predict(image) if self._b else None
            result = frame_result(path, generation, image, read_truth(path, image.shape[:2]), a, b)
        except Exception as exc:
            self.failed.emit(str(path), _line(exc))
            return
        if generation == self.generation:  # models changed meanwhile: this result is stale
            self.ready.emit(result)
