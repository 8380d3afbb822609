"""The Train view: the config form, run controls with progress, the log, the live loss plots and,
below them, the adaptation's health curves."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPlainTextEdit, QProgressBar,
                               QPushButton, QScrollArea, QSplitter, QVBoxLayout, QWidget)

from pit_engine.config import Config
from pit_gui.config_form import ConfigForm
from pit_gui.health_plots import HealthPlots
from pit_gui.loss_plots import LossPlots
from pit_gui.wheel import ComboBox
from pit_resources import resource

PRESETS = ("demo.toml", "gta5_to_cityscapes.toml", "synthia_to_cityscapes.toml")


def format_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class FormScroll(QScrollArea):
    """The scrolled form, never narrower than the form's own minimum: the buttons at the end of its
    rows (Check, …) are never cut at the edge ("Chec"). A splitter dragged further collapses it."""

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        if self.widget() is not None:
            hint.setWidth(self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
                          + 2 * self.frameWidth())
        return hint

    def eventFilter(self, watched, event) -> bool:
        if watched is self.widget() and event.type() == QEvent.LayoutRequest:
            self.updateGeometry()  # the form's minimum changed (a wider page, larger text): ask again
        return super().eventFilter(watched, event)


class TrainView(QWidget):
    start_requested = Signal()
    pause_requested = Signal()
    stop_requested = Signal()
    load_config_requested = Signal()
    save_config_requested = Signal()
    make_demo_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.preset = ComboBox()
        self.preset.addItem("Preset…")
        self.preset.addItems(PRESETS)
        self.preset.activated.connect(self._pick_preset)
        self.undo_preset = QPushButton("Undo preset", enabled=False,
                                       toolTip="Put back the values the form had before the last preset replaced them")
        self.undo_preset.clicked.connect(self.undo_load_preset)
        self._loaded = None  # the form as the last preset filled it: anything else is an edit
        self._before_preset = None  # (the form, the preset box's index) before the last preset, for Undo
        load = QPushButton("Load…", toolTip="Load a config TOML")
        load.clicked.connect(self.load_config_requested)
        save = QPushButton("Save…", toolTip="Save the form as a config TOML")
        save.clicked.connect(self.save_config_requested)
        self.make_demo = QPushButton("Make demo data…",
                                     toolTip="Generate the demo domain pair (seconds) and point the form at it")
        self.make_demo.clicked.connect(self.make_demo_requested)
        top = QHBoxLayout()
        for w in (self.preset, self.undo_preset, load, save):
            top.addWidget(w)
        top.addStretch(1)

        self.form = ConfigForm()
        scroll = FormScroll(widgetResizable=True)
        scroll.setWidget(self.form)

        self.run_dir = QLineEdit(placeholderText="run directory (default: runs/<date-time>)")
        self.start = QPushButton("Start")
        self.start.setToolTip("Start training (Ctrl+Return)")
        self.pause = QPushButton("Pause", enabled=False)
        self.pause.setToolTip("Pause / resume (Ctrl+P)")
        self.stop = QPushButton("Stop", enabled=False)
        self.stop.setToolTip("Stop after the current step and save a checkpoint (Ctrl+.)")
        self.start.clicked.connect(self.start_requested)
        self.pause.clicked.connect(self.pause_requested)
        self.stop.clicked.connect(self.stop_requested)
        buttons = QHBoxLayout()
        for w in (self.start, self.pause, self.stop):
            buttons.addWidget(w)
        self.progress = QProgressBar(textVisible=True)
        self.progress.setFormat("%v / %m")
        self.rate = QLabel("idle")
        self.log = QPlainTextEdit(readOnly=True, maximumBlockCount=2000)
        self.log.setPlaceholderText("The trainer's messages appear here.")

        left = QWidget()
        lay = QVBoxLayout(left)
        lay.addLayout(top)
        lay.addWidget(self.make_demo)
        lay.addWidget(scroll, 1)
        lay.addWidget(QLabel("Run directory"))
        lay.addWidget(self.run_dir)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.rate)
        lay.addWidget(self.log)

        self.plots = LossPlots()
        self.health = HealthPlots()
        # the health curves' x follows the loss curves': steps, or minutes since the run's start
        self.health.x_origin = lambda: self.plots.start_time("main") if self.plots.elapsed else None
        self.plots.x_axis.currentIndexChanged.connect(lambda _i: self.health.redraw())
        self.curves = QSplitter(Qt.Vertical)
        self.curves.addWidget(self.plots)
        self.curves.addWidget(self.health)
        self.curves.setSizes([560, 320])
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.curves)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([380, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)
        self.load_preset("demo.toml")
        self._before_preset = None  # nothing to undo at the start
        self.undo_preset.setEnabled(False)

    def load_preset(self, name: str, ask: bool = False) -> bool:
        """Fill the form from a shipped preset. With `ask`, values edited since the last preset
        are only replaced after a question; Undo preset puts them back either way."""
        before = self.form.snapshot(), self.preset.currentIndex()
        if ask and self._loaded is not None and before[0] != self._loaded and not self.confirm(
                "Load the preset?", f"Replace the form's values by those of {name}?\n\n"
                                    "(Undo preset puts the values back.)"):
            self.preset.setCurrentIndex(0)  # the form keeps values that are no preset
            return False
        self.form.set_config(Config.load(resource(name)))
        self.preset.setCurrentText(name)
        self._loaded = self.form.snapshot()
        if self._loaded != before[0]:
            self._before_preset = before
            self.undo_preset.setEnabled(self.start.isEnabled())
        return True

    def undo_load_preset(self) -> None:
        if self._before_preset is None:
            return
        snapshot, index = self._before_preset
        self._before_preset = None
        self.form.restore(snapshot)
        self.preset.setCurrentIndex(index)
        self.undo_preset.setEnabled(False)

    def confirm(self, title: str, text: str) -> bool:
        return QMessageBox.question(self, title, text) == QMessageBox.Yes

    def _pick_preset(self, index: int) -> None:
        if index > 0:
            self.load_preset(self.preset.itemText(index), ask=True)

    def default_run_dir(self) -> Path:
        return Path(self.run_dir.text().strip() or Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S"))

    def set_running(self, running: bool, paused: bool = False) -> None:
        self.start.setEnabled(not running)
        self.form.setEnabled(not running)
        self.run_dir.setEnabled(not running)
        self.preset.setEnabled(not running)
        self.undo_preset.setEnabled(not running and self._before_preset is not None)
        self.pause.setEnabled(running)
        self.stop.setEnabled(running)
        self.pause.setText("Resume" if paused else "Pause")
        if not running or paused:  # a rate and an ETA are only true of a run that is moving
            self.rate.setText("paused" if running else "")

    def show_progress(self, iteration: int, total: int, its_per_s: float | None = None, eta_s: float | None = None):
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(min(iteration, total))
        if its_per_s is not None:
            self.rate.setText(f"{its_per_s:.2f} it/s · ETA {format_eta(eta_s or 0)}")

    def clear_curves(self, name: str = "", total_iterations: int = 0) -> None:
        self.plots.clear(name, total_iterations)
        self.health.clear()

    def add_records(self, records: list[dict]) -> None:
        """metrics.jsonl records (or the same built from events): losses, evaluations, health."""
        self.plots.add_records(records)
        self.health.add_records(records)

    def say(self, text: str) -> None:
        self.log.appendPlainText(text)
