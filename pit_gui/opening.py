"""Opening things, as the command line, the File menu, drag and drop and the recent files give
them: a run directory (its curves, followed while it grows, and its models), a checkpoint, a
config, a folder or an image of frames, and another run's curves to compare with. It holds the run
opened last (its metrics reader, the timer that reads new records, its iterations)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog

from pit_engine.config import Config
from pit_engine.data.io import IMAGE_SUFFIXES
from pit_engine.errors import UserError
from pit_engine.export import gather
from pit_engine.runs import MetricsReader, is_run_dir, run_config

FOLLOW_MS = 1000  # how often an opened run's metrics.jsonl is read for new records
CHECKPOINT_SUFFIXES = (".pt", ".pth")


class Opener(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.reader: MetricsReader | None = None  # the opened run's metrics.jsonl
        self.run_total = 0  # its iterations
        self.follow_timer = QTimer(self, interval=FOLLOW_MS)
        self.follow_timer.timeout.connect(self.follow_run)

    def open_path(self, path) -> bool:
        """A run directory, a checkpoint, a config, or frames (a folder or an image), as the command
        line, drag and drop and the recent menu give them."""
        path = Path(path)
        if path.is_dir() and is_run_dir(path):
            return self.open_run(path)
        if path.is_file() and path.suffix.lower() in CHECKPOINT_SUFFIXES:
            return self.open_checkpoint(path, "b")
        if path.is_file() and path.suffix.lower() == ".toml":
            self.window.tabs.setCurrentIndex(0)
            return self.load_config(path)
        if path.is_dir() or path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            return self.open_frames(path)
        self.window.show_error(UserError("cannot open this", path, "give a run directory, a checkpoint (.pt), a "
                                                                   "config (.toml) or a folder of frames").line())
        return False

    def open_checkpoint(self, path, which: str) -> bool:
        path, window = Path(path), self.window
        if not path.is_file():
            window.show_error(UserError("checkpoint not found", path, "choose an existing .pt file").line())
            return False
        window.inspect_view.models.add(path, as_a=which == "a")
        window.remembered.remember(path)
        window.tabs.setCurrentIndex(1)
        return True

    def open_frames(self, path, remember: bool = True) -> bool:
        path, window = Path(path), self.window

        def done(inputs):
            window.inspect_view.set_frames(inputs.images)
            if remember:
                window.remembered.remember(path)
            if inputs.skipped:
                window.say(f"skipped {len(inputs.skipped)} file(s) that are not images")
        window.background.run(f"listing {path.name}", lambda progress: gather([path]), done)
        window.tabs.setCurrentIndex(1)
        return True

    def open_run(self, run_dir) -> bool:
        run_dir, window = Path(run_dir), self.window
        try:
            config = run_config(run_dir)
        except UserError as exc:
            window.show_error(exc.line())
            return False
        if window.training:
            window.show_error(UserError("a training run is in progress", run_dir, "stop it before opening "
                                                                                  "another run").line())
            return False
        tv = window.train_view
        self.follow_timer.stop()
        self.reader = MetricsReader(run_dir)
        self.run_total = config.get("train", {}).get("iterations", 0)
        tv.clear_curves(run_dir.name, self.run_total)
        tv.run_dir.setText(str(run_dir))  # Start now resumes this run (after asking), not the last
        tv.say(f"opened run {run_dir}")

        reader = self.reader

        def done(records):
            if reader is not self.reader:
                return  # another run was opened meanwhile
            tv.add_records(records)
            self._show_run_progress(records)
            self.follow_timer.start()
        window.background.run(f"reading {run_dir.name}", lambda progress: reader.read(), done)
        window.handoff.run_opened(run_dir)
        window.timeline_view.open_run(run_dir)
        window.remembered.remember(run_dir)
        window.tabs.setCurrentIndex(0)
        return True

    def stop_following(self) -> None:
        """A run trains in the window: the run opened before is no longer read."""
        self.follow_timer.stop()
        self.reader = None

    def follow_run(self) -> None:
        """New records of an opened run that is still growing (written by `pit train` elsewhere)."""
        if self.reader is None:
            return
        records = self.reader.read()
        if self.reader.restarted:  # the run was resumed and rewrote its metrics
            self.window.train_view.clear_curves(self.reader.path.parent.name, self.run_total)
        if records:
            self.window.train_view.add_records(records)
            self._show_run_progress(records)

    def _show_run_progress(self, records) -> None:
        if records and self.run_total:
            self.window.train_view.show_progress(records[-1]["iteration"], self.run_total)

    def compare_run(self, run_dir) -> None:
        run_dir, window = Path(run_dir), self.window
        if not is_run_dir(run_dir):
            window.show_error(UserError("not a run directory", run_dir, "choose a folder holding "
                                                                        "metrics.jsonl").line())
            return
        window.background.run(f"reading {run_dir.name}", lambda progress: MetricsReader(run_dir).read(),
                                 lambda records: window.train_view.plots.add_reference(records, run_dir.name))

    def load_config(self, path) -> bool:
        window, tv = self.window, self.window.train_view
        try:
            config = Config.load(path)
            tv.form.set_config(config)
        except UserError as exc:
            window.show_error(exc.line())
            return False
        tv.preset.setCurrentIndex(0)  # the form no longer shows a preset
        tv.say(f"loaded config {path}")
        for note in config.notes:  # e.g. an older config's flat [method] table, converted
            tv.say(note)
        window.remembered.remember_config(path)
        window.remembered.remember(Path(path))
        window.say(f"loaded {path}")
        return True

    # drag and drop -------------------------------------------------------------------------------
    @staticmethod
    def accepts(mime) -> bool:
        """Local files and folders only."""
        return mime.hasUrls() and all(u.isLocalFile() for u in mime.urls())

    def drop(self, mime) -> None:
        for url in mime.urls():
            self.open_path(url.toLocalFile())

    # dialogs -------------------------------------------------------------------------------------
    def _folder(self, title: str) -> str:
        return QFileDialog.getExistingDirectory(self.window, title, self.window.remembered.last_dir())

    def ask_open_run(self):
        folder = self._folder("Open a run directory")
        if folder:
            self.open_path(folder)

    def ask_open_checkpoint(self, which: str = "b"):
        title = f"Add models to Inspect (the last shown in panel {which.upper()})"
        paths, _ = QFileDialog.getOpenFileNames(self.window, title, self.window.remembered.last_dir(),
                                                "Checkpoints (*.pt *.pth)")
        for path in paths:  # several at once: every method of a comparison
            self.open_checkpoint(path, which)

    def ask_open_frames(self):
        folder = self._folder("Open a folder of frames (or a Cityscapes split)")
        if folder:
            self.open_frames(folder)

    def ask_compare_run(self):
        folder = self._folder("Compare with another run")
        if folder:
            self.compare_run(folder)

    def ask_load_config(self):
        path, _ = QFileDialog.getOpenFileName(self.window, "Load a config", self.window.remembered.last_dir(),
                                              "Config (*.toml)")
        if path:
            self.load_config(path)
