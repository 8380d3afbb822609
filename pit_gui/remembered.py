"""What the window remembers between sessions, in its QSettings: the layout (geometry, splitters,
tab), the display (opacity, boundaries, smoothing), the training form as it was left, the last
folder a file dialog opened and the recent files (File ▸ Open recent, the last ten)."""
from __future__ import annotations

import tomllib
from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, QSettings, Signal

from pit_engine.config import Config
from pit_engine.errors import UserError

RECENT_MAX = 10


class Remembered(QObject):
    recent_changed = Signal(list)  # the recent files, newest first

    def __init__(self, settings: QSettings, parent=None):
        super().__init__(parent)
        self.settings = settings

    def restore(self, window) -> None:
        s, tv, iv = self.settings, window.train_view, window.inspect_view
        for key, restore in (("geometry", window.restoreGeometry), ("state", window.restoreState),
                             ("train_splitter", tv.splitter.restoreState),
                             ("inspect_splitter", iv.splitter.restoreState)):
            value = s.value(key)
            if isinstance(value, QByteArray):
                restore(value)
        if s.value("geometry") is None:
            window.resize(1440, 900)
        iv.opacity.setValue(int(s.value("opacity", iv.opacity.value())))
        iv.boundaries.setChecked(s.value("boundaries", True) in (True, "true"))
        tv.plots.smoothing.setValue(int(s.value("smoothing", tv.plots.smoothing.value())))
        tv.run_dir.setText(str(s.value("run_dir", "")))
        config = s.value("config_path", "")
        if config and Path(config).is_file():
            try:
                tv.form.set_config(Config.load(config))
            except UserError:
                pass  # a config edited since: the preset stays
        form = s.value("form", "")
        if form:  # the form as it was left, with the folders Make demo data filled in
            try:
                tv.form.set_config(Config.from_dict(tomllib.loads(form), "the saved form"))
            except (UserError, tomllib.TOMLDecodeError):
                pass  # saved by another version: the config above stays
        window.tabs.setCurrentIndex(int(s.value("tab", 1)))

    def save(self, window) -> None:
        s, tv, iv = self.settings, window.train_view, window.inspect_view
        s.setValue("geometry", window.saveGeometry())
        s.setValue("state", window.saveState())
        s.setValue("train_splitter", tv.splitter.saveState())
        s.setValue("inspect_splitter", iv.splitter.saveState())
        s.setValue("opacity", iv.opacity.value())
        s.setValue("boundaries", iv.boundaries.isChecked())
        s.setValue("smoothing", tv.plots.smoothing.value())
        s.setValue("run_dir", tv.run_dir.text())
        try:
            s.setValue("form", tv.form.config().to_toml())
        except UserError:
            pass  # a half-edited form is not kept over the last good one
        s.setValue("tab", window.tabs.currentIndex())
        s.sync()

    def last_dir(self) -> str:
        return str(self.settings.value("last_dir", str(Path.cwd())))

    def remember(self, path: Path) -> None:
        """A path opened: first of the recent files, and its folder where the next dialog opens."""
        path = Path(path).resolve()
        self.settings.setValue("last_dir", str(path if path.is_dir() else path.parent))
        recent = [p for p in self.recent() if p != str(path)]
        self.settings.setValue("recent", [str(path)] + recent[:RECENT_MAX - 1])
        self.recent_changed.emit(self.recent())

    def remember_config(self, path: Path) -> None:
        """The config loaded last: the form starts from it next time."""
        self.settings.setValue("config_path", str(Path(path).resolve()))

    def recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])
