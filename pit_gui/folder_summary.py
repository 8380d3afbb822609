"""The folder summary: per model, over every frame of the Inspect view's folder scored so far, the
mean IoU and the per-class IoU, the pivot's precision and recall per class, and a confusion matrix
(with its colour scale, its values on hover, and the classes the ground truth lacks marked).

It holds its own sums (each frame's counts, by path, so a frame scored again replaces its old
counts) and reads the Inspect view's state (an InspectState): its frame results, its models and
the pair in panels A and B, through that object's signals; it computes sums and ratios of counts
the engine made, nothing else."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QCursor, QFont, QFontMetricsF
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QSplitter, QTableWidget, QToolTip, QVBoxLayout,
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

    def miou(self, k: int) -> tuple[float, int] | None:
        """Model k's mean IoU over the folder and over how many classes: the engine's mean, which
        leaves out a class neither in the truth nor predicted (as cityscapesScripts)."""
        m = self.matrix(k)
        if m is None:
            return None
        cm = ConfusionMatrix.of(m)
        return cm.miou(range(NUM_CLASSES)), int(np.isfinite(cm.iou()).sum())

    def pivot_quality(self, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Per class, (precision, recall) of model k's pivot over the frames (NaN where undefined)."""
        counts = self.sums.get(("pivot", k))
        if counts is None:
            return None
        hits, said, truth = counts.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return hits / said, hits / truth


class ColumnNames(pg.AxisItem):
    """A bottom axis naming each column in full, upright (read bottom to top): names neither
    clipped nor run together ("motorbicyc") however narrow the columns are."""

    PAD = 6  # between the axis line and a name, and below the longest

    def __init__(self, names):
        super().__init__("bottom")
        self.names = list(names)
        self.setStyle(showValues=False)
        self.setTicks([[(i + 0.5, "") for i in range(len(self.names))]])
        longest = max(QFontMetricsF(QFont()).horizontalAdvance(n) for n in self.names)
        self.setHeight(int(longest) + 2 * self.PAD + 4)

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):
        super().drawPicture(p, axisSpec, tickSpecs, textSpecs)
        view = self.linkedView()
        if view is None:
            return
        p.setPen(self.textPen())
        line = QFontMetricsF(p.font()).height()
        for i, name in enumerate(self.names):
            x = self.mapFromScene(view.mapViewToScene(QPointF(i + 0.5, 0))).x()
            if not 0 <= x <= self.width():
                continue
            p.save()
            p.translate(x, self.PAD)
            p.rotate(-90)  # the name's end at the axis, its start below
            p.drawText(QRectF(-self.height() + self.PAD, -line / 2, self.height() - self.PAD, line),
                       int(Qt.AlignRight | Qt.AlignVCenter), name)
            p.restore()


class FolderSummary(QWidget):
    def __init__(self, state=None, parent=None):
        """state: the Inspect view's InspectState, whose scored frames, models and pair it follows."""
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
        self.hovered = ""  # the last matrix cell told on hover
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.which = ComboBox(toolTip="Whose confusion matrix")
        self.which.currentIndexChanged.connect(self.refresh)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground((30, 30, 34))
        self.plot = self.graphics.addPlot(title="confusion: rows truth, columns prediction (share of each row)",
                                          axisItems={"bottom": ColumnNames(CITYSCAPES_CLASSES)})
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        ticks = [(i + 0.5, name) for i, name in enumerate(CITYSCAPES_CLASSES)]
        self.plot.getAxis("left").setTicks([ticks])
        self.image = pg.ImageItem()
        colours = pg.colormap.get("viridis")
        self.image.setLookupTable(colours.getLookupTable(nPts=256))
        self.plot.addItem(self.image)
        self.scale = pg.ColorBarItem(values=(0, 1), colorMap=colours, label="% of the truth row's pixels",
                                     interactive=False, colorMapMenu=False)
        self.scale.setImageItem(self.image, insert_in=self.plot)
        self.scale.axis.setTicks([[(v / 100, f"{v}") for v in (0, 25, 50, 75, 100)]])  # shares, read as %
        self.empty_rows: list[pg.TextItem] = []  # "no pixels" on the truth rows the frames lack
        self.shares: np.ndarray | None = None  # the matrix shown: each row's shares, NaN for a row without truth
        self.counts: np.ndarray | None = None
        self.graphics.scene().sigMouseMoved.connect(self._hover)
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
        if state is not None:
            state.frame_scored.connect(self.add)
            state.scoring_reset.connect(self.reset)
            state.pair_changed.connect(self.set_pair)

    # what the Inspect view's state says -------------------------------------------------------------------
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

        def row(label, values, rest):
            va, vb = (values[k] if 0 <= k < len(values) else None for k in (a, b))
            delta = None if va is None or vb is None else vb - va
            return [label, *map(_pct, values), "–" if delta is None else f"{100 * delta:+.1f}", *rest], delta
        cells = []
        means = [self.totals.miou(k) for k in range(len(names))]
        if any(m is not None for m in means):  # the headline: each model's mean IoU, and Δ
            over = sorted({m[1] for m in means if m is not None})  # classes in the truth or the prediction
            label = f"mIoU ({over[0]} classes)" if len(over) == 1 else f"mIoU ({over[0]}–{over[-1]} classes)"
            cells.append(row(label, [None if m is None or m[0] != m[0] else m[0] for m in means],
                             [""] * len(pivots)))
        for c, name in enumerate(CITYSCAPES_CLASSES[:NUM_CLASSES]):
            values = [None if i is None or np.isnan(i[c]) else float(i[c]) for i in ious]
            if all(v is None for v in values):
                continue
            cells.append(row(name, values, [_quality(q, c) for q in pivots.values()]))
        fill_table(self.table, cells, delta_column=len(names) + 1)
        if cells and cells[0][0][0].startswith("mIoU"):
            for j in range(self.table.columnCount()):
                font = self.table.item(0, j).font()
                font.setBold(True)
                self.table.item(0, j).setFont(font)
            self.table.resizeColumnsToContents()  # measured again in bold
        self._show_matrix(self.totals.matrix(self.which.currentIndex()))

    def _show_matrix(self, matrix) -> None:
        """Each truth row's shares; a row the ground truth has no pixel of says "no pixels" (not a
        row of zero shares)."""
        for item in self.empty_rows:
            self.plot.removeItem(item)
        self.empty_rows = []
        self.counts = matrix
        if matrix is None:
            self.shares = None
            self.image.clear()
            return
        rows_sum = matrix.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.shares = np.where(rows_sum > 0, matrix / np.maximum(rows_sum, 1), np.nan)
        self.image.setImage(self.shares.astype(np.float32), levels=(0, 1), autoLevels=False)
        for r in np.flatnonzero(rows_sum[:, 0] == 0):
            text = pg.TextItem("no pixels", color=(170, 170, 180), anchor=(0.5, 0.5))
            text.setPos(matrix.shape[1] / 2, r + 0.5)
            self.plot.addItem(text)
            self.empty_rows.append(text)

    def hover_text(self, r: int, c: int) -> str:
        """The matrix cell (truth r, prediction c) in words."""
        if self.shares is None or not (0 <= r < self.shares.shape[0] and 0 <= c < self.shares.shape[1]):
            return ""
        truth, predicted = CITYSCAPES_CLASSES[r], CITYSCAPES_CLASSES[c]
        if np.isnan(self.shares[r, c]):
            return f"{truth}: no pixels in the ground truth of the frames scored"
        return (f"truth {truth} → predicted {predicted}: {100 * self.shares[r, c]:.1f} % of the truth's {truth} "
                f"pixels ({int(self.counts[r, c]):,} of {int(self.counts[r].sum()):,})")

    def _hover(self, pos) -> None:
        if not self.plot.vb.sceneBoundingRect().contains(pos):
            return
        point = self.plot.vb.mapSceneToView(pos)
        text = self.hover_text(int(np.floor(point.y())), int(np.floor(point.x())))
        self.hovered = text
        if text:
            QToolTip.showText(QCursor.pos(), text)

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
