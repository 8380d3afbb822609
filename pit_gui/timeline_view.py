"""The Timeline view: a run's mechanism on its health frames, step by step (pit_engine/timeline.py).

Pick a health frame, then scrub the health steps (slider, arrow keys, Home / End) or play them:
frame | pseudo-labels | prediction | truth in linked views, the category vector at that step,
and the frame's per-class pseudo-label precision and share over the steps with a cursor at the
step shown. A run that trains in the window grows its timeline as the steps arrive. The panels
are the engine's (pit_engine/timeline_render.py), as are the exports."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget)

from pit_engine.errors import UserError
from pit_engine.methods.pit import PITConfig
from pit_engine.runs import run_config
from pit_engine.timeline import read_timeline
from pit_engine.timeline_render import panels
from pit_gui.panels import CategoryChart, ImagePanel, link
from pit_gui.wheel import ComboBox

PLAY_MS = 250  # a step every quarter second when playing
FOLLOW_MS = 1000  # a training run's new steps are looked for this often
CURVES = (("precision", "pseudo-label precision on this frame (%)", (70, 160, 255)),
          ("share", "pseudo-labelled share of this frame (%)", (60, 200, 120)))
NO_TIMELINE = ("This run has no timeline: it was trained before runs recorded one, or without health steps "
               "(train.health_every), or with train.timeline = false.")


@dataclass
class PivotAt:
    """The category vector of one frame at one step, as the category chart draws it."""
    q: np.ndarray
    pooled: np.ndarray
    pivot: np.ndarray
    tau_lo: float
    tau_hi: float
    pivot_reading: str = ""
    has_pivot: bool = True


class TimelineView(QWidget):
    status = Signal(str)  # one-line news for the status bar (a skipped step file)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.timeline = None
        self.run_dir: Path | None = None
        self.tau = (PITConfig.tau_lo, PITConfig.tau_hi)  # the engine's defaults, until a run says otherwise
        self.info = QLabel("Open a run (File ▸ Open run…) or train one: its health frames' pseudo-labels, pivot "
                           "and predictions at each health step show here.")
        self.info.setWordWrap(True)
        self.frame = ComboBox(toolTip="The health frame to follow through the run")
        self.frame.currentIndexChanged.connect(lambda _: self._frame_changed())
        self.slider = QSlider(Qt.Horizontal, toolTip="The health step shown (← → step, Home / End)")
        self.slider.setRange(0, 0)  # a step per health step, as they are read
        self.slider.valueChanged.connect(lambda _: self.show_step())
        self.prev = QPushButton("◀", clicked=lambda: self.step(-1), toolTip="The step before (←)")
        self.next = QPushButton("▶", clicked=lambda: self.step(1), toolTip="The step after (→)")
        self.play = QPushButton("Play", checkable=True, toggled=self._play, toolTip="Play the steps in a loop")
        self.where = QLabel("")
        self.cls = ComboBox(toolTip="The class whose pseudo-label curves are drawn")
        self.cls.currentIndexChanged.connect(lambda _: self.draw_curves())
        self.export_animation_button = QPushButton("Export animation…", toolTip="This frame's whole timeline as an "
                                                   "animated GIF or WebP")
        self.export_png_button = QPushButton("Export step…", toolTip="The step shown as PNG")
        controls = QHBoxLayout()
        for w in (QLabel("Frame:"), self.frame, self.prev, self.slider, self.next, self.play, self.where):
            controls.addWidget(w, 1 if w is self.slider else 0)
        exports = QHBoxLayout()
        for w in (QLabel("Curves of class:"), self.cls):
            exports.addWidget(w)
        exports.addStretch(1)
        exports.addWidget(self.export_png_button)
        exports.addWidget(self.export_animation_button)

        self.graphics = pg.GraphicsLayoutWidget()
        self.panels = [ImagePanel(t) for t in ("frame", "pseudo-labels", "prediction", "truth")]
        for col, panel in enumerate(self.panels):
            self.graphics.addItem(panel, row=0, col=col)
        link(self.panels)
        self.chart = CategoryChart()
        self.graphics.addItem(self.chart, row=1, col=0, colspan=2)
        self.curve_plots, self.curves, self.cursors = {}, {}, {}
        for col, (key, title, colour) in enumerate(CURVES):
            plot = pg.PlotItem(title=title)
            plot.setYRange(0, 100)
            plot.setLabel("bottom", "iteration")
            plot.showGrid(x=True, y=True, alpha=0.2)
            self.curves[key] = plot.plot([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=4,
                                         symbolBrush=colour, connect="finite")
            self.cursors[key] = pg.InfiniteLine(angle=90, pen=pg.mkPen((255, 255, 255), style=Qt.DashLine))
            plot.addItem(self.cursors[key])
            self.curve_plots[key] = plot
            self.graphics.addItem(plot, row=1, col=2 + col)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addLayout(controls)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(exports)

        for keys, slot in ((Qt.Key_Left, lambda: self.step(-1)), (Qt.Key_Right, lambda: self.step(1)),
                           (Qt.Key_Home, lambda: self.slider.setValue(0)),
                           (Qt.Key_End, lambda: self.slider.setValue(self.slider.maximum()))):
            QShortcut(QKeySequence(keys), self, slot, context=Qt.WidgetWithChildrenShortcut)
        self.play_timer = QTimer(self, interval=PLAY_MS, timeout=lambda: self.step(1, wrap=True))
        self.follow_timer = QTimer(self, interval=FOLLOW_MS, timeout=self.refresh)
        self._curves_of = None  # (steps, frame, class) the curves were drawn for
        self._set_enabled(False)

    # the run ----------------------------------------------------------------------------------------
    def open_run(self, run_dir, live: bool = False) -> None:
        """Show a run's timeline; `live`: it is training here, its steps are looked for as they come."""
        self.run_dir, self.timeline = Path(run_dir), None
        self.follow_timer.stop()
        try:
            method = run_config(run_dir).get("method", {})
            pit = method.get("pit", {}) if isinstance(method, dict) else {}
            self.tau = (float(pit.get("tau_lo", PITConfig.tau_lo)), float(pit.get("tau_hi", PITConfig.tau_hi)))
        except UserError:
            pass  # the curves say what is wrong with the run; the chart keeps the default thresholds
        if live:
            self.follow_timer.start()
        self.refresh()

    def stop_following(self) -> None:
        self.follow_timer.stop()
        self.refresh()

    def refresh(self) -> None:
        """Read the run's timeline, or its steps written since the last look."""
        if self.run_dir is None:
            return
        if self.timeline is None:
            try:
                self.timeline = read_timeline(self.run_dir, self.status.emit)
            except UserError as exc:
                self.info.setText(exc.line())
                return
            self.slider.setRange(0, 0)
            if self.timeline is None:
                self.info.setText(NO_TIMELINE if not self.follow_timer.isActive() else
                                  "Waiting for the run's first health step…")
                self._set_enabled(False)
                return
            self.frame.blockSignals(True)
            self.frame.clear()
            self.frame.addItems([f"{i + 1}: {name}" for i, name in enumerate(self.timeline.names)])
            self.frame.blockSignals(False)
            self.cls.blockSignals(True)
            self.cls.clear()
            self.cls.addItems(self.timeline.classes)
            self.cls.blockSignals(False)
            self._pick_class()
            new = True
        else:
            before = list(self.timeline.iterations)
            self.timeline.refresh()
            new = self.timeline.iterations != before  # steps came, or the run thinned some out
        self._say_info()
        if new:
            at_end = self.slider.value() >= self.slider.maximum()
            if self.slider.maximum() == 0:  # the first steps: start on the class they label most
                self._pick_class()
            self.slider.setMaximum(max(len(self.timeline.steps) - 1, 0))
            self._set_enabled(bool(self.timeline.steps))
            if at_end:  # following the newest step, as a log viewer follows its tail
                self.slider.setValue(self.slider.maximum())
            self.show_step()

    def _say_info(self) -> None:
        t = self.timeline
        what = "pseudo-labels, pivot and predictions" if t.has("pivot") else \
            "pseudo-labels and predictions" if t.has("pseudo") else \
            "predictions (this method trains on no pseudo-labels)"
        text = (f"{self.run_dir.name}: {len(t.steps)} health step(s) of {t.frames} frame(s), their {what}"
                + ("" if t.truth is not None else "; no target labels: no precision, no truth"))
        if t.skipped:
            text += f". Skipped {len(t.skipped)} unreadable step file(s): " + "; ".join(t.skipped[-2:])
        self.info.setText(text)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.slider, self.prev, self.next, self.play, self.frame, self.cls,
                  self.export_animation_button, self.export_png_button):
            w.setEnabled(on)
        if not on:
            self.play.setChecked(False)
            for panel in self.panels:
                panel.show_image(None, "")

    # stepping ----------------------------------------------------------------------------------------
    @property
    def current(self) -> tuple[int, int]:
        """(step, frame) shown."""
        return self.slider.value(), max(self.frame.currentIndex(), 0)

    def step(self, delta: int, wrap: bool = False) -> None:
        if not self.slider.isEnabled():
            return
        n = self.slider.maximum() + 1
        value = self.slider.value() + delta
        self.slider.setValue(value % n if wrap else min(max(value, 0), n - 1))

    def _play(self, on: bool) -> None:
        self.play.setText("Pause" if on else "Play")
        self.play_timer.start() if on else self.play_timer.stop()

    def _frame_changed(self) -> None:
        self._pick_class()
        self.show_step()

    def _pick_class(self) -> None:
        """The class that takes most of this frame's pseudo-labels over the run, to start with."""
        t = self.timeline
        if t is None or not t.steps or not t.has("share"):
            return
        share = np.nan_to_num(t.curve("share", self.current[1])).mean(0)
        self.cls.setCurrentIndex(int(share.argmax()))

    def show_step(self) -> None:
        t = self.timeline
        if t is None or not t.steps:
            return
        step, frame = self.current
        for panel, (title, array) in zip(self.panels, panels(t, step, frame)):
            panel.show_image(array, title)
        s = t.steps[step]
        self.where.setText(f"iteration {t.iterations[step]} ({step + 1} / {len(t.steps)})")
        if "pivot" in s:
            self.chart.show_vectors([(f"iteration {t.iterations[step]}", PivotAt(
                s["q"][frame].astype(np.float32), s["pooled"][frame].astype(np.float32), s["pivot"][frame],
                *self.tau))], t.truth_present(frame) if t.truth is not None else None)
        else:
            self.chart.show_vectors([], None)
        for key in self.cursors:
            self.cursors[key].setValue(t.iterations[step])
        self.draw_curves(redraw_only_cursor=True)

    def draw_curves(self, redraw_only_cursor: bool = False) -> None:
        t = self.timeline
        if t is None or not t.steps:
            return
        key_of = (len(t.steps), self.current[1], self.cls.currentIndex())
        if redraw_only_cursor and self._curves_of == key_of:
            return  # scrubbing moves the cursor only
        self._curves_of = key_of
        c = max(self.cls.currentIndex(), 0)
        for key in self.curves:
            ys = 100 * t.curve(key, self.current[1])[:, c]
            defined = not all(math.isnan(y) for y in ys)
            self.curves[key].setData(t.iterations if defined else [], ys if defined else [])

    def curve_values(self, key: str) -> tuple[list, list]:
        """What a curve draws: (iterations, values in %)."""
        xs, ys = self.curves[key].getData()
        return ([] if xs is None else list(xs)), ([] if ys is None else list(ys))
