"""Controls that the mouse wheel changes only once they have focus (a click or Tab): scrolling
over a form or a panel must scroll it, never set a value on the way. Every combo box, spin box
and slider of the app is one of these."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QSlider, QSpinBox


class WheelOnlyWhenFocused:
    """A mixin, first among the bases: `class ComboBox(WheelOnlyWhenFocused, QComboBox)`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setFocusPolicy(Qt.StrongFocus)  # not WheelFocus: the wheel alone does not focus it

    def wheelEvent(self, event):
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()  # to the parent: the form or the panel scrolls


class SpinBox(WheelOnlyWhenFocused, QSpinBox):
    pass


class DoubleSpinBox(WheelOnlyWhenFocused, QDoubleSpinBox):
    pass


class ComboBox(WheelOnlyWhenFocused, QComboBox):
    pass


class Slider(WheelOnlyWhenFocused, QSlider):
    pass
