"""The adaptation's health curves (pit_engine/health.py): pseudo-label precision, recall and share,
the pivot's precision and recall (of q and of the refreshed vector), the network's IoU and the
pivot's present/absent counts on fixed target train frames, per class or as the mean over classes.
A drifting self-training run shows here first: a class's pseudo-label share and IoU fall while the
losses look fine."""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from pit_engine.classes import CITYSCAPES_CLASSES
from pit_gui.wheel import ComboBox

MEAN = "mean over classes"
# (record key, legend, colour); every value is shown in % (counts as a share of the frames)
SERIES = (
    ("iou", "IoU", (255, 255, 255)),
    ("pl_precision", "pseudo-label precision", (70, 160, 255)),
    ("pl_recall", "pseudo-label recall", (120, 220, 255)),
    ("pl_share", "pseudo-labelled share", (60, 200, 120)),
    ("q_precision", "pivot q precision", (255, 150, 60)),
    ("q_recall", "pivot q recall", (255, 210, 90)),
    ("refreshed_precision", "refreshed pivot precision", (200, 90, 200)),
    ("refreshed_recall", "refreshed pivot recall", (240, 150, 240)),
    ("q_present", "q: frames called present", (150, 150, 150)),
    ("q_absent", "q: frames called absent", (90, 90, 90)),
)


def health_value(record: dict, key: str, cls: str) -> float:
    """One curve's value in % for a health record, NaN where it is undefined or absent."""
    if cls == MEAN:
        value = record.get("pl_coverage") if key == "pl_share" else record.get(f"mean_{key}")
    else:
        value = (record.get(key) or {}).get(cls)
    if value is None:
        return math.nan
    if key in ("q_present", "q_absent"):
        value = value / max(record.get("frames", 1), 1)
    return 100.0 * value


class HealthPlots(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.records: list[dict] = []
        # x: iterations (None), or minutes since the wall clock this returns (the loss curves' choice)
        self.x_origin = lambda: None
        self.cls = ComboBox(toolTip="One class's curves, or their mean over the classes where they are defined")
        self.cls.addItems([MEAN, *CITYSCAPES_CLASSES])
        self.cls.currentTextChanged.connect(lambda _: self.redraw())
        self.info = QLabel()
        self.info.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Health:"))
        top.addWidget(self.cls)
        top.addWidget(self.info, 1)
        # the legend in a row of its own above the plot: it never covers a curve
        self.graphics = pg.GraphicsLayoutWidget()
        self.legend = pg.LegendItem(colCount=5, labelTextSize="8pt")
        self.graphics.addItem(self.legend, row=0, col=0)
        self.plot = self.graphics.addPlot(row=1, col=0)
        self.plot.setLabel("bottom", "iteration")
        self.plot.setLabel("left", "%")
        self.plot.setYRange(0, 100)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.curves = {key: self.plot.plot([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=4,
                                           symbolBrush=colour, connect="finite")
                       for key, name, colour in SERIES}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.graphics, 1)
        self.clear()

    def clear(self) -> None:
        self.records = []
        self.redraw()

    def add_records(self, records: list[dict]) -> None:
        """Records of metrics.jsonl or events; only the health ones are kept."""
        new = [r for r in records if r.get("kind") == "health"]
        if new:
            self.records += new
            self.redraw()

    def series(self, key: str, cls: str | None = None) -> tuple[list[float], list[float]]:
        cls = cls or self.cls.currentText()
        origin = self.x_origin()
        if origin is None:
            xs = [r["iteration"] for r in self.records]
        else:  # a record written before runs logged the time has none: NaN, not drawn
            xs = [(r.get("time", math.nan) - origin) / 60 for r in self.records]
        return xs, [health_value(r, key, cls) for r in self.records]

    def redraw(self) -> None:
        self.plot.setLabel("bottom", "iteration" if self.x_origin() is None else "elapsed (min)")
        self.legend.clear()  # only the curves that have values
        for key, name, _ in SERIES:
            xs, ys = self.series(key)
            defined = any(not math.isnan(y) for y in ys)
            self.curves[key].setData(xs if defined else [], ys if defined else [])
            self.curves[key].setVisible(defined)
            if defined:
                self.legend.addItem(self.curves[key], name)
        if not self.records:
            self.info.setText("No health records yet: a run measures them every train.health_every iterations "
                              "(the demo: 50) on fixed target train frames.")
        else:
            last = self.records[-1]
            labelled = "iou" in last
            self.info.setText(f"{last.get('frames', '?')} fixed target train frames, last at iteration "
                              f"{last['iteration']}" + ("" if labelled else
                                                        "; no target labels: pseudo-label share and the pivot's "
                                                        "present/absent counts only"))
