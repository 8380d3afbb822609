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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from pit_engine.classes import NUM_CLASSES
from pit_engine.compare import Comparison, compare
from pit_engine.data.io import read_rgb, read_truth
from pit_engine.errors import UserError, out_of_memory
from pit_engine.evaluate import ConfusionMatrix
from pit_engine.events import CheckpointSaved, Evaluated, Finished, Health, Started, Step
from pit_engine.predict import Predictor
from pit_engine.train import Trainer

UPDATE_INTERVAL_S = 0.05  # at most ~20 GUI updates a second
THUMBNAIL_WIDTH = 96


def inference_device() -> str:
    """Where the window's models predict: the GPU when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"


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


@dataclass(eq=False)  # arrays: compared by identity
class FrameResult:
    """Everything the Inspect view shows about one frame, computed off the GUI thread: one
    prediction per open model, in the model list's order."""
    path: Path
    generation: int  # which set of models made it
    image: np.ndarray
    truth: np.ndarray | None  # trainIds, when the frame has a label
    preds: tuple  # Prediction per model (None where that model is absent)
    thumbnail: np.ndarray
    scores: tuple  # per model: per-image mIoU against the truth (None without truth)
    truth_present: np.ndarray | None  # C bools: the classes the ground truth holds
    matrices: tuple  # per model: C x C confusion against the truth (None without truth)
    ious: tuple  # per model: per-class IoU on this frame, NaN for classes in neither (None without truth)
    facts: dict | None = None  # what the frame filters ask, kept after the arrays leave the cache
    comparisons: dict = field(default_factory=dict)  # (i, j) -> Comparison, made when a pair is shown

    @property
    def nbytes(self) -> int:
        arrays = [self.image, self.truth, self.thumbnail]
        for p in self.preds:
            if p is not None:
                arrays += [p.classes, p.confidence, p.cams, p.seeds, p.regions]
        for c in self.comparisons.values():
            arrays += [c.differ, c.outcome]
        return sum(a.nbytes for a in arrays if a is not None)

    def comparison(self, i: int, j: int) -> Comparison | None:
        """Model i against model j on this frame (who is right, where they differ), made once."""
        if not (0 <= i < len(self.preds) and 0 <= j < len(self.preds)) or None in (self.preds[i], self.preds[j]):
            return None
        if (i, j) not in self.comparisons:
            self.comparisons[(i, j)] = compare(self.preds[i].classes, self.preds[j].classes, self.truth,
                                               matrices=(self.matrices[i], self.matrices[j]))
        return self.comparisons[(i, j)]


def frame_result(path: Path, generation: int, image, truth, preds) -> FrameResult:
    """Everything derived once per frame here, in the worker, so that redrawing (an opacity
    slider drag, a class toggle) never recomputes a score or a histogram."""
    scores, matrices, ious = [], [], []
    for p in preds:
        if truth is None or p is None:
            scores.append(None), matrices.append(None), ious.append(None)
            continue
        cm = ConfusionMatrix(NUM_CLASSES)
        cm.update(p.classes.astype(np.int64), truth)
        scores.append(cm.miou(range(NUM_CLASSES))), matrices.append(cm.matrix), ious.append(cm.iou())
    present = np.bincount(truth.ravel(), minlength=256)[:NUM_CLASSES] > 0 if truth is not None else None
    return FrameResult(path, generation, image, truth, tuple(preds), thumbnail(image), tuple(scores), present,
                       tuple(matrices), tuple(ious), frame_facts(preds, present))


def frame_facts(preds, truth_present) -> dict:
    """The classes a frame's truth holds, any model predicts, and any pivot gets wrong (present
    where absent, absent where there), as sets of class ids."""
    preds = [p for p in preds if p is not None]
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
    """Predicts frames with every open checkpoint, in request order, urgent requests first.

    `set_models`, `set_pair` and `request` are thread-safe and return at once; results arrive
    through `ready`. Changing the models starts a new generation: queued frames of the old one
    are dropped, so a result never mixes two sets of models. A checkpoint already loaded (same
    path, same modification time) is kept, so adding a model does not reload the others."""
    ready = Signal(object)  # FrameResult
    models_loaded = Signal(int, list)  # generation, each model's name ("" where its checkpoint failed)
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
        self.pair = (0, 1)  # whose comparison each result carries ready-made (the panels' A and B)
        self._predictors: list = []
        self._loaded: dict = {}  # (path, mtime) -> Predictor

    def set_models(self, checkpoints) -> int:
        with self._wake:
            self.generation += 1
            self._queue.clear()
            self._models.append((self.generation, [str(c) for c in checkpoints]))
            self._wake.notify()
            return self.generation

    def set_pair(self, a: int, b: int) -> None:
        self.pair = (a, b)  # one tuple assignment: atomic for the worker thread that reads it

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

    def what_if(self, model: int, image, pivot):
        """Model `model`'s D and E targets for a frame under an edited pivot (the engine's
        Predictor.what_if), called from the GUI thread: the network runs in evaluation without
        gradients, which two threads may share; the frame's outputs are kept for the next edit."""
        predictors = self._predictors  # one read: the worker may swap the list
        if not 0 <= model < len(predictors) or predictors[model] is None or not predictors[model].has_pivot:
            return None
        return predictors[model].what_if(image, pivot)

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
        return any(p is not None for p in self._predictors)

    def _load(self, generation, checkpoints):
        loaded, errors, kept = [], [], {}
        for checkpoint in checkpoints:
            try:
                key = (checkpoint, Path(checkpoint).stat().st_mtime_ns)
                predictor = self._loaded.get(key) or Predictor.from_checkpoint(checkpoint, self.device)
                kept[key] = predictor
                loaded.append(predictor)
            except Exception as exc:
                loaded.append(None)
                errors.append(_line(exc))
        self._predictors, self._loaded = loaded, kept  # models no longer open are released
        # the view forgets a failed checkpoint before the dialog says why, so nothing done after
        # the dialog (opening another model, say) can try the broken file again
        self.models_loaded.emit(generation, [p.name if p else "" for p in loaded])
        for line in errors:
            self.failed.emit("", line)

    def _predict(self, generation, path: Path):
        try:
            image = read_rgb(path)
            preds = [p.predict(image) if p else None for p in self._predictors]
            result = frame_result(path, generation, image, read_truth(path, image.shape[:2]), preds)
            result.comparison(*self.pair)  # the shown pair's comparison made here, not on the GUI thread
        except Exception as exc:
            self.failed.emit(str(path), _line(exc))
            return
        if generation == self.generation:  # models changed meanwhile: this result is stale
            self.ready.emit(result)
