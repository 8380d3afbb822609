"""pyqtgraph pieces of the Inspect view: image panels whose zoom and pan move together, and the
category-vector chart. They display arrays the engine rendered; they compute nothing."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

from pit_engine.classes import CITYSCAPES_CLASSES, CITYSCAPES_COLOURS

pg.setConfigOptions(imageAxisOrder="row-major")



class ImagePanel(pg.PlotItem):
    """One titled image; y grows downwards like the frame's rows."""

    def __init__(self, title: str = ""):
        super().__init__(title=title)
        for axis in ("left", "bottom"):
            self.hideAxis(axis)
        self.setMenuEnabled(False)
        self.vb.setAspectLocked(True)
        self.vb.invertY(True)
        self.image_item = pg.ImageItem()
        self.addItem(self.image_item)
        self.array: np.ndarray | None = None

    def show_image(self, array: np.ndarray | None, title: str) -> None:
        self.setTitle(title)
        first = self.array is None or array is None or self.array.shape[:2] != array.shape[:2]
        self.array = array
        if array is None:
            self.image_item.clear()
            return
        self.image_item.setImage(array, autoLevels=False)  # uint8 RGB as it is: no rescaling
        if first:
            self.vb.autoRange(padding=0)


def link(panels: list[ImagePanel]) -> None:
    """Zoom and pan of every panel follow the first."""
    for panel in panels[1:]:
        panel.vb.setXLink(panels[0].vb)
        panel.vb.setYLink(panels[0].vb)


MODEL_COLOURS = ((90, 160, 255), (255, 150, 60))  # the first model's bars, the second's
STATE_SYMBOL = {1: "●", 0: "○", -1: "?"}
STATE_COLOUR = {1: "#3cbe64", 0: "#8c8c96", -1: "#f0aa28"}
STRIP, LABEL_Y = 1.7, -1.1  # the strip above the first class (in rows) and where its labels sit
POOLED_PEN = pg.mkPen((255, 255, 255), width=1.6)  # a hollow diamond: seen on either model's bar and beyond it
CHART_HELP = (
    "Per class, one row per model (A above B):\n"
    "• bar: q, the pivot's score that the class is in the frame (the pivot head's sigmoid, or the "
    "segmenter's reading where the model was trained with it);\n"
    "• ◇ pooled: GWRP, the global weighted rank pooling of the model's own class probabilities "
    "over the frame (its largest probabilities weigh most);\n"
    "• the pivot's state, right of the bars: ● present above τ_hi, ○ absent below τ_lo, ? unsure between "
    "(unsure classes are left out of the adaptation).\n"
    "The state is read from q, or, where the model refreshes its pivot (refresh_pivot, on by default), "
    "from max(q, pooled): a bar short of τ_hi can be present, and its diamond says why.\n"
    "▲ the ground truth holds the class. Hover a class for its values.")


class CategoryChart(pg.PlotItem):
    """Per class and model, three distinct things: the pivot head's q (a bar in the model's
    colour), the GWRP-pooled score of the model's own probabilities (a diamond), and the pivot's
    state (present ●, absent ○, unsure ?, right of the bars) — the state comes from q, or from
    max(q, pooled) where the model refreshes its pivot, so a bar short of τ_hi can be present. The
    τ_lo / τ_hi lines, ▲ on the classes the ground truth holds, and the values on hover."""

    class_clicked = Signal(int)  # a class's row was clicked

    def __init__(self):
        super().__init__(title="bar q · ◇ pooled · "
                               f"<span style='color:{STATE_COLOUR[1]}'>● present</span> "
                               f"<span style='color:{STATE_COLOUR[-1]}'>? unsure</span> "
                               f"<span style='color:{STATE_COLOUR[0]}'>○ absent</span>")
        n = len(CITYSCAPES_CLASSES)
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.setXRange(0, 1.2, padding=0)
        self.setYRange(-STRIP, n - 0.4, padding=0)  # a strip above the first class for the τ labels and "?"
        self.invertY(True)
        self.getAxis("left").setTicks([[(i, name) for i, name in enumerate(CITYSCAPES_CLASSES)]])
        self.getAxis("bottom").setTicks([[(v, f"{v:g}") for v in (0, 0.25, 0.5, 0.75, 1.0)]])
        self.showGrid(x=True, alpha=0.15)
        self.bars: list[pg.GraphicsObject] = []
        self.tau_lo = pg.InfiniteLine(angle=90, pen=pg.mkPen((200, 200, 200), style=Qt.DashLine))
        self.tau_hi = pg.InfiniteLine(angle=90, pen=pg.mkPen((255, 255, 255), style=Qt.DashLine))
        # their labels (and values) sit in a strip of their own above the first class, where no bar reaches
        self.tau_labels = (pg.TextItem("τ_lo", color=(210, 210, 210), anchor=(0, 0.5)),
                           pg.TextItem("τ_hi", color=(255, 255, 255), anchor=(0, 0.5)))
        # what q, the pooled score and the refresh rule are, on the chart itself
        self.help = pg.TextItem(" ? ", color=(255, 255, 255), fill=pg.mkBrush(70, 90, 130), anchor=(1, 0.5))
        font = self.help.textItem.font()
        font.setBold(True)
        self.help.setFont(font)
        self.help.setToolTip(CHART_HELP)
        self.help.setPos(1.19, LABEL_Y)
        for item in (self.tau_lo, self.tau_hi, *self.tau_labels, self.help):
            self.addItem(item)
        swatches = [pg.mkBrush(*map(int, c)) for c in CITYSCAPES_COLOURS]
        self.swatches = pg.ScatterPlotItem(x=[-0.0] * n, y=list(range(n)), symbol="s", size=8, brush=swatches,
                                           pen=None)
        self.addItem(self.swatches)
        self.truth = pg.ScatterPlotItem(symbol="t1", size=10, brush=pg.mkBrush(255, 255, 255), pen=None)
        self.addItem(self.truth)
        self.values: dict[str, np.ndarray] = {}  # q by model label
        self.shown: list[tuple[str, object]] = []
        self.truth_present: np.ndarray | None = None
        self._hover_connected = False

    def show_vectors(self, predictions: list, truth_present: np.ndarray | None) -> None:
        """predictions: up to two (label, Prediction or None); the first is drawn above."""
        for bar in self.bars:
            self.removeItem(bar)
        self.bars, self.values = [], {}
        self.shown = [(label, p) for label, p in predictions if p is not None and p.has_pivot]
        self.truth_present = truth_present
        height = 0.8 / max(len(self.shown), 1)
        for k, (label, p) in enumerate(self.shown):
            colour = MODEL_COLOURS[k % len(MODEL_COLOURS)]
            y = np.arange(len(p.q)) - 0.4 + height * (k + 0.5)
            bar = pg.BarGraphItem(x0=0, y=y, height=height * 0.85, width=p.q, brush=pg.mkBrush(*colour), pen=None)
            pooled = pg.ScatterPlotItem(x=p.pooled, y=y, symbol="d", size=10, brush=None, pen=POOLED_PEN)
            self.bars += [bar, pooled]
            for c, state in enumerate(p.pivot):
                mark = pg.TextItem(STATE_SYMBOL[int(state)], color=STATE_COLOUR[int(state)], anchor=(0.5, 0.5))
                mark.setPos(1.1, y[c])
                self.bars.append(mark)
            for item in self.bars[-(2 + len(p.pivot)):]:
                self.addItem(item)
            self.values[label] = p.q
            self.tau_lo.setValue(p.tau_lo)
            self.tau_hi.setValue(p.tau_hi)
            for text, name, value in zip(self.tau_labels, ("τ_lo", "τ_hi"), (p.tau_lo, p.tau_hi)):
                text.setText(f"{name} {value:g}")
                text.setPos(value, LABEL_Y)
        key = " · ".join(f"<span style='color:rgb{MODEL_COLOURS[k % 2]}'>■ {label}</span>"
                         for k, (label, _) in enumerate(self.shown)) or "no model with a pivot"
        self.getAxis("bottom").setLabel(f"{key} · ▲ ground truth")
        if truth_present is not None:
            ys = np.flatnonzero(truth_present)
            self.truth.setData(x=np.full(len(ys), 1.03), y=ys)
        else:
            self.truth.setData(x=[], y=[])
        if not self._hover_connected and self.scene() is not None:
            self.scene().sigMouseMoved.connect(self._hover)
            self.scene().sigMouseClicked.connect(self._click)
            self._hover_connected = True

    def hover_text(self, c: int) -> str:
        """What the chart shows for class c, in words."""
        if not 0 <= c < len(CITYSCAPES_CLASSES) or not self.shown:
            return ""
        lines = [CITYSCAPES_CLASSES[c] + ("" if self.truth_present is None else
                                          " (in the ground truth)" if self.truth_present[c] else
                                          " (not in the ground truth)")]
        for label, p in self.shown:
            state = {1: "present", 0: "absent", -1: "unsure"}[int(p.pivot[c])]
            reading = f" (from the {p.pivot_reading})" if p.pivot_reading else ""
            lines.append(f"{label}: q {p.q[c]:.3f}{reading} · pooled {p.pooled[c]:.3f} · pivot {state}")
        return "\n".join(lines)

    def _click(self, event) -> None:
        """A click on a class's row says which class (the what-if switches its pivot state)."""
        if not self.vb.sceneBoundingRect().contains(event.scenePos()):
            return
        c = round(self.vb.mapSceneToView(event.scenePos()).y())
        if 0 <= c < len(CITYSCAPES_CLASSES):
            self.class_clicked.emit(c)

    def _hover(self, pos) -> None:
        from PySide6.QtGui import QCursor
        from PySide6.QtWidgets import QToolTip

        if not self.vb.sceneBoundingRect().contains(pos):
            return
        text = self.hover_text(round(self.vb.mapSceneToView(pos).y()))
        if text:
            QToolTip.showText(QCursor.pos(), text)
