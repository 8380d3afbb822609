"""Panels A, B and the third one (ground truth, who is right, or where A and B differ): linked
views in one row, or A and B above the third for wide frames (a spare panel, the expanded
regions, in the fourth cell); focus mode, where one panel fills the view and a key flips it as an
image viewer flips images; fitted to their panels until the user zooms.

The widget owns the layout, focus and fit state; the Inspect view gives it images (through the
panels) and the frame's size, and hears where the cursor is and which panel has the focus."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF, QTimer, Signal
from PySide6.QtWidgets import QBoxLayout, QGridLayout, QSizePolicy, QWidget

from pit_gui.panels import ImagePanel, link

LAYOUTS = ("auto", "one row", "two rows")


def host(item) -> pg.GraphicsLayoutWidget:
    """A widget showing one pyqtgraph item; its size comes from the layout's stretch alone."""
    widget = pg.GraphicsLayoutWidget()
    widget.setBackground((30, 30, 34))
    widget.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)
    widget.ci.setContentsMargins(2, 2, 2, 2)  # the item, not a frame of margins, fills the widget
    widget.addItem(item)
    return widget


class ComparedPanels(QWidget):
    focus_changed = Signal(object)  # 0 (A), 1 (B), 2 (third) or None (all three)
    hovered = Signal(int, int)  # the frame pixel (x, y) under the cursor

    def __init__(self, panels: list[ImagePanel], spare: QWidget | None = None, spare_home: QBoxLayout | None = None,
                 parent=None):
        """spare: a widget of the frame's shape (the expanded regions) that takes the fourth cell of
        two rows, and otherwise lives first in spare_home (the pivot's row under the panels)."""
        super().__init__(parent)
        self.panels = panels
        self.hosts = [host(p) for p in panels]
        self.spare, self.spare_home = spare, spare_home
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.rows = 0
        self.mode = 0  # an index of LAYOUTS
        self.frame_size: tuple[int, int] | None = None  # the frame's (width, height)
        self.focused: int | None = None
        # A, B and the third panel: one shape, one view
        link(panels)
        self.arrange(1)
        self.fitted = True  # stays fitted as the window and the layout change, until a zoom or pan
        for widget, panel in zip(self.hosts, panels):
            widget.scene().sigMouseMoved.connect(lambda pos, p=panel: self.hover(p, pos))
            panel.vb.sigResized.connect(lambda _vb, p=panel: self._refit(p))
            panel.vb.sigRangeChangedManually.connect(lambda *_: setattr(self, "fitted", False))

    # layout --------------------------------------------------------------------------------------
    def set_mode(self, mode: int) -> None:
        self.mode = mode
        self._auto_arrange()

    @property
    def aspect(self) -> float:
        """The frame's width / height (2:1 before a frame is shown)."""
        return self.frame_size[0] / self.frame_size[1] if self.frame_size else 2.0

    def set_frame_size(self, width: int, height: int) -> None:
        changed = self.frame_size != (width, height)
        self.frame_size = (width, height)
        self._auto_arrange()
        if changed and self.fitted:
            self._fit_view()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._auto_arrange()  # auto layout follows the space the panels have

    def arrange(self, rows: int) -> None:
        """A, B and the third panel in one row, or A and B above the third (wide frames)."""
        if rows != self.rows:
            self.rows = rows
            self._place()

    def _place(self) -> None:
        """Each panel in its cell: the focused one alone in the only cell there is (a hidden
        widget's cell keeps its stretch, so a panel left in its cell stays that size), else the
        rows' cells, the spare in the fourth cell of two rows."""
        for widget in self.hosts:
            self.grid.removeWidget(widget)
        if self.focused is not None:
            spots, rows, columns = {self.focused: (0, 0)}, 1, 1
        elif self.rows == 1:
            spots, rows, columns = {0: (0, 0), 1: (0, 1), 2: (0, 2)}, 1, 3
        else:
            spots, rows, columns = {0: (0, 0), 1: (0, 1), 2: (1, 0)}, 2, 2
        for i, widget in enumerate(self.hosts):
            if i in spots:
                self.grid.addWidget(widget, *spots[i])
            widget.setVisible(i in spots)
        if self.spare is not None and self.spare_home is not None:  # its visibility is the owner's
            if self.focused is None and self.rows == 2:
                self.spare_home.removeWidget(self.spare)
                self.grid.addWidget(self.spare, 1, 1)
            elif self.spare_home.indexOf(self.spare) < 0:
                self.grid.removeWidget(self.spare)
                self.spare_home.insertWidget(0, self.spare, 1)
        for i in range(3):
            self.grid.setColumnStretch(i, 1 if i < columns else 0)
            self.grid.setRowStretch(i, 1 if i < rows else 0)

    def _auto_arrange(self) -> None:
        """Auto: whichever of one row or two rows draws the frame larger in the space there is."""
        rows = {1: 1, 2: 2}.get(self.mode)
        if rows is None:
            width, height = max(self.width(), 1), max(self.height(), 1)
            drawn = {n: min(width / (3 if n == 1 else 2), height / n * self.aspect) for n in (1, 2)}
            rows = 2 if drawn[2] > drawn[1] * 1.05 else 1
        if rows != self.rows:
            self.arrange(rows)
            QTimer.singleShot(0, self.fit)

    def shown(self) -> ImagePanel:
        """The panel the others follow: the focused one, else A."""
        return self.panels[self.focused if self.focused is not None else 0]

    def fit(self) -> None:
        """The frame fitted to its panel (Ctrl+0); it stays fitted until the next zoom."""
        self.fitted = True
        self._fit_view()

    def _fit_view(self) -> None:
        """The whole frame in the panel the others follow, from the frame's size: that panel may
        have no image (no model in A) and the others follow it all the same."""
        if self.frame_size is not None:
            self.shown().vb.setRange(QRectF(0, 0, *self.frame_size), padding=0)

    def _refit(self, panel) -> None:
        if panel is self.shown() and self.fitted:
            self._fit_view()

    # focus mode ------------------------------------------------------------------------------------
    def set_focus(self, which: int | None) -> None:
        """One of A (0), B (1) and the third panel (2) fills the view, fitted; None: all of them."""
        self.focused = which
        self._place()
        # a hidden panel keeps its old size, and a view linked to it (aspect locked) would keep its range
        for panel in self.panels[1:]:
            panel.vb.setXLink(self.panels[0].vb if which is None else None)
            panel.vb.setYLink(self.panels[0].vb if which is None else None)
        self.focus_changed.emit(which)
        self.fit()
        QTimer.singleShot(0, self.fit)  # once the layout has given the panel its new size

    def toggle_focus(self) -> None:
        self.set_focus(None if self.focused is not None else 1)  # panel B (the adapted model) first

    def flip(self, step: int = 1) -> None:
        """In focus mode, the next of A, B and the third panel; out of it, focus on B."""
        self.set_focus(1 if self.focused is None else (self.focused + step) % 3)

    # the cursor ------------------------------------------------------------------------------------
    def hover(self, panel, pos) -> None:
        if panel.vb.sceneBoundingRect().contains(pos):
            point = panel.vb.mapSceneToView(pos)
            self.hovered.emit(int(point.x()), int(point.y()))
