"""The models open in Inspect: any number of checkpoints (every method of a comparison, a run's
checkpoints, imported published models), each scoring every frame; two of them fill panels A
and B.

The list draws the Inspect view's state (an InspectState: the checkpoints, their names, the pair)
and redraws from its signals; its radio buttons and ✕ buttons change that state."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QHBoxLayout, QHeaderView, QPushButton, QRadioButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from pit_gui.inspect_state import InspectState

COLUMNS = ("model", "A", "B", "")
SHOWN_ROWS = 8


class ModelList(QWidget):
    add_requested = Signal()

    def __init__(self, state: InspectState, parent=None):
        super().__init__(parent)
        self.state = state
        # what the window and the tests ask of the list, answered by the state
        self.add, self.remove, self.set_pair = state.add, state.remove, state.set_pair
        self.set_checkpoints, self.name, self.checkpoint = state.set_checkpoints, state.name, state.checkpoint
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
            group.idClicked.connect(lambda i, w=which: state.set_pair(*((i, state.b) if w == "a" else (state.a, i))))
        add = QPushButton("Add checkpoint…", toolTip="Open another model; every open model scores every frame")
        add.clicked.connect(self.add_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addStretch(1)
        layout.addLayout(row)
        state.models_changed.connect(self._rebuild)
        state.names_changed.connect(self._rebuild)
        state.pair_changed.connect(self._check_buttons)

    @property
    def checkpoints(self) -> list[str]:
        return self.state.checkpoints

    @property
    def names(self) -> list[str]:
        return self.state.names

    @property
    def a(self) -> int:
        """The model panel A shows (-1: none)."""
        return self.state.a

    @property
    def b(self) -> int:
        return self.state.b

    # drawing -----------------------------------------------------------------------------------------
    def _rebuild(self, *_) -> None:
        """Every open model a row: its name ("loading…" until loaded), its radio buttons, its ✕."""
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
            close.clicked.connect(lambda _=False, j=i: self.state.remove(j))
            self.table.setCellWidget(i, 3, close)
        self.table.resizeRowsToContents()
        self._fit_height()
        self._check_buttons()

    def _fit_height(self) -> None:
        """Every row in sight up to SHOWN_ROWS of them; a scroll bar beyond."""
        rows = range(min(self.table.rowCount(), SHOWN_ROWS))
        height = self.table.horizontalHeader().height() + sum(self.table.rowHeight(i) for i in rows)
        self.table.setFixedHeight(max(height, 2 * self.table.horizontalHeader().height()) + 2 * self.table.frameWidth())

    def _check_buttons(self, *_) -> None:
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
