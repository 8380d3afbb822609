"""The folder summary: per model, over every frame of the Inspect view's folder scored so far, the
per-class IoU, the pivot's precision and recall per class, and a confusion matrix.

It holds its own state (each frame's counts, by path, so a frame scored again replaces its old
counts) and is fed the Inspect view's frame results through a signal; it computes sums and
ratios of counts the engine made, nothing else."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QSplitter, QTableWidget, QVBoxLayout,
                               QWidget)

from pit_engine.classes import CITYSCAPES_CLASSES, NUM_CLASSES
from pit_engine.evaluate import ConfusionMatrix
from pit_engine.pit_ops import PRESENT
from pit_gui.tables import fill_table
from pit_gui.wheel import ComboBox

REFRESH_MS = 300  # a folder scored in the background redraws the table a few times a second, not per frame


class FolderTotals:
    """Per model, sums over frames: confusion matrices and pivot counts (hits, said present,
    truly present). Each frame's counts are kept by path, so a frame scored again replaces its
    old counts; the sums are kept up to date as frames come, so a frame costs the same however
    many came before it."""

    def __init__(self):
        self.frames: dict = {}  # path -> (matrices, pivot counts) of that frame, one entry per model
        self.sums: dict = {}  # ("matrix" | "pivot", model) -> summed counts

    def clear(self) -> None:
        self.frames.clear()
        self.sums.clear()

    def add(self, result) -> None:
        if result.truth is None:
            return
        pivots = []
        truth = result.truth_present.astype(np.int64)
        for p in result.preds:
            if p is None or not p.has_pivot:
                pivots.append(None)
                continue
            said = (p.pivot == PRESENT).astype(np.int64)
            pivots.append(np.stack([said * truth, said, truth]))
        if result.path in self.frames:
            self._count(*self.frames[result.path], sign=-1)
        self.frames[result.path] = (result.matrices, pivots)
        self._count(result.matrices, pivots, sign=1)

    def _count(self, matrices, pivots, sign: int) -> None:
        for kind, parts in (("matrix", matrices), ("pivot", pivots)):
            for k, part in enumerate(parts):
                if part is not None:
                    self.sums[(kind, k)] = self.sums.get((kind, k), 0) + sign * part

    def matrix(self, k: int) -> np.ndarray | None:
        return self.sums.get(("matrix", k))

    def iou(self, k: int) -> np.ndarray | None:
        m = self.matrix(k)
        return ConfusionMatrix.of(m).iou() if m is not None else None

    def pivot_quality(self, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Per class, (precision, recall) of model k's pivot over the frames (NaN where undefined)."""
        counts = self.sums.get(("pivot", k))
        if counts is None:
            return None
        hits, said, truth = counts.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return hits / said, hits / truth


class FolderSummary(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.totals = FolderTotals()
        self.names: tuple = ()
        self.pair = (0, 1)  # the models of panels A and B: the Δ column is B − A
        self.total_frames = 0
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.table = QTableWidget(0, 1)
        self.timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.which = ComboBox(toolTip="Whose confusion matrix")
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
    def reset(self, names=(), total_frames: int = 0) -> None:
        """New models or a new folder: nothing scored yet."""
        self.totals.clear()
        self.names, self.total_frames = tuple(names), total_frames
        self.which.blockSignals(True)
        self.which.clear()
        self.which.addItems(list(self.names))
        self.which.setCurrentIndex(max(0, min(self.pair[1], len(self.names) - 1)))
        self.which.blockSignals(False)
        self.refresh()

    def set_pair(self, a: int, b: int) -> None:
        self.pair = (a, b)
        self.refresh()

    def add(self, result) -> None:
        self.totals.add(result)
        if not self.timer.isActive():
            self.timer.start()

    # display -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        self.timer.stop()
        counted, names = len(self.totals.frames), self.names
        a, b = self.pair
        pair = (f"Δ: {names[b]} (B) − {names[a]} (A). " if max(a, b) < len(names) and min(a, b) >= 0 else "")
        self.info.setText(f"Over {counted} of {self.total_frames} frame(s) with ground truth scored so far. {pair}"
                          "Pivot precision / recall: of the state each model's pivot gives a class, against the "
                          "classes the ground truth holds." if counted else
                          "No frame with ground truth scored yet: open labelled frames (a Cityscapes folder) in "
                          "Inspect.")
        ious = [self.totals.iou(k) for k in range(len(names))]
        pivots = {k: q for k in range(len(names)) if (q := self.totals.pivot_quality(k)) is not None}
        lines = [n.replace(" · ", "\n") for n in names]  # a long name on lines of its own, not elided
        header = ["class", *(f"IoU\n{n}" for n in lines), "Δ (B − A)", *(f"pivot P / R\n{lines[k]}" for k in pivots)]
        self.table.setColumnCount(len(header))
        self.table.setHorizontalHeaderLabels(header)
        cells = []
        for c, name in enumerate(CITYSCAPES_CLASSES[:NUM_CLASSES]):
            values = [None if i is None or np.isnan(i[c]) else float(i[c]) for i in ious]
            if all(v is None for v in values):
                continue
            va, vb = (values[k] if 0 <= k < len(values) else None for k in (a, b))
            delta = None if va is None or vb is None else vb - va
            cells.append(([name, *map(_pct, values), "–" if delta is None else f"{100 * delta:+.1f}",
                           *(_quality(q, c) for q in pivots.values())], delta))
        fill_table(self.table, cells, delta_column=len(names) + 1)
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
