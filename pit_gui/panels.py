"""pyqtgraph pieces of the Inspect view: image panels whose zoom and pan move together, and the
category-vector chart. They display arrays the engine rendered; they compute nothing."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from pit_engine.classes import CITYSCAPES_CLASSES, CITYSCAPES_COLOURS

pg.setConfigOptions(imageAxisOrder="row-major")

PIVOT_BRUSH = {1: (60, 190, 100), 0: (110, 110, 120), -1: (240, 170, 40)}  # present / absent / unsure
PIVOT_NAMES = {1: "present", 0: "absent", -1: "unsure (ignored by L_img)"}


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


class CategoryChart(pg.PlotItem):
    """q per class as horizontal bars, one per model, coloured by the pivot's verdict, with the
    τ_lo / τ_hi lines and a mark on the classes the ground truth contains."""

    def __init__(self):
        super().__init__(title="q: <span style='color:#3cbe64'>present</span> · <span style='color:#f0aa28'>"
                               "unsure</span> · <span style='color:#8c8c96'>absent</span>")
        n = len(CITYSCAPES_CLASSES)
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.setXRange(0, 1.08, padding=0)
        self.setYRange(-0.6, n - 0.4, padding=0)
        self.invertY(True)
        self.getAxis("left").setTicks([[(i, name) for i, name in enumerate(CITYSCAPES_CLASSES)]])
        self.getAxis("bottom").setLabel("upper bar source-only, lower adapted · ▲ ground truth")
        self.showGrid(x=True, alpha=0.15)
        self.bars: list[pg.BarGraphItem] = []
        self.tau_lo = pg.InfiniteLine(angle=90, pen=pg.mkPen((200, 200, 200), style=Qt.DashLine),
                                      label="τ_lo", labelOpts={"position": 0.02})
        self.tau_hi = pg.InfiniteLine(angle=90, pen=pg.mkPen((255, 255, 255), style=Qt.DashLine),
                                      label="τ_hi", labelOpts={"position": 0.02})
        self.addItem(self.tau_lo)
        self.addItem(self.tau_hi)
        swatches = [pg.mkBrush(*map(int, c)) for c in CITYSCAPES_COLOURS]
        self.swatches = pg.ScatterPlotItem(x=[-0.0] * n, y=list(range(n)), symbol="s", size=8, brush=swatches,
                                           pen=None)
        self.addItem(self.swatches)
        self.truth = pg.ScatterPlotItem(symbol="t1", size=10, brush=pg.mkBrush(255, 255, 255), pen=None)
        self.addItem(self.truth)
        self.values: dict[str, np.ndarray] = {}

    def show_vectors(self, predictions: list, truth_present: np.ndarray | None) -> None:
        """predictions: up to two (label, Prediction or None); the first is drawn above."""
        for bar in self.bars:
            self.removeItem(bar)
        self.bars, self.values = [], {}
        shown = [(label, p) for label, p in predictions if p is not None and p.has_pivot]
        height = 0.8 / max(len(shown), 1)
        for k, (label, p) in enumerate(shown):
            y = np.arange(len(p.q)) - 0.4 + height * (k + 0.5)
            brushes = [pg.mkBrush(*PIVOT_BRUSH[int(s)]) for s in p.pivot]
            bar = pg.BarGraphItem(x0=0, y=y, height=height * 0.9, width=p.q, brushes=brushes, pen=None)
            self.addItem(bar)
            self.bars.append(bar)
            self.values[label] = p.q
            self.tau_lo.setValue(p.tau_lo)
            self.tau_hi.setValue(p.tau_hi)
        order = " · ".join(f"{'upper' if k == 0 else 'lower'} bar {label}" for k, (label, _) in enumerate(shown)) \
            if len(shown) > 1 else (shown[0][0] if shown else "no model with a pivot")
        self.getAxis("bottom").setLabel(f"{order} · ▲ ground truth")
        if truth_present is not None:
            ys = np.flatnonzero(truth_present)
            self.truth.setData(x=np.full(len(ys), 1.04), y=ys)
        else:
            self.truth.setData(x=[], y=[])
