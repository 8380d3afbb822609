"""What the Inspect view shows, apart from its widgets: the frames of the open folder (the one
selected, those that cannot be read), the open models (their checkpoints, their names once loaded,
and which two fill panels A and B), and what the models made of the frames (the predictions held,
bounded in bytes, and every scored frame's scores and facts).

A plain QObject that says what changed through signals, as napari's layer models do: the Inspect
view's frame list and panels, the model list and the folder summary all read this one object and
redraw from its signals. It computes nothing: the results are the inference worker's."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, Signal

CACHE_BYTES = 1 << 30  # predictions kept for instant frame switching


class InspectState(QObject):
    frames_changed = Signal(list)  # a new folder: its frames (Paths), nothing scored, none unreadable
    current_changed = Signal(object)  # the frame selected (a Path)
    models_changed = Signal(list)  # the checkpoints, in order: every model is predicted anew, nothing scored
    names_changed = Signal(list)  # the loaded models' names, the same models
    pair_changed = Signal(int, int)  # which models panels A and B show (-1: none)
    frame_scored = Signal(object)  # a FrameResult of the current models on a frame of the folder
    frame_unreadable = Signal(object, str)  # a frame the inference worker could not read (a Path), and why
    scoring_reset = Signal(object, int)  # (model names, frames): all models loaded or a new folder, nothing scored

    def __init__(self, parent=None):
        super().__init__(parent)
        self.frames: list[Path] = []
        self._frame_set: set[Path] = set()
        self.current: Path | None = None
        self.unreadable: dict[Path, str] = {}  # frames the inference worker could not predict: why
        self.checkpoints: list[str] = []
        self.names: list[str] = []  # as the loaded checkpoints call themselves ("" until loaded)
        self.a, self.b = -1, -1
        self.generation = 0  # the inference worker's number for the models open now
        self.cache: OrderedDict[Path, object] = OrderedDict()  # FrameResults, least recently used first
        self.scores: dict[Path, tuple] = {}  # per frame scored: each model's mIoU on it
        self.facts: dict[Path, dict] = {}  # per frame scored: which classes truth, predictions and pivots hold

    # frames ---------------------------------------------------------------------------------------
    def set_frames(self, paths) -> None:
        self.frames = [Path(p) for p in paths]
        self._frame_set = set(self.frames)
        self._forget_results()
        self.unreadable.clear()
        self.frames_changed.emit(list(self.frames))
        self.scoring_reset.emit(self.model_names(), len(self.frames))

    def select(self, path) -> None:
        self.current = Path(path)
        if self.current in self.cache:
            self.cache.move_to_end(self.current)
        self.current_changed.emit(self.current)

    def result(self):
        """The selected frame's FrameResult, None until it is predicted."""
        return self.cache.get(self.current) if self.current is not None else None

    def add_result(self, result) -> bool:
        """A frame predicted: held (the least recently used dropped past CACHE_BYTES, never the frame
        shown) and scored. False for a result of replaced models or of a folder no longer open."""
        if result.generation != self.generation or result.path not in self._frame_set:
            return False
        self.cache[result.path] = result
        self.cache.move_to_end(result.path)
        total = sum(r.nbytes for r in self.cache.values())
        for path in list(self.cache):  # least recently used first; the frame shown stays
            if total <= CACHE_BYTES:
                break
            if path != self.current and path != result.path:
                total -= self.cache.pop(path).nbytes
        self.scores[result.path] = result.scores
        self.facts[result.path] = result.facts
        self.frame_scored.emit(result)
        return True

    def mark_unreadable(self, path, line: str) -> bool:
        """False when it was known already, or is no frame of this folder: nothing new to tell."""
        path = Path(path)
        if path in self.unreadable or path not in self._frame_set:
            return False
        self.unreadable[path] = line
        self.frame_unreadable.emit(path, line)
        return True

    def readable(self, paths) -> list[Path]:
        return [p for p in paths if p not in self.unreadable]

    def settled(self) -> int:
        """How many frames of the folder are predicted or found unreadable."""
        return len(self.scores) + len(self.unreadable)

    def _forget_results(self) -> None:
        self.cache.clear()
        self.scores.clear()
        self.facts.clear()

    # models ---------------------------------------------------------------------------------------
    @property
    def pair(self) -> tuple[int, int]:
        return self.a, self.b

    def set_checkpoints(self, checkpoints, a: int = 0, b: int = 1) -> None:
        """Replace every model (the demo's pair, say)."""
        self.checkpoints = [str(c) for c in checkpoints if c]
        self.names = [""] * len(self.checkpoints)
        self.a, self.b = self._valid(a), self._valid(b)
        self._models_set()

    def add(self, checkpoint, as_a: bool = False, replace_run: bool = False) -> None:
        """Open a checkpoint and show it in panel B (or A). replace_run: it takes the place of an
        open checkpoint of the same run (a run followed as it trains), instead of adding a row."""
        checkpoint = str(checkpoint)
        if checkpoint in self.checkpoints:  # already open: shown in the panel asked for, the panels swap if need be
            i = self.checkpoints.index(checkpoint)
            a, b = self.a, self.b
            self.set_pair(*((i, a if b == i else b) if as_a else (b if a == i else a, i)))
            return
        same_run = [i for i, c in enumerate(self.checkpoints) if Path(c).parent == Path(checkpoint).parent]
        if replace_run and same_run:
            i = same_run[-1]
            self.checkpoints[i], self.names[i] = checkpoint, ""
        else:
            self.checkpoints.append(checkpoint)
            self.names.append("")
            i = len(self.checkpoints) - 1
        if as_a:
            self.a = i
        elif i != self.a:
            if self.a < 0 and 0 <= self.b != i:  # A was empty: the model shown so far moves there
                self.a = self.b
            self.b = i
        if self.b == self.a and len(self.checkpoints) > 1:  # two panels, two models
            self.b = next(j for j in range(len(self.checkpoints)) if j != self.a)
        self._models_set()

    def remove(self, i: int) -> None:
        del self.checkpoints[i], self.names[i]
        self.a, self.b = (self._valid(x - (x > i) if x != i else -1) for x in (self.a, self.b))
        self._fill_pair()
        self._models_set()

    def set_pair(self, a: int, b: int) -> None:
        self.a, self.b = self._valid(a), self._valid(b)
        self.pair_changed.emit(self.a, self.b)

    def set_names(self, names: list[str]) -> bool:
        """The loaded models' names; a checkpoint that failed to load ("") leaves the list and the
        others are predicted anew. True when every model loaded: the scoring starts again."""
        failed = [i for i, name in enumerate(names) if not name]
        pair = (self.a, self.b)
        self.names = list(names)
        for i in reversed(failed):
            del self.checkpoints[i], self.names[i]
            self.a, self.b = (x - (x > i) if x != i else -1 for x in (self.a, self.b))
        self._fill_pair()
        if failed:
            self._forget_results()
            self.models_changed.emit(list(self.checkpoints))
        else:
            self.names_changed.emit(list(self.names))
        if (self.a, self.b) != pair or failed:
            self.pair_changed.emit(self.a, self.b)
        if not failed:
            self.scoring_reset.emit(self.model_names(), len(self.frames))
        return not failed

    def name(self, i: int) -> str:
        if 0 <= i < len(self.names):
            return self.names[i] or Path(self.checkpoints[i]).stem
        return ""

    def model_names(self) -> tuple[str, ...]:
        """Every open model's name, in the list's order."""
        return tuple(self.name(i) for i in range(len(self.checkpoints)))

    def pair_names(self) -> list[str]:
        """The names of panel A's and B's models ("A", "B" for an empty panel)."""
        return [self.name(i) or which for i, which in zip(self.pair, ("A", "B"))]

    def checkpoint(self, which: str) -> str:
        """The checkpoint panel A or B shows ("" when none)."""
        i = self.a if which == "a" else self.b
        return self.checkpoints[i] if 0 <= i < len(self.checkpoints) else ""

    def pair_scores(self, path) -> tuple:
        """The mIoU of panel A's and panel B's models on a frame (None: not scored, no truth)."""
        scores = self.scores.get(path, ())
        return tuple(scores[i] if 0 <= i < len(scores) else None for i in self.pair)

    def _valid(self, i: int) -> int:
        return i if 0 <= i < len(self.checkpoints) else -1

    def _fill_pair(self) -> None:
        """After a removal: the panels show what is left, A and B different where two are open."""
        n = len(self.checkpoints)
        if self.b < 0:
            self.b = next((j for j in range(n) if j != self.a), -1)
        if self.a < 0:
            self.a = next((j for j in range(n) if j != self.b), -1)

    def _models_set(self) -> None:
        """Other models: nothing of the old ones is kept."""
        self._forget_results()
        self.models_changed.emit(list(self.checkpoints))
        self.pair_changed.emit(self.a, self.b)
