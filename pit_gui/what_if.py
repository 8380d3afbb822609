"""The pivot as a switch: in Inspect, the category vector of the expanded-regions model on the
frame shown becomes editable. With "Edit the pivot" on, a click on a class in the category chart
switches its state (present → unsure → absent → present), and the targets PIT would train on are
recomputed from the model's outputs at once by the engine (Predictor.what_if, the function the
training step calls): D's expansion and suppression, E's seeds and grown regions. Reset goes back
to the pivot the model inferred; Export saves the frame with the pseudo-labels before and after."""
from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from pit_engine import overlay
from pit_engine.classes import CITYSCAPES_CLASSES
from pit_engine.pit_ops import ABSENT, PRESENT, UNSURE

NEXT_STATE = {PRESENT: UNSURE, UNSURE: ABSENT, ABSENT: PRESENT}  # the engine's pivot states, in a cycle
STATE_WORD = {PRESENT: "present", ABSENT: "absent", UNSURE: "unsure"}
ALL_CLASSES_MODE = 2  # the regions panel's "every class's pseudo-labels" (inspect_view.REGION_MODES)


class WhatIf(QObject):
    changed = Signal()  # the edited pivot or its targets changed: the view redraws

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        self.edit = QCheckBox("Edit the pivot (what-if)", toolTip="Click a class in the category chart to switch "
                              "it present → unsure → absent; the pseudo-labels PIT would train on follow")
        self.edit.toggled.connect(self._editing)
        self.reset_button = QPushButton("Reset", clicked=self.reset, toolTip="Back to the pivot the model inferred")
        self.export_button = QPushButton("Export what-if…", toolTip="The frame, its pseudo-labels as inferred "
                                         "and under the edited pivot, as PNG")
        self.summary = QLabel("", wordWrap=True)
        self.widget = QWidget()
        rows = QVBoxLayout(self.widget)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.addWidget(self.edit)
        row = QHBoxLayout()
        for w in (self.reset_button, self.export_button):
            row.addWidget(w)
        rows.addLayout(row)
        self.key = None  # (frame, model index) the edit belongs to
        self.pivot: np.ndarray | None = None  # the edited states
        self.result = None  # the engine's WhatIf under them
        view.chart.class_clicked.connect(self.toggle_class)
        view.state.current_changed.connect(lambda _: self.reset(redraw=False))  # an edit is a frame's own
        view.state.models_changed.connect(lambda _: self.reset(redraw=False))

    def _editing(self, on: bool) -> None:
        if on:  # the edit is about the whole map: every class's pseudo-labels in the regions panel
            self.view.region_mode.setCurrentIndex(ALL_CLASSES_MODE)
            self.changed.emit()
        else:
            self.reset()

    def target(self):
        """(frame result, model index, prediction) the what-if edits: the expanded-regions model."""
        r = self.view.result()
        if r is None:
            return None, -1, None
        index, pred = self.view.regions_model(r)
        return r, index, pred

    def active(self) -> bool:
        """An edit of the frame and model shown is in force."""
        r, index, _ = self.target()
        return self.result is not None and r is not None and self.key == (r.path, index)

    def toggle_class(self, c: int) -> None:
        if not self.edit.isChecked():
            return
        r, index, pred = self.target()
        if pred is None:
            return
        pivot = self.pivot if self.active() else pred.pivot.copy()
        self.set_state(c, NEXT_STATE[int(pivot[c])])

    def set_state(self, c: int, state: int) -> None:
        """Class c set present (1), unsure (-1) or absent (0), and the targets recomputed."""
        r, index, pred = self.target()
        if pred is None:
            return
        pivot = (self.pivot if self.active() else pred.pivot).astype(np.int8).copy()
        pivot[c] = state
        result = self.view.inference.what_if(index, r.image, pivot)
        if result is None:
            return
        self.key, self.pivot, self.result = (r.path, index), pivot, result
        self.view.region_class.setCurrentIndex(c)
        self._summarise(pred)
        self.changed.emit()

    def reset(self, redraw: bool = True) -> None:
        self.key = self.pivot = self.result = None
        self.summary.setText("")
        if redraw:
            self.changed.emit()

    def _summarise(self, pred) -> None:
        edited = np.flatnonzero(self.pivot != pred.pivot)
        w = self.result
        parts = [f"{CITYSCAPES_CLASSES[c]} {STATE_WORD[int(pred.pivot[c])]} → {STATE_WORD[int(self.pivot[c])]}"
                 for c in edited]
        labelled = float((w.regions != 255).mean())
        self.summary.setText(("what-if: " + ", ".join(parts) if parts else "what-if: the pivot as inferred")
                             + f" · D expands {int(w.expand.sum())}, suppresses {int(w.suppress.sum())} classes"
                             + f" · pseudo-labels on {100 * labelled:.1f} % of the frame")

    def shown(self, pred):
        """The prediction as the chart and the regions panel show it: the edited pivot and its
        regions where an edit is in force."""
        if not self.active() or pred is None:
            return pred
        w = self.result
        return dataclasses.replace(pred, pivot=w.pivot, regions=w.regions, seeds=w.seeds)

    def picture(self) -> np.ndarray | None:
        """The frame | pseudo-labels as inferred | under the edited pivot, each PIT's seeds in cyan."""
        r, index, pred = self.target()
        if not self.active():
            return None
        k = overlay.enlargement(r.image.shape[1])

        def labels(regions, seeds):
            return overlay.enlarge(overlay.pseudo_labels(r.image, regions, seeds, self.view.alpha), k)
        edited = ", ".join(f"{CITYSCAPES_CLASSES[c]} {STATE_WORD[int(self.pivot[c])]}"
                           for c in np.flatnonzero(self.pivot != pred.pivot)) or "none"
        return overlay.composite([("frame", overlay.enlarge(r.image, k)),
                                  ("pseudo-labels, pivot as inferred", labels(pred.regions, pred.seeds)),
                                  (f"what-if: {edited}", labels(self.result.regions, self.result.seeds))])
