"""The folder summary: per model, over every frame of the Inspect view's folder scored so far, the
per-class IoU, the pivot's precision and recall per class, and a confusion matrix.

It holds its own state (each frame's counts, by path, so a frame scored again replaces its old
counts) and is fed the Inspect view's frame results through a signal; it computes sums and
ratios of counts the engine made, nothing else."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QSplitter, QTableWidget, QVBoxLayout,
                               QWidget)

from pit_engine.classes import CITYSCAPES_CLASSES, NUM_CLASSES
from pit_engine.pit_ops import PRESENT
from pit_gui.tables import fill_table

COLUMNS = ("class", "IoU A", "IoU B", "Δ", "pivot P / R A", "pivot P / R B")


class FolderTotals:
    """Sums over frames: confusion matrices and pivot counts (hits, said present, truly present)."""

    def __init__(self):
        self.frames: dict = {}  # path -> (matrices, pivot counts) of that frame

    def clear(self) -> None:
        self.frames.clear()

    def add(self, result) -> None:
        if result.truth is None:
            return
        pivots = []
        for p in (result.a, result.b):
            if p is None or not p.has_pivot:
                pivots.append(None)
                continue
            said = (p.pivot == PRESENT).astype(np.int64)
            truth = result.truth_present.astype(np.int64)
            pivots.append(np.stack([said * truth, said, truth]))
        self.frames[result.path] = (result.matrices, pivots)

    def matrix(self, k: int) -> np.ndarray | None:
        parts = [m[k] for m, _ in self.frames.values() if m[k] is not None]
        return np.sum(parts, axis=0) if parts else None

    def iou(self, k: int) -> np.ndarray | None:
        m = self.matrix(k)
        if m is None:
            return None
        tp = np.diag(m).astype(np.float64)
        union = m.sum(0) + m.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def pivot_quality(self, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Per class, (precision, recall) of model k's pivot over the frames (NaN where undefined)."""
        parts = [p[k] for _, p in self.frames.values() if p[k] is not None]
        if not parts:
            return None
        hits, said, truth = np.sum(parts, axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return hits / said, hits / truth


class FolderSummary(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.totals = FolderTotals()
        self.names = ("A", "B")
        self.total_frames = 0
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.which = QComboBox(toolTip="Whose confusion matrix")
        self.which.addItems(["A", "B"])
        self.which.currentIndexChanged.connect(self.refresh)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground((30, 30, 34))
        self.plot = self.graphics.addPlot(title="confusion: rows truth, columns prediction (share of each row)")
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        ticks = [(i + 0.5, name) for i, name in enumerate(CITYSCAPES_CLASSES)]
        self.plot.getAxis("left").setTicks([ticks])
        short = [name.split()[-1][:5] for name in CITYSCAPES_CLASSES]  # "light", "sign": not two "traf"
        self.plot.getAxis("bottom").setTicks([[(i + 0.5, name) for i, name in enumerate(short)]])
        self.image = pg.ImageItem()
        self.image.setLookupTable(pg.colormap.get("viridis").getLookupTable(nPts=256))
        self.plot.addItem(self.image)
        right = QWidget()
        r = QVBoxLayout(right)
        r.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(QLabel("Confusion matrix of"))
        top.addWidget(self.which)
        top.addStretch(1)
        r.addLayout(top)
        r.addWidget(self.graphics, 1)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.table)
        split.addWidget(right)
        split.setSizes([600, 600])
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addWidget(split, 1)
        self.refresh()

    # fed by the Inspect view -------------------------------------------------------------------
    def reset(self, names=("A", "B"), total_frames: int = 0) -> None:
        """New models or a new folder: nothing scored yet."""
        self.totals.clear()
        self.names, self.total_frames = tuple(names), total_frames
        self.which.setItemText(0, self.names[0])
        self.which.setItemText(1, self.names[1])
        self.refresh()

    def add(self, result) -> None:
        self.totals.add(result)
        self.refresh()

    # display -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        counted = len(self.totals.frames)
        self.info.setText(f"Over {counted} of {self.total_frames} frame(s) with ground truth scored so far; "
                          f"A: {self.names[0]}, B: {self.names[1]}. Pivot precision / recall: of the state each "
                          "model's pivot gives a class, against the classes the ground truth holds."
                          if counted else "No frame with ground truth scored yet: open labelled frames (a "
                                          "Cityscapes folder) in Inspect.")
        ious = [self.totals.iou(k) for k in (0, 1)]
        pivots = [self.totals.pivot_quality(k) for k in (0, 1)]
        rows = []
        for c, name in enumerate(CITYSCAPES_CLASSES[:NUM_CLASSES]):
            a, b = (None if i is None or np.isnan(i[c]) else float(i[c]) for i in ious)
            if a is None and b is None:
                continue
            rows.append((name, a, b, pivots[0], pivots[1], c))
        cells = []
        for name, a, b, pa, pb, c in rows:
            delta = None if a is None or b is None else b - a
            cells.append(([name, _pct(a), _pct(b), "–" if delta is None else f"{100 * delta:+.1f}",
                           _quality(pa, c), _quality(pb, c)], delta))
        fill_table(self.table, cells)
        matrix = self.totals.matrix(self.which.currentIndex())
        if matrix is None:
            self.image.clear()
            return
        rows_sum = matrix.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(rows_sum > 0, matrix / np.maximum(rows_sum, 1), 0.0)
        self.image.setImage(share.astype(np.float32), levels=(0, 1), autoLevels=False)

    def row(self, name: str) -> list[str]:
        """The table's cells for a class (for tests and readers)."""
        for i in range(self.table.rowCount()):
            if self.table.item(i, 0).text() == name:
                return [self.table.item(i, j).text() for j in range(self.table.columnCount())]
        return []


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _quality(pq, c: int) -> str:
    if pq is None:
        return "–"
    p, r = (float(x[c]) for x in pq)
    return f"{_pct(None if p != p else p)} / {_pct(None if r != r else r)}"
