"""The Inspect view: a frame browser, source-only | adapted | ground truth in linked panels, the
category vector, one class's CAM or expanded region, and the per-class IoU of the frame.

Predictions come from the InferenceWorker. What the view shows (the frames, the open models, their
results and scores, the pair in panels A and B) is held in an InspectState, and the view redraws
from its signals; it draws with the engine's overlay functions only."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QListWidget, QListWidgetItem, QProgressBar, QPushButton, QScrollArea, QSizePolicy,
                               QSplitter, QTableWidget, QVBoxLayout, QWidget)

from pit_engine import overlay
from pit_engine.overlay import DIFFER_COLOUR, comparison_image, outcome_panel, overlay_image
from pit_engine.classes import CITYSCAPES_CLASSES, CITYSCAPES_COLOURS, NUM_CLASSES
from pit_engine.compare import OUTCOME_COLOURS
from pit_gui.panels import CategoryChart, ImagePanel
from pit_gui.compared_panels import LAYOUTS, ComparedPanels, host
from pit_gui.inspect_state import InspectState
from pit_gui.model_list import ModelList
from pit_gui.tables import fill_table
from pit_gui.wheel import ComboBox, Slider
from pit_gui.what_if import WhatIf
from pit_gui.workers import FrameResult

FILTERS = ("all frames", "ground truth holds the class", "a model predicts the class",
           "a pivot is wrong about the class")
SORTS = ("name", "B's mIoU, worst first", "B's mIoU, best first", "gain of B over A, worst first",
         "gain of B over A, best first")
THIRD = ("ground truth", "who is right / difference")
REGION_MODES = ("cyan seeds + grown region", "CAM heat map", "every class's pseudo-labels + seeds")
PATH_ROLE = Qt.UserRole


def qimage(array: np.ndarray) -> QImage:
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    return QImage(array.data, w, h, 3 * w, QImage.Format_RGB888).copy()  # copy: own the pixels


def _swatch(colour, text: str) -> str:
    """A coloured square and its meaning, for a panel title."""
    r, g, b = (int(v) for v in colour)
    return f"<span style='color:rgb({r},{g},{b})'>■</span> {text}"


def _pct(v) -> str:
    return "–" if v is None or v != v else f"{100 * v:.1f}"


class InspectView(QWidget):
    status = Signal(str)
    export_view_requested = Signal()
    export_folder_requested = Signal()
    open_folder_requested = Signal()
    open_checkpoint_requested = Signal(str)  # "a" or "b": the panel the new model fills
    frame_shown = Signal(str)  # the path, once its panels are drawn

    def __init__(self, parent=None):
        super().__init__(parent)
        self.inference = None  # the window's InferenceWorker
        self.state = InspectState(self)  # the frames, the models, their results: the view draws it
        self.items: dict[Path, QListWidgetItem] = {}  # the frame list's items, by path
        self.models = ModelList(self.state)  # every open model; two of them fill panels A and B
        self.models.add_requested.connect(lambda: self.open_checkpoint_requested.emit("b"))
        for signal, slot in ((self.state.models_changed, self._models_changed),
                             (self.state.pair_changed, self._pair_changed),
                             (self.state.frames_changed, self._frames_changed),
                             (self.state.current_changed, self._current_changed),
                             (self.state.frame_scored, self._frame_scored),
                             (self.state.frame_unreadable, self._frame_unreadable)):
            signal.connect(slot)

        # frame browser
        self.sort = ComboBox()
        self.sort.addItems(SORTS)
        self.sort.currentIndexChanged.connect(self._sort)
        self.list = QListWidget()
        self.list.setIconSize(QSize(96, 48))
        self.list.setSpacing(2)
        # long names differ at the end ("democity_000000_000300"): cut in the middle, the full name in the tooltip
        self.list.setTextElideMode(Qt.ElideMiddle)
        self.list.currentItemChanged.connect(self._item_changed)
        open_folder = QPushButton("Open frames…")
        open_folder.clicked.connect(self.open_folder_requested)
        browser = QWidget()
        b = QVBoxLayout(browser)
        b.setContentsMargins(0, 0, 0, 0)
        b.addWidget(open_folder)
        b.addWidget(QLabel("Sort by"))
        b.addWidget(self.sort)
        self.filter = ComboBox(toolTip="Show only the frames scored so far that match; unscored frames hide")
        self.filter.addItems(FILTERS)
        self.filter_class = ComboBox()
        self.filter_class.addItems(CITYSCAPES_CLASSES)
        for combo in (self.filter, self.filter_class):
            combo.currentIndexChanged.connect(self._apply_filter)
        b.addWidget(QLabel("Show"))
        b.addWidget(self.filter)
        b.addWidget(self.filter_class)
        b.addWidget(self.list, 1)
        self.progress = QProgressBar(textVisible=True, format="scored %v of %m frames", visible=False,
                                     toolTip="Every open model scores every frame in the background; sorting "
                                             "and filtering use the frames scored so far")
        b.addWidget(self.progress)

        # panels: each in its own widget, the three compared views in a row of equal stretch (linked
        # views with a locked aspect show the same region only when they have the same shape)
        self.panel_a, self.panel_b, self.panel_c = ImagePanel("source-only"), ImagePanel("adapted"), ImagePanel("")
        self.panel_regions = ImagePanel("")
        self.chart = CategoryChart()
        lower = QWidget()
        self.pivot_row = lower  # the pivot's panels: shown only for models that have a pivot
        box = QHBoxLayout(lower)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        # the regions panel keeps a view of its own: pyqtgraph links views at one scale, so linking
        # it shrank the frames the others draw. It stays fitted too, until zoomed. With A and B above
        # the third panel it fills the fourth cell beside it, else it sits under the panels.
        regions_host = self.regions_host = host(self.panel_regions)
        box.addWidget(regions_host, 1)
        box.addWidget(host(self.chart), 2)
        self.compared = ComparedPanels([self.panel_a, self.panel_b, self.panel_c], regions_host, box)
        self.compared.focus_changed.connect(lambda _which: self._show_pivot_row())
        self._pivots_shown = False
        self._regions_fitted = True
        self.panel_regions.vb.sigResized.connect(self._refit_regions)
        self.panel_regions.vb.sigRangeChangedManually.connect(lambda *_: setattr(self, "_regions_fitted", False))
        # under the panels: what A, B and the ground truth say at the cursor
        self.readout = QLabel(" ", toolTip="Class and confidence under the cursor")
        self.readout.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)  # long text never resizes the panels
        self.compared.hovered.connect(self._show_readout)
        regions_host.scene().sigMouseMoved.connect(lambda pos: self.compared.hover(self.panel_regions, pos))

        # controls
        models = QGroupBox("Models (pick which two fill panels A and B)")
        fm = QVBoxLayout(models)
        fm.addWidget(self.models)
        self.follow_training = QCheckBox("Follow the training run", checked=True,
                                         toolTip="Each checkpoint the Train view saves replaces that run's model "
                                                 "and is shown in panel B")
        fm.addWidget(self.follow_training)

        display = QGroupBox("Display")
        fd = QFormLayout(display)
        self.opacity = Slider(Qt.Horizontal, minimum=0, maximum=100, value=50)
        self.opacity.valueChanged.connect(self.render_panels)
        self.boundaries = QCheckBox("Class boundaries", checked=True)
        self.boundaries.toggled.connect(self.render_panels)
        self.third = ComboBox()
        self.third.addItems(THIRD)
        self.third.currentIndexChanged.connect(self.render_panels)
        fd.addRow("Opacity", self.opacity)
        fd.addRow(self.boundaries)
        fd.addRow("Third panel", self.third)
        self.layout_choice = ComboBox(toolTip="Auto: two rows for frames twice as wide as tall or wider "
                                               "(Cityscapes' 2:1), so that each is drawn twice as large")
        self.layout_choice.addItems(LAYOUTS)
        self.layout_choice.currentIndexChanged.connect(self.compared.set_mode)
        fd.addRow("Panels", self.layout_choice)

        legend = QGroupBox("Classes (untick to hide)")
        fl = QVBoxLayout(legend)
        self.legend = QListWidget()
        for c, name in enumerate(CITYSCAPES_CLASSES):
            item = QListWidgetItem(name)
            pix = QPixmap(12, 12)
            pix.fill(QColor(*map(int, CITYSCAPES_COLOURS[c])))
            item.setIcon(QIcon(pix))
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked)
            self.legend.addItem(item)
        self.legend.itemChanged.connect(lambda _item: self.render_panels())
        row = QHBoxLayout()
        for text, state in (("All", Qt.Checked), ("None", Qt.Unchecked)):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, s=state: self.set_all_visible(s == Qt.Checked))
            row.addWidget(button)
        fl.addWidget(self.legend)
        fl.addLayout(row)

        regions = self.regions_box = QGroupBox("Expanded regions")
        fr = QFormLayout(regions)
        self.region_class = ComboBox()
        self.region_class.addItems(CITYSCAPES_CLASSES)
        self.region_class.currentIndexChanged.connect(self.render_panels)
        self.region_mode = ComboBox()
        self.region_mode.addItems(REGION_MODES)
        self.region_mode.currentIndexChanged.connect(self.render_panels)
        self.region_model = ComboBox()
        self.region_model.addItems(["panel B's model", "panel A's model"])
        self.region_model.currentIndexChanged.connect(self.render_panels)
        fr.addRow("Class", self.region_class)
        fr.addRow("Show", self.region_mode)
        fr.addRow("Model", self.region_model)
        self.what_if = WhatIf(self)  # the pivot as a switch: the model's pivot edited, its targets recomputed
        self.what_if.changed.connect(self.render)
        fr.addRow(self.what_if.widget)
        fr.addRow(self.what_if.summary)

        self.table = QTableWidget(0, 2)  # class, Δ (B − A), one column per model
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setMinimumHeight(220)

        export_view = QPushButton("Export view…")
        export_view.setToolTip("Save what the panels show at the frame's native resolution (Ctrl+E)")
        export_view.clicked.connect(self.export_view_requested)
        export_folder = QPushButton("Export folder…")
        export_folder.setToolTip("Export every frame's overlays through the engine, as `pit export` (Ctrl+Shift+E)")
        export_folder.clicked.connect(self.export_folder_requested)

        controls = QWidget()
        fc = QVBoxLayout(controls)
        for w in (models, display, legend, regions, QLabel("IoU on this frame (%)"), self.table):
            fc.addWidget(w)
        fc.addStretch(1)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(controls)
        scroll.setMinimumWidth(300)
        # the export buttons under the scrolled controls, always in sight however long those grow
        side = QWidget()
        fs = QVBoxLayout(side)
        fs.setContentsMargins(0, 0, 0, 0)
        fs.addWidget(scroll, 1)
        ex = QHBoxLayout()
        ex.addWidget(export_view)
        ex.addWidget(export_folder)
        fs.addLayout(ex)

        framed = QWidget()
        fv = QVBoxLayout(framed)
        fv.setContentsMargins(0, 0, 0, 0)
        fv.addWidget(self.compared, 1)
        fv.addWidget(self.readout)
        centre = QSplitter(Qt.Vertical)
        centre.addWidget(framed)
        centre.addWidget(lower)
        centre.setStretchFactor(0, 3)  # the compared panels over the pivot's panels, neither collapsed
        centre.setStretchFactor(1, 2)
        centre.setSizes([540, 360])
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(browser)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([270, 850, 330])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)

    # models and frames -------------------------------------------------------------------------
    def set_models(self, checkpoint_a, checkpoint_b) -> None:
        """Replace every open model by these two (A and B)."""
        a = 0 if checkpoint_a else -1
        self.state.set_checkpoints([checkpoint_a, checkpoint_b], a, a + 1 if checkpoint_b else -1)

    # the state's, read where the view's users read them
    frames = property(lambda self: self.state.frames)
    current = property(lambda self: self.state.current)
    cache = property(lambda self: self.state.cache)
    scores = property(lambda self: self.state.scores)
    facts = property(lambda self: self.state.facts)
    unreadable = property(lambda self: self.state.unreadable)
    generation = property(lambda self: self.state.generation)
    pair = property(lambda self: self.state.pair)

    def _models_changed(self, checkpoints) -> None:
        self.state.generation = self.inference.set_models(checkpoints)
        self.inference.set_pair(*self.pair)
        self._show_progress()
        self.status.emit("loading models…")

    @Slot(int, list)
    def on_models_loaded(self, generation: int, names: list) -> None:
        if generation != self.generation:
            return
        # a checkpoint that failed to load (the window says why) leaves the list, and the others load anew
        if not self.state.set_names(names):
            return
        self._refresh_items()
        if self.current is not None:
            self.inference.request(self.state.readable([self.current]), urgent=True)
        self.inference.request(self.state.readable(self.frames))

    def _pair_changed(self, a: int, b: int) -> None:
        """Other models in panels A and B: nothing is predicted again, only drawn and sorted."""
        self.inference.set_pair(a, b)
        self._refresh_items()
        if self.sort.currentIndex():
            self._sort()
        self.render()

    def set_frames(self, paths: list[Path]) -> None:
        self.inference.forget()
        self.state.set_frames(paths)

    def _frames_changed(self, frames: list[Path]) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        self.items = {}
        for path in frames:
            item = QListWidgetItem(self._item_text(path))
            item.setData(PATH_ROLE, str(path))
            item.setToolTip(f"{path.name}\n{path.parent}")
            item.setSizeHint(QSize(260, 54))
            self.list.addItem(item)
            self.items[path] = item
        self.list.blockSignals(False)
        self._sort()
        self.inference.request(frames)
        self._show_progress()
        if frames:
            self.list.setCurrentRow(0)
        self.status.emit(f"{len(frames)} frame(s)")

    @Slot(object)
    def on_ready(self, result: FrameResult) -> None:
        self.state.add_result(result)  # not for replaced models, nor a frame of a folder no longer open

    def _frame_scored(self, result: FrameResult) -> None:
        item = self._item(result.path)
        if item is not None:
            item.setIcon(QIcon(QPixmap.fromImage(qimage(result.thumbnail))))
            item.setText(self._item_text(result.path))
        if item is not None and self.filter.currentIndex():
            item.setHidden(not self._matches(result.path))
        if result.path == self.current:
            self.render()
        self._show_progress()
        if len(self.scores) == len(self.frames):
            self.status.emit(f"{len(self.frames)} frame(s) predicted")
            if self.sort.currentIndex():
                self._sort()

    def mark_unreadable(self, path: Path, line: str) -> bool:
        """A frame the worker could not read: marked in the list, shown as unreadable when selected,
        never asked for again (new models would read the same bytes). False when it was known
        already, or is no frame of this folder: nothing new to tell."""
        return self.state.mark_unreadable(path, line)

    def _frame_unreadable(self, path: Path, line: str) -> None:
        item = self._item(path)
        item.setText(self._item_text(path))
        item.setToolTip(f"{path.name}\n{line}")
        item.setForeground(QColor(230, 80, 70))
        self._show_progress()
        if path == self.current:
            self.show_unreadable()

    def show_unreadable(self) -> None:
        """The selected frame cannot be read: empty panels that say so, not the last frame drawn."""
        path = self.current
        line = self.unreadable[path]
        for panel, which in zip((self.panel_a, self.panel_b, self.panel_c), ("A: ", "B: ", "")):
            panel.show_image(None, f"{which}{path.name} is unreadable")
        self.panel_regions.show_image(None, "")
        self._pivots_shown = False
        self._show_pivot_row()
        self.regions_box.setVisible(False)
        self.readout.setText(" ")
        fill_table(self.table, [(["unreadable frame", *[""] * (self.table.columnCount() - 1)], None)],
                   delta_column=-1)
        self.status.emit(line)

    def settled(self) -> int:
        """How many frames of the folder are predicted or found unreadable."""
        return self.state.settled()

    def _show_progress(self) -> None:
        """The background scoring's progress, shown while frames are left."""
        total = len(self.frames)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(self.settled(), total))
        self.progress.setVisible(bool(self.state.checkpoints) and self.settled() < total)

    def _item(self, path: Path) -> QListWidgetItem | None:
        return self.items.get(Path(path))

    def _item_text(self, path: Path) -> str:
        name = path.name.replace("_leftImg8bit", "")
        if path in self.unreadable:
            return f"{name}\nunreadable"
        a, b = self.state.pair_scores(path)
        if a is not None and b is not None:
            return f"{name}\n{_pct(a)} → {_pct(b)} ({100 * (b - a):+.1f})"
        if b is not None or a is not None:
            return f"{name}\nmIoU {_pct(b if b is not None else a)}"
        return name

    def _refresh_items(self) -> None:
        for path, item in self.items.items():
            item.setText(self._item_text(path))

    def _sort(self) -> None:
        mode = self.sort.currentIndex()

        def key(path: Path):
            a, b = self.state.pair_scores(path)
            value = b if mode in (1, 2) else (b - a if a is not None and b is not None else None)
            if mode == 0:
                return (0, 0.0, str(path))
            if value is None or value != value:
                return (1, 0.0, str(path))  # unscored frames last
            return (0, value if mode in (1, 3) else -value, str(path))

        order = sorted(self.frames, key=key)
        current = self.current
        self.list.blockSignals(True)
        while self.list.count():
            self.list.takeItem(self.list.count() - 1)
        for path in order:
            self.list.addItem(self.items[path])
        self.list.blockSignals(False)
        if current is not None:
            self.list.setCurrentItem(self._item(current))
        self._apply_filter()

    def _matches(self, path: Path) -> bool:
        mode, c = self.filter.currentIndex(), self.filter_class.currentIndex()
        facts = self.facts.get(path)
        if mode == 0:
            return True
        if facts is None:
            return False  # not scored yet
        key = ("truth", "predicted", "pivot_wrong")[mode - 1]
        return c in facts[key]

    def _apply_filter(self) -> None:
        for path, item in self.items.items():
            item.setHidden(not self._matches(path))

    def shown_frames(self) -> list[Path]:
        return [Path(self.list.item(i).data(PATH_ROLE)) for i in range(self.list.count())
                if not self.list.item(i).isHidden()]

    def _item_changed(self, item, _previous) -> None:
        if item is not None:
            self.select(Path(item.data(PATH_ROLE)))

    def select(self, path: Path) -> None:
        item = self._item(Path(path))
        if item is not None and self.list.currentItem() is not item:
            self.list.setCurrentItem(item)  # comes back here through _item_changed
            return
        self.state.select(path)

    def _current_changed(self, path: Path) -> None:
        if path in self.unreadable:
            self.show_unreadable()
        elif path in self.cache:
            self.render()
        else:
            self.status.emit(f"predicting {path.name}…")
            self.inference.request([path], urgent=True)

    def step(self, delta: int) -> None:
        """Next (+1) or previous (-1) frame in the list's order, among those the filter shows."""
        row = self.list.currentRow() + delta
        while 0 <= row < self.list.count():
            if not self.list.item(row).isHidden():
                self.list.setCurrentRow(row)
                return
            row += delta

    # drawing -----------------------------------------------------------------------------------
    def visible(self) -> np.ndarray:
        return np.array([self.legend.item(c).checkState() == Qt.Checked for c in range(NUM_CLASSES)])

    def set_all_visible(self, on: bool) -> None:
        self.legend.blockSignals(True)
        for c in range(NUM_CLASSES):
            self.legend.item(c).setCheckState(Qt.Checked if on else Qt.Unchecked)
        self.legend.blockSignals(False)
        self.render_panels()

    @property
    def alpha(self) -> float:
        return self.opacity.value() / 100

    # fitting and the readout -----------------------------------------------------------------------
    def fit(self) -> None:
        """Every panel's frame fitted to its panel (Ctrl+0); each stays fitted until the next zoom."""
        self.compared.fit()
        self._regions_fitted = True
        self._refit_regions()

    def _refit_regions(self, *_) -> None:
        if self._regions_fitted and self.panel_regions.array is not None:
            self.panel_regions.vb.autoRange(padding=0)

    def _show_pivot_row(self) -> None:
        """The pivot's panels exist only for methods that have a pivot, and give way to a focused panel."""
        shown = self._pivots_shown and self.compared.focused is None
        self.pivot_row.setVisible(shown)
        self.regions_host.setVisible(shown)  # under the panels, or in the fourth cell of two rows

    def readout_at(self, x: int, y: int) -> str:
        """What each model and the ground truth say about the frame's pixel (x, y)."""
        r = self.result()
        if r is None or not (0 <= y < r.image.shape[0] and 0 <= x < r.image.shape[1]):
            return ""
        parts = [f"({x}, {y})"]
        for name, pred in zip(self.state.pair_names(), self.pair_preds(r)):
            if pred is not None:
                parts.append(f"{name}: {CITYSCAPES_CLASSES[pred.classes[y, x]]} {pred.confidence[y, x]:.2f}")
        if r.truth is not None:
            t = int(r.truth[y, x])
            parts.append(f"ground truth: {CITYSCAPES_CLASSES[t] if t < NUM_CLASSES else 'ignored'}")
        return " · ".join(parts)

    def _show_readout(self, x: int, y: int) -> None:
        self.readout.setText(self.readout_at(x, y) or " ")

    def result(self) -> FrameResult | None:
        return self.state.result()

    def pair_preds(self, r: FrameResult) -> tuple:
        """The predictions panels A and B show (None where the panel has no model)."""
        return tuple(r.preds[i] if 0 <= i < len(r.preds) else None for i in self.pair)

    def pair_comparison(self, r: FrameResult):
        return r.comparison(*self.pair)

    def render(self) -> None:
        """The selected frame: its panels, category vectors and IoU table."""
        r = self.result()
        if r is None:
            return
        self.compared.set_frame_size(r.image.shape[1], r.image.shape[0])
        self.render_panels()
        names, (a, b) = self.state.pair_names(), self.pair_preds(r)
        pivots = self._pivots_shown = any(p is not None and p.has_pivot for p in (a, b))
        self._show_pivot_row()
        self.regions_box.setVisible(pivots)
        edited = self.regions_model(r)[1] if self.what_if.active() else None  # its chart row shows the edit
        self.chart.show_vectors([(names[0], self.what_if.shown(a) if a is edited else a),
                                 (names[1], self.what_if.shown(b) if b is edited else b)], r.truth_present)
        self._fill_table(r)
        self.status.emit(f"{r.path.name}  {r.image.shape[1]}×{r.image.shape[0]}")
        self.frame_shown.emit(str(r.path))

    def regions_model(self, r: FrameResult) -> tuple[int, object]:
        """(model index, prediction) of the expanded-regions panel: the model picked there (panel B's
        first), or the other of the pair where only that one has a pivot; (-1, None) without one."""
        (ia, ib), (a, b) = self.pair, self.pair_preds(r)
        with_pivot = [(i, p) for i, p in ((ib, b), (ia, a)) if p is not None and p.has_pivot]  # B first
        want = b if (self.region_model.currentIndex() == 0 and b is not None) or a is None else a
        for i, p in with_pivot:
            if p is want:
                return i, p
        return with_pivot[0] if with_pivot else (-1, None)

    def render_panels(self) -> None:
        """Only the image panels: what the display controls change."""
        r = self.result()
        if r is None:
            return
        alpha, edges, visible = self.alpha, self.boundaries.isChecked(), self.visible()

        def draw(classes):
            return overlay.blend(r.image, classes, alpha, edges, visible)
        names, preds, comparison = self.state.pair_names(), self.pair_preds(r), self.pair_comparison(r)
        for panel, pred, name, score, which in zip((self.panel_a, self.panel_b), preds, names, self.state.pair_scores(r.path),
                                                   "AB"):
            title = f"{which} · {name}" + (f" · mIoU {_pct(score)}" if score is not None else "")
            panel.show_image(draw(pred.classes) if pred is not None else None, title if pred else f"{which}: –")
        truth_view = self.third.currentIndex() == 0 and r.truth is not None
        if truth_view:
            self.panel_c.show_image(draw(r.truth), "ground truth")
        elif comparison is not None:  # the picture's key goes in its title: it is on screen
            _, picture = outcome_panel(r.image, comparison)
            if comparison.outcome is not None:
                labels = ("both right", f"only {names[0]}", f"only {names[1]}", "both wrong")
                title = "who is right: " + " ".join(_swatch(colour, label)
                                                    for label, colour in zip(labels, OUTCOME_COLOURS))
            else:
                title = ("no ground truth · " if r.truth is None else "") + \
                    _swatch(DIFFER_COLOUR, f"{names[0]} and {names[1]} differ")
            self.panel_c.show_image(picture, title)
        else:
            self.panel_c.show_image(r.image, "frame (no ground truth)" if r.truth is None else "frame")

        pred = self.what_if.shown(self.regions_model(r)[1])  # under the edited pivot, where edited
        c = self.region_class.currentIndex()
        if pred is not None:
            verdict = {1: "present", 0: "absent", -1: "unsure"}[int(pred.pivot[c])]
            if self.what_if.active():
                verdict = "what-if: " + verdict
            if self.region_mode.currentIndex() == 0:
                share = float((pred.regions == c).mean())
                self.panel_regions.show_image(overlay.regions(r.image, pred.regions, pred.seeds, c, alpha),
                                              f"{CITYSCAPES_CLASSES[c]} · region {100 * share:.1f} % · {verdict}")
            elif self.region_mode.currentIndex() == 2:
                share = float((pred.regions != 255).mean())
                self.panel_regions.show_image(overlay.pseudo_labels(r.image, pred.regions, pred.seeds, alpha),
                                              f"pseudo-labels {100 * share:.1f} % · {CITYSCAPES_CLASSES[c]} {verdict}")
            else:
                self.panel_regions.show_image(overlay.heat(r.image, pred.cam(c), alpha),
                                              f"{CITYSCAPES_CLASSES[c]} · CAM · q {pred.q[c]:.2f} · {verdict}")

    def _fill_table(self, r: FrameResult) -> None:
        """Per class, the gain of B over A and each open model's IoU on this frame: the gain next to
        the class, in sight however many models are open (the columns past it scroll)."""
        names = self.state.model_names()
        self.table.setColumnCount(len(names) + 2)
        # a long name ("g11 · PIT @ 120000") on lines of its own, not elided
        self.table.setHorizontalHeaderLabels(["class", "Δ (B − A)", *(n.replace(" · ", "\n") for n in names)])
        ia, ib = self.pair
        have = [i for i in r.ious if i is not None]
        rows = []
        if have:
            rows.append(("mIoU", list(r.scores)))
            rows += [(CITYSCAPES_CLASSES[c], [i[c] if i is not None else None for i in r.ious])
                     for c in range(NUM_CLASSES) if not all(math.isnan(i[c]) for i in have)]
        else:
            rows.append(("no ground truth for this frame", [None] * len(names)))
        cells = []
        for name, values in rows:
            a, b = (values[i] if 0 <= i < len(values) else None for i in (ia, ib))
            delta = None if a is None or b is None or a != a or b != b else b - a
            cells.append(([name, "–" if delta is None else f"{100 * delta:+.1f}", *map(_pct, values)], delta))
        fill_table(self.table, cells, delta_column=1)

    # export ------------------------------------------------------------------------------------
    def view_image(self) -> np.ndarray | None:
        """What "Export view" saves, at the frame's native resolution: the comparison composite
        with two models (as `pit export --compare`), else the overlay with its legend (as `pit
        export`), drawn with the current opacity, boundaries and visible classes."""
        r = self.result()
        if r is None:
            return None
        a, b = self.pair_preds(r)
        if a is not None and b is not None:
            return comparison_image(r.image, a.classes, b.classes, r.truth, self.pair_comparison(r), self.alpha,
                                    *self.state.pair_names(), show_boundaries=self.boundaries.isChecked(),
                                    visible=self.visible())
        pred = b or a
        if pred is None:
            return None
        name = self.state.pair_names()[0 if pred is a else 1]
        return overlay_image(r.image, pred.classes, self.alpha, self.boundaries.isChecked(), self.visible(), name)
