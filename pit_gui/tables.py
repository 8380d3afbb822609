"""The IoU tables of the Inspect view and the folder summary: text cells, numbers right-aligned,
a gain green and a loss red."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

GAIN, LOSS = QColor(60, 190, 100), QColor(230, 80, 70)


def fill_table(table: QTableWidget, rows: list[tuple[list[str], float | None]], delta_column: int) -> None:
    """rows: each row's cell texts, and the delta (B − A) that colours its delta column (or None)."""
    table.setRowCount(len(rows))
    for i, (cells, delta) in enumerate(rows):
        for j, text in enumerate(cells):
            cell = QTableWidgetItem(text)
            if j == delta_column and delta:
                cell.setForeground(GAIN if delta > 0 else LOSS)
            if j:
                cell.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            table.setItem(i, j, cell)
    table.resizeColumnsToContents()  # once, here: a header resizing to contents measured at every setItem
