"""A form over the run configuration. It edits the fields a user changes most and keeps every
other key of the loaded config as it was; the engine's Config does all the checking.

The method box lists the engine's registry; each method's settings come from its own config
table (the fields its `FORM` names, or all of them), so a new method needs no change here."""
from __future__ import annotations

import copy
import dataclasses
import tomllib
from pathlib import Path

import tomli_w
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QLabel, QHBoxLayout,
                               QLineEdit, QPushButton, QStackedWidget, QVBoxLayout, QWidget)

from pit_engine.config import Config, field_docs, section_classes
from pit_engine.data.datasets import DATASETS
from pit_engine.errors import UserError
from pit_engine.methods import METHODS, build_method
from pit_engine.models import BACKBONES
from pit_engine.runtime import available_devices
from pit_gui.wheel import ComboBox, DoubleSpinBox, SpinBox


class ListEdit(QLineEdit):
    """A list setting (sizes, rates) as its TOML text, e.g. [1024, 512]."""


def _setting_widget(kind) -> QWidget:
    kind = {"bool": bool, "int": int, "float": float, "str": str}.get(kind, kind)
    if kind is bool:
        return QCheckBox()
    if kind is int:
        return SpinBox(minimum=-1, maximum=2 ** 31 - 1)
    if kind is float:
        return DoubleSpinBox(decimals=6, maximum=1e6, singleStep=0.001)
    if kind is str:
        return QLineEdit()
    return ListEdit()  # list[int] and the like


def _path_row(edit: QLineEdit, pick, *extra) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    browse = QPushButton("…", maximumWidth=32, toolTip="Browse")
    browse.clicked.connect(pick)
    layout.addWidget(browse)
    for widget in extra:
        layout.addWidget(widget)
    return row


class ConfigForm(QWidget):
    check_requested = Signal(str, str, str)  # kind, root, split: run `pit data check` on it
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._raw: dict = Config().to_dict()
        self.fields: dict[str, QWidget] = {}

        data = QGroupBox("Data")
        form = QFormLayout(data)
        for side in ("source", "target"):
            kinds = ComboBox()
            kinds.addItems([k for k in DATASETS if side == "target" or k != "folder"])
            root = QLineEdit(placeholderText=f"{side} data set folder")
            check = QPushButton("Check", toolTip=f"Read every {side} file and summarise the data set")
            check.clicked.connect(lambda _=False, s=side: self._check(s))
            self.fields[f"data.{side}_kind"] = kinds
            self.fields[f"data.{side}_root"] = root
            form.addRow(side.capitalize(), kinds)
            form.addRow("", _path_row(root, lambda _=False, e=root: self._pick_dir(e), check))

        model = QGroupBox("Model")
        form_m = QFormLayout(model)
        backbone = ComboBox()
        backbone.addItems(list(BACKBONES))
        weights = QLineEdit(placeholderText="ImageNet / DeepLab init file (.pth); empty: from scratch")
        self.fields["model.backbone"] = backbone
        self.fields["model.weights"] = weights
        form_m.addRow("Backbone", backbone)
        form_m.addRow("Weights", _path_row(weights, lambda: self._pick_file(weights, "Weights (*.pth *.pt)")))

        method = QGroupBox("Method")
        box = QVBoxLayout(method)
        choice = ComboBox(toolTip="The adaptation method; source only is the baseline every method is measured "
                                   "against, target labels the ceiling (not an adaptation method)")
        settings = QStackedWidget()
        for name, cls in METHODS.items():
            choice.addItem(cls.label, name)
            page = QWidget()
            form_p = QFormLayout(page)
            form_p.setContentsMargins(0, 0, 0, 0)
            labels = getattr(cls.Config, "FORM", None) or {
                f.name: f.name.replace("lambda_", "λ ").replace("_", " ") for f in dataclasses.fields(cls.Config)}
            kinds = {f.name: f.type for f in dataclasses.fields(cls.Config)}
            docs = field_docs(cls.Config)
            rest = {key: key.replace("lambda_", "λ ").replace("_", " ") for key in kinds if key not in labels}
            for i, (key, label) in enumerate({**labels, **rest}.items()):
                if i == len(labels) and rest:
                    form_p.addRow(QLabel("<i>more settings</i>"))
                widget = self.fields[f"method.{name}.{key}"] = _setting_widget(kinds[key])
                widget.setToolTip(f"method.{name}.{key}" + (f": {docs[key]}" if key in docs else ""))
                if isinstance(widget, QCheckBox):
                    widget.setText(label)
                    form_p.addRow(widget)
                else:
                    form_p.addRow(label, widget)
            settings.addWidget(page)
        choice.currentIndexChanged.connect(settings.setCurrentIndex)
        self.fields["method.name"] = choice
        box.addWidget(choice)
        box.addWidget(settings)

        train = QGroupBox("Training")
        form_t = QFormLayout(train)
        self.fields["train.iterations"] = SpinBox(maximum=10_000_000, singleStep=1000)
        self.fields["train.batch_size"] = SpinBox(minimum=1, maximum=1024)
        self.fields["train.lr"] = DoubleSpinBox(decimals=6, maximum=10.0, singleStep=1e-4)
        device = ComboBox()
        for value, text in available_devices():
            device.addItem(text, value)
        self.fields["train.device"] = device
        self.fields["train.seed"] = SpinBox(maximum=2 ** 31 - 1)
        amp = ComboBox(toolTip="Mixed precision on the GPU: bf16, or fp16 with loss scaling; off = fp32; "
                                "auto = bf16 (fp16 on GPUs without it) on a GPU, off on the CPU")
        amp.addItems(["off", "bf16", "fp16", "auto"])
        self.fields["train.amp"] = amp
        self.fields["train.channels_last"] = QCheckBox("channels_last memory layout")
        self.fields["train.health_every"] = SpinBox(
            maximum=10_000_000, singleStep=50, specialValueText="never",
            toolTip="Every this many iterations, measure the pseudo-labels, the pivot and the IoU on fixed target "
                    "train frames: the health curves under the losses")
        for key, label in (("train.iterations", "Iterations"), ("train.batch_size", "Batch size"),
                           ("train.lr", "Learning rate"), ("train.device", "Device"), ("train.amp", "Mixed precision"),
                           ("train.channels_last", ""), ("train.seed", "Seed"), ("train.health_every", "Health every")):
            form_t.addRow(label, self.fields[key])

        advanced = QGroupBox("Advanced: every other key")
        advanced.setCheckable(True)  # unticked: folded away
        advanced.setChecked(False)
        inner = QWidget()
        form_a = QFormLayout(inner)
        advanced.setLayout(QVBoxLayout())
        advanced.layout().addWidget(inner)
        advanced.toggled.connect(inner.setVisible)
        inner.setVisible(False)
        for section, cls in section_classes().items():
            if section.startswith("method."):
                continue
            docs = field_docs(cls)
            for f in dataclasses.fields(cls):
                key = f"{section}.{f.name}"
                if key in self.fields:
                    continue
                widget = self.fields[key] = _setting_widget(f.type)
                widget.setToolTip(key + (f": {docs[f.name]}" if f.name in docs else ""))
                if isinstance(widget, QCheckBox):
                    widget.setText(key)
                    form_a.addRow(widget)
                else:
                    form_a.addRow(key, widget)
        self.advanced = advanced

        layout = QVBoxLayout(self)
        for group in (data, model, method, train, advanced):
            layout.addWidget(group)
        layout.addStretch(1)
        for widget in self.fields.values():
            for signal in ("textChanged", "currentIndexChanged", "toggled", "valueChanged"):
                if hasattr(widget, signal):
                    getattr(widget, signal).connect(self.changed)
                    break
        self.set_config(Config())

    # config <-> form ---------------------------------------------------------------------------
    def set_config(self, config: Config) -> None:
        self._raw = config.to_dict()
        for key, widget in self.fields.items():
            *path, name = key.split(".")
            value = _table(self._raw, path)[name]
            if isinstance(widget, QComboBox):
                index = widget.findData(value) if widget.itemData(0) is not None else widget.findText(value)
                if index < 0:  # e.g. a config naming a GPU this machine lacks: keep it selectable
                    widget.addItem(str(value), value)
                    index = widget.count() - 1
                widget.setCurrentIndex(index)
            elif isinstance(widget, ListEdit):
                widget.setText(tomli_w.dumps({"v": value}).split("=", 1)[1].strip())
            elif isinstance(widget, QLineEdit):
                widget.setText(str(value))
            elif isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            else:
                widget.setValue(value)

    def raw(self) -> dict:
        raw = copy.deepcopy(self._raw)
        for key, widget in self.fields.items():
            *path, name = key.split(".")
            table = _table(raw, path)
            if isinstance(widget, QComboBox):
                data = widget.currentData()
                table[name] = data if data is not None else widget.currentText()
            elif isinstance(widget, ListEdit):
                try:
                    table[name] = tomllib.loads(f"v = {widget.text().strip() or '[]'}")["v"]
                except tomllib.TOMLDecodeError:
                    raise UserError(f"'{self.label(key)}' ({key}) is not a list", "the training form",
                                    "write it like [1024, 512]") from None
            elif isinstance(widget, QLineEdit):
                table[name] = widget.text().strip()
            elif isinstance(widget, QCheckBox):
                table[name] = widget.isChecked()
            else:
                table[name] = widget.value()
        return raw

    def config(self) -> Config:
        """The config the form describes; a UserError names a bad value by its field's label."""
        try:
            return Config.from_dict(self.raw(), "the training form")
        except UserError as exc:
            raise UserError(self.in_form_words(exc.what), exc.where, self.in_form_words(exc.todo)) from None

    def config_to_train(self) -> Config:
        """`config`, with the folders a run needs filled in (a config to save may leave them empty)."""
        config = self.config()
        for key, needed in (("data.source_root", True), ("data.target_root", build_method(config.method).adapts)):
            if needed and not self.fields[key].text().strip():
                raise UserError(f"'{self.label(key)}' is empty", "the training form",
                                "fill it in, or make demo data (Train ▸ Make demo data…)")
        return config

    def label(self, key: str) -> str:
        """The words a field goes by on screen: its group's title and its row's label."""
        widget = self.fields.get(key)
        if widget is None:
            return key
        for group in self.findChildren(QGroupBox):
            for layout in group.findChildren(QFormLayout) + [group.layout()]:
                if not isinstance(layout, QFormLayout):
                    continue
                for row in range(layout.rowCount()):
                    field, label = (layout.itemAt(row, role) for role in (QFormLayout.FieldRole, QFormLayout.LabelRole))
                    holder = field.widget() if field is not None else None
                    if holder is not None and (holder is widget or holder.isAncestorOf(widget)):
                        text = label.widget().text() if label is not None and label.widget() is not None else ""
                        text = text or (widget.text() if isinstance(widget, QCheckBox) else "")
                        if not text and key.startswith("data."):  # a folder row under its kind's row
                            text = key.split(".")[1].split("_")[0].capitalize() + " folder"
                        return " ▸ ".join(t for t in (group.title(), text) if t)
        return key

    def in_form_words(self, line: str) -> str:
        """A config key in a message, as the form shows it: 'Training ▸ Iterations' (train.iterations)."""
        for key in sorted(self.fields, key=len, reverse=True):
            if f"'{key}'" in line:
                line = line.replace(f"'{key}'", f"'{self.label(key)}' ({key})")
        return line

    def snapshot(self) -> tuple:
        """Every field as it is shown (a half-typed list included), for `restore` to put back."""
        shown = {}
        for key, widget in self.fields.items():
            if isinstance(widget, QComboBox):
                shown[key] = widget.currentIndex()  # items are only ever added, so an index stays valid
            elif isinstance(widget, QLineEdit):
                shown[key] = widget.text()
            elif isinstance(widget, QCheckBox):
                shown[key] = widget.isChecked()
            else:
                shown[key] = widget.value()
        return copy.deepcopy(self._raw), shown

    def restore(self, snapshot: tuple) -> None:
        raw, shown = snapshot
        self._raw = copy.deepcopy(raw)
        for key, value in shown.items():
            widget = self.fields[key]
            if isinstance(widget, QComboBox):
                widget.setCurrentIndex(value)
            elif isinstance(widget, QLineEdit):
                widget.setText(value)
            elif isinstance(widget, QCheckBox):
                widget.setChecked(value)
            else:
                widget.setValue(value)

    def set_value(self, key: str, value) -> None:
        *path, name = key.split(".")
        raw = self.raw()
        _table(raw, path)[name] = value
        self._raw = raw
        self.set_config(Config.from_dict(raw, "the training form"))

    # helpers -----------------------------------------------------------------------------------
    def _check(self, side: str) -> None:
        raw = self.raw()["data"]
        kind = raw[f"{side}_kind"]
        split = raw["target_split"] if side == "target" and kind == "cityscapes" else ""
        self.check_requested.emit(kind, raw[f"{side}_root"], split)

    def _pick_dir(self, edit: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a data set folder", edit.text() or str(Path.home()))
        if folder:
            edit.setText(folder)

    def _pick_file(self, edit: QLineEdit, filter_: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a weights file", edit.text() or str(Path.home()), filter_)
        if path:
            edit.setText(path)


def _table(raw: dict, path: list[str]) -> dict:
    for key in path:
        raw = raw[key]
    return raw
