"""A run's timeline: the mechanism on the health frames at every health step.

The health curves say *that* self-training drifts; the timeline keeps what shows *where* and
*when*: for each of the run's fixed health frames, at every health step, the teacher's prediction,
the pivot (q, the pooled score, the state the pseudo-labels grew under), the pseudo-label map the
method trains on (ignore included; PIT's seeds beside it; CBST's selection is its map), the
student's prediction, and per class that frame's pseudo-label precision, recall and share.

On disk, under RUN/timeline/: `frames.npz` (the frames as the network saw them, uint8 RGB, their
labels if any, the class names) once, then one compressed `step_NNNNNNN.npz` per health step,
each written atomically (a kill mid-write loses at most that step). Past `MAX_STEPS` files the
steps are thinned, evenly, to half. numpy's own format, read without pickles.
"""
from __future__ import annotations

import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pit_engine.classes import IGNORE
from pit_engine.data.io import atomic_write
from pit_engine.errors import UserError

FOLDER = "timeline"
FRAMES_FILE = "frames.npz"
MAX_STEPS = 120  # past this many step files, every other one goes (kept evenly, first and last kept)
NO_TEACHER = 254  # in a teacher map: this method has no teacher (its prediction alone is recorded)


def timeline_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / FOLDER


def step_path(run_dir: str | Path, iteration: int) -> Path:
    return timeline_dir(run_dir) / f"step_{iteration:07d}.npz"


def per_frame_quality(pseudo: np.ndarray, truth: np.ndarray | None, c: int) -> dict[str, np.ndarray]:
    """Per frame and class (F x C float32, NaN where undefined): the pseudo-labels' share of the
    frame, and with labels their precision (of the pixels labelled c, the share truly c) and recall
    (of the pixels truly c, the share labelled c)."""
    f = pseudo.shape[0]
    flat = pseudo.reshape(f, -1).astype(np.int64)
    counts = np.stack([np.bincount(row[row != IGNORE], minlength=c)[:c] for row in flat]).astype(np.float32)
    out = {"share": counts / flat.shape[1]}
    if truth is not None:
        t = truth.reshape(f, -1).astype(np.int64)
        valid = t != IGNORE
        said = np.stack([np.bincount(p[(p != IGNORE) & v], minlength=c)[:c] for p, v in zip(flat, valid)])
        hits = np.stack([np.bincount(p[(p == y) & v], minlength=c)[:c] for p, y, v in zip(flat, t, valid)])
        true = np.stack([np.bincount(y[v], minlength=c)[:c] for y, v in zip(t, valid)])
        with np.errstate(invalid="ignore", divide="ignore"):
            out["precision"] = np.where(said > 0, hits / said, np.nan).astype(np.float32)
            out["recall"] = np.where(true > 0, hits / true, np.nan).astype(np.float32)
    return out


def snapshot(student: np.ndarray, seen: dict, truth: np.ndarray | None, c: int) -> dict[str, np.ndarray]:
    """A step's record from the student's arg-max (F x H x W) and what the method's `diagnose`
    gave (tensors), as numpy arrays ready to write. A method without pseudo-labels records its
    prediction alone."""
    def host(key):
        v = seen.get(key)
        return None if v is None else v.detach().cpu().numpy()
    record = {"student": student.astype(np.uint8)}
    teacher, pseudo, seeds = host("teacher"), host("pseudo"), host("seeds")
    if teacher is not None:
        record["teacher"] = teacher.astype(np.uint8)
    if pseudo is not None:
        pseudo = pseudo.astype(np.uint8)
        record["pseudo"] = pseudo
        for key, value in per_frame_quality(pseudo, truth, c).items():
            record[key] = value
    if seeds is not None:
        record["seeds"] = np.packbits(seeds.astype(bool), axis=-1)  # a bit a pixel
    for key in ("q", "pooled"):
        if host(key) is not None:
            record[key] = host(key).astype(np.float16)
    if host("pivot") is not None:
        record["pivot"] = host("pivot").astype(np.int8)
    return record


class TimelineWriter:
    """Writes a run's timeline, by the main process: the frames once, then a file a step. A step
    is compressed and written on a thread of its own while training goes on (the arrays are the
    step's own copies); `flush` waits for it, and each step waits for the one before."""

    def __init__(self, run_dir: str | Path, max_steps: int = MAX_STEPS):
        self.dir, self.max_steps = timeline_dir(run_dir), max_steps
        self._pending: threading.Thread | None = None
        self.error: str | None = None  # the last write's failure, one line (the run goes on without it)

    def write_frames(self, images: np.ndarray, truth: np.ndarray | None, names: list[str], classes: list[str]) -> None:
        arrays = {"images": images.astype(np.uint8), "names": np.array(names), "classes": np.array(classes)}
        if truth is not None:
            arrays["truth"] = truth.astype(np.uint8)
        atomic_write(self.dir / FRAMES_FILE, lambda tmp: _savez(tmp, arrays))

    def write_step(self, iteration: int, record: dict[str, np.ndarray], wait: bool = False) -> Path:
        path = step_path(self.dir.parent, iteration)
        arrays = {"iteration": np.array(iteration), **record}
        self.flush()

        def write():
            try:
                atomic_write(path, lambda tmp: _savez(tmp, arrays))
                self.thin()
            except (UserError, OSError) as exc:  # a full disk costs the timeline a step, not the run
                self.error = exc.line() if isinstance(exc, UserError) else f"cannot write {path}: {exc}"
        self._pending = threading.Thread(target=write, name="timeline-writer", daemon=True)
        self._pending.start()
        if wait:
            self.flush()
        return path

    def flush(self) -> None:
        if self._pending is not None:
            self._pending.join()
            self._pending = None

    def thin(self) -> None:
        """Past the cap, every other step goes (the first and the last stay): a long run keeps
        its whole span at half the density, not its first steps only."""
        steps = step_files(self.dir.parent)
        if len(steps) <= self.max_steps:
            return
        keep = set(np.linspace(0, len(steps) - 1, (self.max_steps + 1) // 2).round().astype(int).tolist())
        for i, (_, path) in enumerate(steps):
            if i not in keep:
                path.unlink(missing_ok=True)

    def rewind(self, iteration: int) -> None:
        """Back to a checkpoint: the steps after it (about to be recorded again) and interrupted
        writes go."""
        for step, path in step_files(self.dir.parent):
            if step > iteration:
                path.unlink(missing_ok=True)
        for stale in self.dir.glob(".step_*"):
            stale.unlink(missing_ok=True)


def start_timeline(run_dir: str | Path, probe, classes) -> TimelineWriter:
    """A run's timeline writer, with the health probe's fixed frames (and labels, if any) written once."""
    writer = TimelineWriter(run_dir)
    labels = probe.labels.cpu().numpy() if probe.labels is not None else None
    writer.write_frames(np.stack(probe.images), labels, probe.names, list(classes))
    return writer


def _savez(path, arrays: dict) -> None:
    with open(path, "wb") as f:  # a file object: numpy would otherwise append .npz to the name
        np.savez_compressed(f, **arrays)


def step_files(run_dir: str | Path) -> list[tuple[int, Path]]:
    """The step files present, by iteration."""
    found = []
    for path in timeline_dir(run_dir).glob("step_*.npz"):
        try:
            found.append((int(path.stem.split("_")[1]), path))
        except (IndexError, ValueError):
            continue
    return sorted(found)


MAPS = ("student", "teacher", "pseudo", "seeds")  # frame-sized: read when a step is shown, a few kept
KEPT_STEPS = 16


@dataclass
class Timeline:
    """A run's timeline as read back: the frames, and the steps that could be read. A step's small
    arrays (pivot, per-class curves) are read at once; its maps when shown (`maps`), a few kept, so
    that a paper-sized run does not hold every map of every step. `skipped` holds a line per step
    file that could not be read."""
    images: np.ndarray  # F x H x W x 3 uint8
    truth: np.ndarray | None  # F x H x W uint8
    names: list[str]
    classes: list[str]
    iterations: list[int] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)  # a step's small arrays, and "path"
    skipped: list[str] = field(default_factory=list)
    unreadable: set[str] = field(default_factory=set)
    run_dir: Path | None = None
    log: object = None  # where a skipped step's line goes
    _kept: OrderedDict = field(default_factory=OrderedDict)

    @property
    def frames(self) -> int:
        return self.images.shape[0]

    def truth_present(self, frame: int) -> np.ndarray | None:
        """C bool: the classes the frame's truth holds (None without labels)."""
        if self.truth is None:
            return None
        t = self.truth[frame]
        return np.bincount(t[t != IGNORE].ravel(), minlength=len(self.classes))[:len(self.classes)] > 0

    def has(self, key: str) -> bool:
        """Whether the steps record `key` (a method without pseudo-labels records its prediction alone)."""
        return any(key in s["keys"] for s in self.steps)

    def curve(self, key: str, frame: int) -> np.ndarray:
        """Steps x C of a per-class measure on one frame (NaN where a step does not hold it)."""
        c = len(self.classes)
        return np.stack([s[key][frame].astype(np.float32) if key in s else np.full(c, np.nan, np.float32)
                         for s in self.steps]) if self.steps else np.zeros((0, c), np.float32)

    def maps(self, step: int) -> dict | None:
        """The step's maps (student, teacher, pseudo, packed seeds), F x H x W; None, said in one
        line, where the file went or was damaged since it was listed."""
        path = self.steps[step]["path"]
        if path in self._kept:
            self._kept.move_to_end(path)
            return self._kept[path]
        try:
            with np.load(path, allow_pickle=False) as data:
                maps = {key: data[key] for key in MAPS if key in data.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            line = _skip_line(path, exc)
            if line not in self.skipped:
                self.skipped.append(line)
                (self.log or (lambda _: None))(f"timeline: {line}")
            return None
        self._kept[path] = maps
        while len(self._kept) > KEPT_STEPS:
            self._kept.popitem(last=False)
        return maps

    def seeds(self, step: int, frame: int) -> np.ndarray | None:
        maps = self.maps(step)
        if maps is None or "seeds" not in maps:
            return None
        return np.unpackbits(maps["seeds"][frame], axis=-1, count=self.images.shape[2]).astype(bool)

    def refresh(self) -> list[int]:
        """Read the step files written since the last call (a run that is training); the new
        steps' iterations. A file that cannot be read is skipped with one line, and not read again;
        steps whose files went since (the run thinned them out past MAX_STEPS) are forgotten."""
        if self.run_dir is None:
            return []
        present = step_files(self.run_dir)
        there = {path for _, path in present}
        kept = [(i, s) for i, s in zip(self.iterations, self.steps) if s["path"] in there]
        self.iterations, self.steps = [i for i, _ in kept], [s for _, s in kept]
        new = []
        for iteration, path in present:
            if iteration in self.iterations or path.name in self.unreadable:
                continue
            record = read_step(path, self.frames, self.log or (lambda _: None), self.skipped)
            if record is None:
                self.unreadable.add(path.name)
                continue
            self.iterations.append(iteration)
            self.steps.append(record)
            new.append(iteration)
        order = np.argsort(self.iterations, kind="stable")
        self.iterations = [self.iterations[i] for i in order]
        self.steps = [self.steps[i] for i in order]
        return new


def _skip_line(path: Path, exc: Exception) -> str:
    return f"{path.name}: skipped, unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"


def read_step(path: Path, frames: int, log, skipped: list[str]) -> dict | None:
    """One step file's small arrays (its maps are read when shown), or None with one line: a file
    cut short by a kill, damaged, or of other frames."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "student" not in data.files:
                raise ValueError("it holds no prediction")
            record = {key: data[key] for key in data.files if key not in MAPS}
            record["keys"] = set(data.files)
        if any(v.ndim and v.shape[0] != frames for k, v in record.items() if k not in ("keys", "iteration")):
            raise ValueError("it does not hold the run's frames")
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        line = _skip_line(path, exc)
        skipped.append(line)
        log(f"timeline: {line}")
        return None
    record["path"] = path
    return record


def has_timeline(run_dir: str | Path) -> bool:
    return (timeline_dir(run_dir) / FRAMES_FILE).is_file()


def read_timeline(run_dir: str | Path, log=lambda line: None) -> Timeline | None:
    """A run's timeline, None for a run without one (older runs, runs without health steps).
    Unreadable step files are skipped with a line each; an unreadable frames file is a UserError."""
    path = timeline_dir(run_dir) / FRAMES_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            images = data["images"]
            truth = data["truth"] if "truth" in data.files else None
            names, classes = [str(n) for n in data["names"]], [str(c) for c in data["classes"]]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        raise UserError("the run's timeline frames cannot be read", path,
                        "the file is damaged; a new run records them again") from None
    timeline = Timeline(images, truth, names, classes, run_dir=Path(run_dir), log=log)
    timeline.refresh()
    return timeline
