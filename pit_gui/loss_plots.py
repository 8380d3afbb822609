"""Live loss curves: one plot per loss term, the raw values faint and a debiased EMA on top,
the evaluation mIoU, and optionally a second run's curves for comparison."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QMenu, QToolButton, QVBoxLayout, QWidget

from pit_engine.methods import loss_terms
from pit_gui.smoothing import Ema
from pit_gui.wheel import ComboBox, Slider

MIOU = "mIoU"
UNSMOOTHED = (MIOU, "lr")  # evaluations (few points) and the learning rate (a schedule, not noise)
COLUMNS = 3
MAIN_COLOUR = (70, 160, 255)
REFERENCE_COLOURS = ((255, 150, 60), (120, 220, 120), (230, 110, 200), (240, 220, 80), (150, 150, 255),
                     (120, 220, 230))  # compared runs, in the order they were added
REDRAW_MS = 50  # curves are redrawn at most ~20 times a second
X_AXES = ("steps", "elapsed time")  # TensorBoard's "step" and "relative"


def records_to_points(records: list[dict]) -> dict[str, tuple[list[int], list[float], list[float]]]:
    """metrics.jsonl records → {term: (iterations, values, wall-clock times)}; evaluations become
    the mIoU term (in %). A record written before runs logged the time has NaN for it."""
    points: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for record in records:
        it, wall = record.get("iteration"), record.get("time", math.nan)
        if record.get("kind") == "health":  # the health curves' (pit_gui/health_plots.py)
            continue
        if record.get("kind") == "eval":
            miou = record.get("miou") or {}
            values = {MIOU: next(iter(miou.values()), None)}
            values = {k: None if v is None else 100 * v for k, v in values.items()}
        else:
            values = {k: v for k, v in record.items() if k not in ("kind", "iteration", "time")}
        for term, value in values.items():
            if isinstance(value, (int, float)) or value is None:
                xs, ys, ts = points.setdefault(term, ([], [], []))
                xs.append(it)
                ys.append(math.nan if value is None else float(value))
                ts.append(float(wall))
    return points


class Series:
    """One curve's points in growable numpy arrays (appending is amortised O(1); drawing takes
    views, not a conversion of Python lists at every redraw)."""

    def __init__(self, beta: float):
        self._x = np.empty(256)
        self._y = np.empty(256)
        self._t = np.empty(256)  # wall-clock seconds
        self._smooth = np.empty(256)
        self.n = 0
        self.ema = Ema(beta)

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]

    @property
    def smooth(self) -> np.ndarray:
        return self._smooth[: self.n]

    @property
    def t(self) -> np.ndarray:
        return self._t[: self.n]

    def extend(self, xs, ys, ts):
        end = self.n + len(xs)
        if end > len(self._x):
            size = max(end, 2 * len(self._x))
            self._x, self._y, self._t, self._smooth = (np.resize(a, size)
                                                       for a in (self._x, self._y, self._t, self._smooth))
        self._x[self.n:end] = xs
        self._y[self.n:end] = ys
        self._t[self.n:end] = ts
        self._smooth[self.n:end] = self.ema.extend(ys)
        self.n = end

    def resmooth(self, beta: float):
        self.ema = Ema(beta)
        self._smooth[: self.n] = self.ema.extend(self.y)


class LossPlots(QWidget):
    compare_requested = Signal()  # the "compare with run…" button: the window picks the folder
    export_requested = Signal()  # the "Export…" button: the window asks where

    def __init__(self, parent=None):
        super().__init__(parent)
        self.beta = 0.6
        # runs by key: "main" (this run), then one "ref<N>" per compared run, in the order they came
        self.series: dict[str, dict[str, Series]] = {"main": {}}
        self.names = {"main": ""}
        self.started: dict[str, float] = {}  # per run, its first record's wall clock
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[tuple[str, str], tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self.hidden: set[str] = set()
        self.x_max = 0  # the run's length: a fixed x range spares re-laying out every axis per update
        self._dirty: set[tuple[str, str]] = set()

        self.smoothing = Slider(Qt.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(round(self.beta * 100))
        self.smoothing.setToolTip("EMA smoothing of the bold curves (the faint ones are the raw values)")
        self.smoothing.setMaximumWidth(160)
        self.smoothing.valueChanged.connect(self._set_smoothing)
        self.smoothing_label = QLabel()
        self.log_scale = QCheckBox("Log scale")
        self.log_scale.toggled.connect(self._set_log)
        self.x_axis = ComboBox(toolTip="x: the iteration, or the time since the run's first record (minutes)")
        self.x_axis.addItems(X_AXES)
        self.x_axis.currentIndexChanged.connect(self._set_x_axis)
        self.terms_button = QToolButton(text="Terms")
        self.terms_button.setPopupMode(QToolButton.InstantPopup)
        self.terms_menu = QMenu(self)
        self.terms_button.setMenu(self.terms_menu)
        self.compare_button = QToolButton(text="Compare with run…")
        self.compare_button.clicked.connect(self.compare_requested)
        self.clear_compare_button = QToolButton(text="Clear comparison")
        self.clear_compare_button.clicked.connect(self.clear_references)
        self.clear_compare_button.setEnabled(False)
        self.export_button = QToolButton(text="Export…", toolTip="Save the plots as PNG or SVG, or every curve's "
                                                                 "points as CSV")
        self.export_button.clicked.connect(self.export_requested)
        self.key = QLabel()
        self.readout = QLabel(toolTip="The values under the cursor")  # hover a plot

        bar = QHBoxLayout()
        for w in (QLabel("Smoothing"), self.smoothing, self.smoothing_label, self.log_scale, QLabel("x"), self.x_axis,
                  self.terms_button,
                  self.compare_button, self.clear_compare_button, self.export_button):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.readout)
        bar.addWidget(self.key)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground((30, 30, 34))
        self.graphics.scene().sigMouseMoved.connect(self._hover)
        self.empty = QLabel("No curves yet: start a training run, or open a run directory (File ▸ Open run…).")
        self.empty.setAlignment(Qt.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.empty)
        layout.addWidget(self.graphics, 1)
        self.graphics.hide()

        self._timer = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._set_smoothing(self.smoothing.value())

    # data ------------------------------------------------------------------------------------
    def clear(self, name: str = "", total_iterations: int = 0) -> None:
        self.series["main"] = {}
        self.started.pop("main", None)
        self.names["main"] = name
        self.set_x_max(total_iterations)
        self._rebuild()

    def set_x_max(self, total_iterations: int) -> None:
        """Show iterations 0..total (0: follow the data). Redrawing ten plots with axes that
        re-layout at every update stalled the GUI for ~100 ms per update on 2 cores."""
        self.x_max = int(total_iterations or 0)
        for plot in self.plots.values():
            self._apply_x(plot)

    @property
    def elapsed(self) -> bool:
        return self.x_axis.currentIndex() == 1

    def _apply_x(self, plot) -> None:
        plot.getAxis("bottom").setLabel("elapsed (min)" if self.elapsed else "iteration")
        if self.x_max and not self.elapsed:
            plot.enableAutoRange(x=False)
            plot.setXRange(0, self.x_max, padding=0.02)
        else:
            plot.enableAutoRange(x=True)

    def add_records(self, records: list[dict], run: str = "main") -> None:
        if self.x_max and records and max(r.get("iteration", 0) for r in records) > self.x_max:
            self.set_x_max(0)  # more iterations than announced (another config resumed it): follow
        new_terms = False
        times = [r["time"] for r in records if isinstance(r.get("time"), (int, float))]
        if times:  # kept as records come: a redraw never scans every point for it
            self.started[run] = min(self.started.get(run, math.inf), min(times))
        for term, (xs, ys, ts) in records_to_points(records).items():
            series = self.series[run].get(term)
            if series is None:  # a term new to this run: lay out again (a cleared run has no plots shown)
                series = self.series[run][term] = Series(self.beta)
                new_terms = True
            series.extend(xs, ys, ts)
            self._dirty.add((run, term))
        if new_terms:
            self._rebuild()
        elif not self._timer.isActive():
            # redraw at most ~20 times a second, and less often as curves grow, so that the cost
            # of redrawing (linear in the points) per second stays bounded over a long run
            longest = max((series.n for run in self.series.values() for series in run.values()), default=0)
            self._timer.start(min(1000, max(REDRAW_MS, longest // 10)))

    def add_reference(self, records: list[dict], name: str) -> str:
        """Another run's curves over this one's, dashed in a colour of its own; any number of them.
        The x range grows to the longest run."""
        run = f"ref{len(self.series)}"  # ref1, ref2, ...: the main run is the first series
        self.series[run] = {}
        self.names[run] = name
        self.clear_compare_button.setEnabled(True)
        if records:  # a run longer than this one's announced length turns the x range to follow the data
            self.add_records(records, run)
        self._rebuild()
        return run

    def clear_references(self) -> None:
        for run in [r for r in self.series if r != "main"]:
            for term in self.series[run]:
                curves = self.curves.pop((run, term), None)
                for curve in curves or ():
                    curve.getViewBox() and curve.getViewBox().removeItem(curve)
            del self.series[run], self.names[run]
            self.started.pop(run, None)
        self.clear_compare_button.setEnabled(False)
        self._rebuild()

    def colour(self, run: str):
        return MAIN_COLOUR if run == "main" else REFERENCE_COLOURS[(int(run[3:]) - 1) % len(REFERENCE_COLOURS)]

    def start_time(self, run: str) -> float:
        """A run's first logged wall-clock time: elapsed time counts from there (NaN: none logged)."""
        return self.started.get(run, math.nan)

    def x_values(self, run: str, series: Series) -> np.ndarray:
        """What the x axis shows for a curve: iterations, or minutes since the run's first record."""
        return (series.t - self.start_time(run)) / 60 if self.elapsed else series.x

    def terms(self) -> list[str]:
        found = list(dict.fromkeys(term for run in self.series.values() for term in run))
        order = {t: i for i, t in enumerate((*loss_terms(), MIOU, "lr"))}
        return sorted(found, key=lambda t: (order.get(t, 50), t))

    def points(self, term: str, run: str = "main") -> tuple[list[int], list[float]]:
        series = self.series.get(run, {}).get(term)
        return (series.x.astype(int).tolist(), series.y.tolist()) if series else ([], [])

    # display ---------------------------------------------------------------------------------
    def _set_smoothing(self, value: int) -> None:
        self.beta = value / 100
        self.smoothing_label.setText(f"{self.beta:.2f}")
        for run in self.series.values():
            for series in run.values():
                series.resmooth(self.beta)
        self._dirty |= set(self.curves)
        self._timer.start()

    def _set_x_axis(self, _index: int) -> None:
        for plot in self.plots.values():
            self._apply_x(plot)
        self._dirty |= {(run, term) for run in self.series for term in self.series[run]}
        self._redraw()

    def _set_log(self, on: bool) -> None:
        for term, plot in self.plots.items():
            plot.setLogMode(False, on)
            self._hold_flat_axis(term)

    def set_term_visible(self, term: str, visible: bool) -> None:
        (self.hidden.discard if visible else self.hidden.add)(term)
        self._rebuild()

    def _rebuild(self) -> None:
        """Lay the plots out again (terms appeared, were hidden, or a run changed)."""
        self.graphics.ci.clear()
        self.terms_menu.clear()
        row = col = 0
        first = None
        for term in self.terms():
            action = QAction(term, self.terms_menu, checkable=True, checked=term not in self.hidden)
            action.toggled.connect(lambda on, t=term: self.set_term_visible(t, on))
            self.terms_menu.addAction(action)
            if term in self.hidden:
                continue
            plot = self.plots.get(term) or self._new_plot(term)
            self.graphics.ci.addItem(plot, row, col)
            first = first or plot
            plot.setXLink(first if plot is not first else None)  # zoom one, all follow
            col += 1
            if col == COLUMNS:
                row, col = row + 1, 0
        have = bool(self.terms())
        self.graphics.setVisible(have)
        self.empty.setVisible(not have)
        key = f"<span style='color:rgb{MAIN_COLOUR}'>━ {self.names['main'] or 'this run'}</span>"
        for run in self.series:
            if run != "main":
                key += f"&nbsp;&nbsp;<span style='color:rgb{self.colour(run)}'>╍ {self.names[run]}</span>"
        self.key.setText(key)
        for (run, term), (raw, smooth) in self.curves.items():
            if term not in self.series.get(run, {}):
                raw.setData([], [])
                smooth.setData([], [])
        self._dirty |= {(run, term) for run in self.series for term in self.series[run]}
        self._redraw()

    def _new_plot(self, term: str) -> pg.PlotItem:
        plot = pg.PlotItem(title=term)  # no grid: its translucent lines cost more to paint than the curves
        plot.setLogMode(False, self.log_scale.isChecked())
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
        self._apply_x(plot)
        self.plots[term] = plot
        return plot

    def _curves(self, run: str, term: str):
        if (run, term) not in self.curves:
            plot = self.plots.get(term) or self._new_plot(term)
            colour = self.colour(run)
            style = Qt.SolidLine if run == "main" else Qt.DashLine
            symbol = "o" if term == MIOU else None
            faint = term not in UNSMOOTHED  # raw values under their smoothed curve
            raw = plot.plot(pen=pg.mkPen((*colour, 70) if faint else colour, width=1 if faint else 2, style=style),
                            symbol=symbol, symbolSize=5, symbolBrush=colour)
            smooth = plot.plot(pen=pg.mkPen(colour, width=2, style=style))
            self.curves[(run, term)] = (raw, smooth)
        return self.curves[(run, term)]

    def _redraw(self) -> None:
        for run, term in self._dirty:
            series = self.series.get(run, {}).get(term)  # a compared run cleared meanwhile: nothing
            if series is None:
                continue
            raw, smooth = self._curves(run, term)
            x = self.x_values(run, series)
            if term != MIOU:  # a lone point (a term's first log) is a dot: a line needs two
                raw.setSymbol("o" if series.n == 1 else None)
            raw.setData(x, series.y, connect="finite")
            if term in UNSMOOTHED:  # drawn as they are: the raw curve in full colour
                smooth.setData([], [])
            else:
                smooth.setData(x, series.smooth, connect="finite")
            self._hold_flat_axis(term)
        self._dirty.clear()

    def _hold_flat_axis(self, term: str) -> None:
        """A flat curve's y axis spans at least 0.1 % of its values, not the float noise on them,
        whose ticks would read 0.11641079187393186, 0.11641079187393258."""
        finite = [series.y[np.isfinite(series.y)] for run in self.series.values()
                  if (series := run.get(term)) is not None]
        scale = max((float(np.abs(y).max()) for y in finite if y.size), default=0.0)
        span = 4e-4 if self.log_scale.isChecked() else max(1e-3 * scale, 1e-12)  # log mode: log10 units (0.1 %)
        self.plots[term].getViewBox().setLimits(minYRange=span)

    # reading and saving ----------------------------------------------------------------------------
    def value_at(self, term: str, x: float) -> str:
        """The logged values of a term nearest an x (an iteration, or minutes elapsed), per run:
        what hovering shows."""
        parts = []
        for run in self.series:
            colour, series = self.colour(run), self.series[run].get(term)
            if series is None or not series.n:
                continue
            xs = self.x_values(run, series)
            if not np.isfinite(xs).any():
                continue  # elapsed time of a run logged without times
            i = int(np.nanargmin(np.abs(xs - x)))
            smooth = "" if term in UNSMOOTHED else f" (smoothed {series.smooth[i]:.4g})"
            name = self.names[run] or "this run"
            when = f"at iteration {int(series.x[i])}" + (f", {xs[i]:.1f} min" if self.elapsed else "")
            parts.append(f"<span style='color:rgb{colour}'>{name}</span>: {term} {series.y[i]:.4g}{smooth} {when}")
        return " · ".join(parts)

    def _hover(self, pos) -> None:
        for term, plot in self.plots.items():
            if plot.scene() is not None and plot.vb.sceneBoundingRect().contains(pos):
                self.readout.setText(self.value_at(term, plot.vb.mapSceneToView(pos).x()))
                return
        self.readout.setText("")

    def export(self, path) -> None:
        """The plots as they are on screen (.png, .svg), or every curve's points (.csv: run, term,
        iteration, wall-clock time, value, smoothed)."""
        import csv

        from pyqtgraph import exporters

        from pit_engine.data.io import atomic_write
        from pit_engine.errors import UserError

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            def write(tmp):
                with open(tmp, "w", newline="") as f:
                    out = csv.writer(f)
                    out.writerow(["run", "term", "iteration", "time", "value", "smoothed"])
                    for run, series_by_term in self.series.items():
                        for term, series in series_by_term.items():
                            for x, t, y, sm in zip(series.x, series.t, series.y, series.smooth):
                                out.writerow([self.names[run] or run, term, int(x), "" if t != t else t, y,
                                              "" if term in UNSMOOTHED else sm])
            atomic_write(path, write)
        elif suffix == ".png":
            exporter = exporters.ImageExporter(self.graphics.scene())
            atomic_write(path, lambda tmp: exporter.export(str(tmp)))
        elif suffix == ".svg":  # Qt's own SVG painter: pyqtgraph's SVG exporter cannot parse Qt 6.11's paths
            atomic_write(path, self._paint_svg)
        else:
            raise UserError(f"cannot save plots as '{suffix or path.name}'", path, "use .png, .svg or .csv")

    def _paint_svg(self, path) -> None:
        from PySide6.QtGui import QPainter
        from PySide6.QtSvg import QSvgGenerator

        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(self.graphics.size())
        generator.setViewBox(self.graphics.rect())
        generator.setTitle("PIT Studio curves")
        painter = QPainter(generator)
        try:
            self.graphics.render(painter)
        finally:
            painter.end()
