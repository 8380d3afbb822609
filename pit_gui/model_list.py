"""The models open in Inspect: any number of checkpoints (every method of a comparison, a run's
checkpoints, imported published models), each scoring every frame; two of them fill panels A
and B.

The list is its own state: it says what changed through signals (the set of models, or only which
two are shown) and the Inspect view wires them to the inference worker and its panels."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QHBoxLayout, QHeaderView, QPushButton, QRadioButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

COLUMNS = ("model", "A", "B", "")
SHOWN_ROWS = 8


class ModelList(QWidget):
    models_changed = Signal(list)  # the checkpoints, in order: every model is predicted anew
    pair_changed = Signal(int, int)  # which models panels A and B show (-1: none)
    add_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.checkpoints: list[str] = []
        self.names: list[str] = []  # as the loaded checkpoints call themselves ("" until loaded)
        self.a, self.b = -1, -1
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.NoSelection)
        self.table.setWordWrap(True)
        self.groups = {"a": QButtonGroup(self), "b": QButtonGroup(self)}
        for which, group in self.groups.items():
            group.idClicked.connect(lambda i, w=which: self.set_pair(*((i, self.b) if w == "a" else (self.a, i))))
        add = QPushButton("Add checkpoint…", toolTip="Open another model; every open model scores every frame")
        add.clicked.connect(self.add_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addStretch(1)
        layout.addLayout(row)

    # what the window asks -------------------------------------------------------------------------
    def set_checkpoints(self, checkpoints, a: int = 0, b: int = 1) -> None:
        """Replace every model (the demo's pair, say)."""
        self.checkpoints = [str(c) for c in checkpoints if c]
        self.names = [""] * len(self.checkpoints)
        self.a, self.b = self._valid(a), self._valid(b)
        self._changed()

    def add(self, checkpoint, as_a: bool = False, replace_run: bool = False) -> None:
        """Open a checkpoint and show it in panel B (or A). replace_run: it takes the place of an
        open checkpoint of the same run (a run followed as it trains), instead of adding a row."""
        checkpoint = str(checkpoint)
        if checkpoint in self.checkpoints:  # already open: shown in the panel asked for, the panels swap if need be
            i = self.checkpoints.index(checkpoint)
            a, b = self.a, self.b
            self.set_pair(*((i, a if b == i else b) if as_a else (b if a == i else a, i)))
            return
        same_run = [i for i, c in enumerate(self.checkpoints) if Path(c).parent == Path(checkpoint).parent]
        if replace_run and same_run:
            i = same_run[-1]
            self.checkpoints[i], self.names[i] = checkpoint, ""
        else:
            self.checkpoints.append(checkpoint)
            self.names.append("")
            i = len(self.checkpoints) - 1
        if as_a:
            self.a = i
        elif i != self.a:
            if self.a < 0 and 0 <= self.b != i:  # A was empty: the model shown so far moves there
                self.a = self.b
            self.b = i
        if self.b == self.a and len(self.checkpoints) > 1:  # two panels, two models
            self.b = next(j for j in range(len(self.checkpoints)) if j != self.a)
        self._changed()

    def remove(self, i: int) -> None:
        del self.checkpoints[i], self.names[i]
        self.a, self.b = (self._valid(x - (x > i) if x != i else -1) for x in (self.a, self.b))
        self._fill_pair()
        self._changed()

    def set_pair(self, a: int, b: int) -> None:
        self.a, self.b = self._valid(a), self._valid(b)
        self._check_buttons()
        self.pair_changed.emit(self.a, self.b)

    def set_names(self, names: list[str]) -> None:
        """The loaded models' names; a checkpoint that failed to load ("") leaves the list."""
        failed = [i for i, name in enumerate(names) if not name]
        pair = (self.a, self.b)
        self.names = list(names)
        for i in reversed(failed):
            del self.checkpoints[i], self.names[i]
            self.a, self.b = (x - (x > i) if x != i else -1 for x in (self.a, self.b))
        self._fill_pair()
        self._rebuild()
        if failed:
            self.models_changed.emit(list(self.checkpoints))
        if (self.a, self.b) != pair or failed:
            self.pair_changed.emit(self.a, self.b)

    def name(self, i: int) -> str:
        if 0 <= i < len(self.names):
            return self.names[i] or Path(self.checkpoints[i]).stem
        return ""

    def checkpoint(self, which: str) -> str:
        """The checkpoint panel A or B shows ("" when none)."""
        i = self.a if which == "a" else self.b
        return self.checkpoints[i] if 0 <= i < len(self.checkpoints) else ""

    # inside -----------------------------------------------------------------------------------------
    def _valid(self, i: int) -> int:
        return i if 0 <= i < len(self.checkpoints) else -1

    def _fill_pair(self) -> None:
        """After a removal: the panels show what is left, A and B different where two are open."""
        n = len(self.checkpoints)
        if self.b < 0:
            self.b = next((j for j in range(n) if j != self.a), -1)
        if self.a < 0:
            self.a = next((j for j in range(n) if j != self.b), -1)

    def _changed(self) -> None:
        self._rebuild()
        self.models_changed.emit(list(self.checkpoints))
        self.pair_changed.emit(self.a, self.b)

    def _rebuild(self) -> None:
        self.table.setRowCount(len(self.checkpoints))
        for group in self.groups.values():
            for button in group.buttons():
                group.removeButton(button)
        for i, checkpoint in enumerate(self.checkpoints):
            item = QTableWidgetItem(self.names[i] or f"{Path(checkpoint).name} (loading…)")
            item.setToolTip(checkpoint)
            self.table.setItem(i, 0, item)
            for column, which in ((1, "a"), (2, "b")):
                radio = QRadioButton(toolTip=f"Show this model in panel {which.upper()}")
                self.groups[which].addButton(radio, i)
                self.table.setCellWidget(i, column, _centred(radio))
            close = QPushButton("✕", flat=True, maximumWidth=24, toolTip="Close this model")
            close.clicked.connect(lambda _=False, j=i: self.remove(j))
            self.table.setCellWidget(i, 3, close)
        self.table.resizeRowsToContents()
        self._fit_height()
        self._check_buttons()

    def _fit_height(self) -> None:
        """Every row in sight up to SHOWN_ROWS of them; a scroll bar beyond."""
        rows = range(min(self.table.rowCount(), SHOWN_ROWS))
        height = self.table.horizontalHeader().height() + sum(self.table.rowHeight(i) for i in rows)
        self.table.setFixedHeight(max(height, 2 * self.table.horizontalHeader().height()) + 2 * self.table.frameWidth())

    def _check_buttons(self) -> None:
        for which, i in (("a", self.a), ("b", self.b)):
            group = self.groups[which]
            group.setExclusive(False)  # an exclusive group cannot be left with nothing checked
            for button in group.buttons():
                button.setChecked(group.id(button) == i)
            group.setExclusive(True)


def _centred(widget) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setAlignment(Qt.AlignCenter)
    layout.addWidget(widget)
    return box
