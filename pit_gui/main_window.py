"""The main window: the Train and Inspect views, menus and shortcuts, settings, recent files,
drag and drop, and the threads doing the work. Everything it computes, the engine computes."""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QThread, QTimer, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QFileDialog, QMainWindow, QMessageBox, QProgressBar, QPushButton,
                               QTabWidget)

from pit_engine.checkpoint import latest_checkpoint
from pit_engine.config import Config
from pit_engine.data.check import check_dataset
from pit_engine.data.demo import make_demo
from pit_engine.data.io import IMAGE_SUFFIXES, save_png
from pit_engine.errors import UserError
from pit_engine.export import export_overlays, gather
from pit_engine.runs import MetricsReader, is_run_dir, run_config, source_only_sibling
from pit_gui.folder_summary import FolderSummary
from pit_gui.inspect_view import InspectView
from pit_gui.train_view import TrainView
from pit_gui.workers import InferenceWorker, Relay, TaskWorker, TrainWorker, start_thread
from pit_resources import resource

FOLLOW_MS = 1000  # how often an opened run's metrics.jsonl is read for new records
RECENT_MAX = 10
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def demo_inputs() -> tuple[Path, Path, Path]:
    """The shipped source-only and PIT checkpoints and the demo val frames."""
    return (resource("demo_source_only.pt"), resource("demo_pit.pt"),
            resource("demo_frames") / "leftImg8bit" / "val")


def baseline(run_dir) -> Path:
    """What panel A shows beside an opened run: the newest checkpoint of its source-only sibling
    run (as `pit demo` writes them), else the shipped demo source-only model."""
    sibling = source_only_sibling(run_dir)
    if sibling is not None:
        try:
            return latest_checkpoint(sibling)
        except UserError:
            pass  # that run has no checkpoint yet
    return demo_inputs()[0]


def inference_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, demo_models: bool = True, demo_frames: bool = True):
        super().__init__()
        self.setWindowTitle("PIT Studio")
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else QSettings("PIT Studio", "pit-gui")
        self.train_worker: TrainWorker | None = None
        self.train_thread: QThread | None = None
        self.tasks: list[tuple[TaskWorker, QThread]] = []
        self.reader: MetricsReader | None = None
        self.run_total = 0
        self._close_when_stopped = False

        self.train_view = TrainView()
        self.inspect_view = InspectView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.train_view, "Train")
        self.tabs.addTab(self.inspect_view, "Inspect")
        self.folder_summary = FolderSummary()  # fed by the Inspect view: its folder, its models
        self.tabs.addTab(self.folder_summary, "Folder")
        self.inspect_view.frame_scored.connect(self.folder_summary.add)
        self.inspect_view.scoring_reset.connect(self.folder_summary.reset)
        self.inspect_view.models.pair_changed.connect(self.folder_summary.set_pair)
        self.setCentralWidget(self.tabs)

        self.error_box = QMessageBox(QMessageBox.Warning, "PIT Studio", "", parent=self)
        self.error_box.setWindowModality(Qt.WindowModal)
        self.info_box = QMessageBox(QMessageBox.Information, "PIT Studio", "", parent=self)
        self.task_bar = QProgressBar(maximumWidth=220, textVisible=True)
        self.task_cancel = QPushButton("Cancel")
        self.task_cancel.clicked.connect(self.cancel_tasks)
        for w in (self.task_bar, self.task_cancel):
            self.statusBar().addPermanentWidget(w)
            w.hide()

        # inference thread: predictions for the Inspect view
        self.inference = InferenceWorker(inference_device())
        self.inspect_view.inference = self.inference
        self.inference.ready.connect(self.inspect_view.on_ready)
        self.inference.models_loaded.connect(self.inspect_view.on_models_loaded)
        self.inference.failed.connect(self.on_inference_failed)
        self.inference_thread = start_thread(self.inference, "inference")

        self._inspect_status = ""  # the Inspect view's last word (its frame, its models): shown on its tab only
        self.inspect_view.status.connect(self.say_inspect)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.inspect_view.export_view_requested.connect(self.ask_export_view)
        self.inspect_view.export_folder_requested.connect(self.ask_export_folder)
        self.inspect_view.open_folder_requested.connect(self.ask_open_frames)
        self.inspect_view.open_checkpoint_requested.connect(self.ask_open_checkpoint)
        tv = self.train_view
        tv.start_requested.connect(self.start_training)
        tv.pause_requested.connect(self.toggle_pause)
        tv.stop_requested.connect(self.stop_training)
        tv.load_config_requested.connect(self.ask_load_config)
        tv.save_config_requested.connect(self.ask_save_config)
        tv.make_demo_requested.connect(self.ask_make_demo)
        tv.form.check_requested.connect(self.check_data)
        tv.plots.compare_requested.connect(self.ask_compare_run)
        tv.plots.export_requested.connect(self.ask_export_plots)

        self.follow_timer = QTimer(self, interval=FOLLOW_MS)
        self.follow_timer.timeout.connect(self.follow_run)
        self._build_menus()
        self.restore_settings()
        # the first screen already shows a comparison: the shipped demo models on the demo frames
        a, b, frames = demo_inputs()
        if demo_models:
            self.inspect_view.set_models(a, b)
        if demo_frames:
            self.open_frames(frames, remember=False)
        self.say("ready")

    # menus and shortcuts ---------------------------------------------------------------------------
    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self):
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "Open run…", self.ask_open_run, "Ctrl+R")
        self._action(file, "Add models (the last in panel B)…", lambda: self.ask_open_checkpoint("b"), "Ctrl+K")
        self._action(file, "Add a model to panel A…", lambda: self.ask_open_checkpoint("a"), "Ctrl+Shift+K")
        self._action(file, "Open frames…", self.ask_open_frames, "Ctrl+O")
        self.recent_menu = file.addMenu("Open recent")
        file.addSeparator()
        self._action(file, "Export view…", self.ask_export_view, "Ctrl+E")
        self._action(file, "Export folder…", self.ask_export_folder, "Ctrl+Shift+E")
        file.addSeparator()
        self._action(file, "Quit", self.close, QKeySequence.Quit)
        train = bar.addMenu("&Train")
        self.start_action = self._action(train, "Start", self.start_training, "Ctrl+Return")
        self.pause_action = self._action(train, "Pause / resume", self.toggle_pause, "Ctrl+P")
        self.stop_action = self._action(train, "Stop", self.stop_training, "Ctrl+.")
        self._sync_train_actions()
        train.addSeparator()
        self._action(train, "Load config…", self.ask_load_config, "Ctrl+L")
        self._action(train, "Save config…", self.ask_save_config, "Ctrl+S")
        view = bar.addMenu("&View")
        self._action(view, "Train", lambda: self.tabs.setCurrentIndex(0), "Ctrl+1")
        self._action(view, "Inspect", lambda: self.tabs.setCurrentIndex(1), "Ctrl+2")
        self._action(view, "Folder summary", lambda: self.tabs.setCurrentIndex(2), "Ctrl+3")
        self._action(view, "Next frame", lambda: self.inspect_view.step(1), "PgDown")
        self._action(view, "Previous frame", lambda: self.inspect_view.step(-1), "PgUp")
        self._action(view, "Toggle class boundaries", self.inspect_view.boundaries.toggle, "Ctrl+B")
        self._action(view, "Fit to panel (reset zoom)", lambda: self.inspect_view.fit(), "Ctrl+0")
        view.addSeparator()
        self._action(view, "Focus: one panel fills the view", self._toggle_focus, "F")
        self._action(view, "Focus: flip A → B → third panel", lambda: self._focus_flip(1), "Space")
        self._action(view, "Focus: flip back", lambda: self._focus_flip(-1), "Shift+Space")
        self._rebuild_recent()

    def _sync_train_actions(self) -> None:
        """Train ▸ Start, Pause and Stop as enabled as the Train view's buttons: Pause and Stop only in a run."""
        tv = self.train_view
        for action, button in ((self.start_action, tv.start), (self.pause_action, tv.pause),
                               (self.stop_action, tv.stop)):
            action.setEnabled(button.isEnabled())

    def _toggle_focus(self) -> None:
        self.tabs.setCurrentIndex(1)
        self.inspect_view.compared.toggle_focus()

    def _focus_flip(self, step: int) -> None:
        self.tabs.setCurrentIndex(1)
        self.inspect_view.compared.flip(step)

    # messages ---------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def say_inspect(self, text: str) -> None:
        self._inspect_status = text
        if self.tabs.currentWidget() is self.inspect_view:
            self.say(text)

    def _tab_changed(self, _index: int) -> None:
        """Inspect's frame name is not the Train view's news: each tab's status bar says its own."""
        bar = self.statusBar()
        if self.tabs.currentWidget() is self.inspect_view:
            if self._inspect_status:
                self.say(self._inspect_status)
        elif bar.currentMessage() and bar.currentMessage() == self._inspect_status:
            bar.clearMessage()

    def show_error(self, line: str, details: str = "") -> None:
        """The one-line reason in a dialog; a bug's traceback goes to the details and stderr. An
        error arriving while the dialog is up (the window-modal dialog blocks other actions, so it
        comes from the same one: a second bad frame of a folder) joins it on a line of its own,
        rather than replacing the first; one already on it is not repeated."""
        box = self.error_box
        shown = box.text().split("\n") if box.isVisible() else []
        if line in shown:
            return
        box.setText("\n".join(shown + [line]))
        if details or not shown:
            box.setDetailedText(details)
        if details:
            print(details, file=sys.stderr)
        self.say(line)
        box.show()

    def show_info(self, title: str, text: str, details: str = "") -> None:
        self.info_box.setText(title)
        self.info_box.setInformativeText(text)
        self.info_box.setDetailedText(details)
        self.info_box.show()

    def confirm(self, title: str, text: str) -> bool:
        return QMessageBox.question(self, title, text) == QMessageBox.Yes

    @Slot(str, str)
    def on_inference_failed(self, path: str, line: str) -> None:
        line = line if not path or path in line else f"{line} [{Path(path).name}]"
        if path and not self.inspect_view.mark_unreadable(Path(path), line):
            return  # told once already (a frame asked for again), or a frame of a folder since closed
        self.show_error(line)

    # settings and recent files -----------------------------------------------------------------------
    def restore_settings(self) -> None:
        s = self.settings
        for key, restore in (("geometry", self.restoreGeometry), ("state", self.restoreState),
                             ("train_splitter", self.train_view.splitter.restoreState),
                             ("inspect_splitter", self.inspect_view.splitter.restoreState)):
            value = s.value(key)
            if isinstance(value, QByteArray):
                restore(value)
        if s.value("geometry") is None:
            self.resize(1440, 900)
        iv = self.inspect_view
        iv.opacity.setValue(int(s.value("opacity", iv.opacity.value())))
        iv.boundaries.setChecked(s.value("boundaries", True) in (True, "true"))
        self.train_view.plots.smoothing.setValue(int(s.value("smoothing", self.train_view.plots.smoothing.value())))
        self.train_view.run_dir.setText(str(s.value("run_dir", "")))
        config = s.value("config_path", "")
        if config and Path(config).is_file():
            try:
                self.train_view.form.set_config(Config.load(config))
            except UserError:
                pass  # a config edited since: the preset stays
        form = s.value("form", "")
        if form:  # the form as it was left, with the folders Make demo data filled in
            try:
                self.train_view.form.set_config(Config.from_dict(tomllib.loads(form), "the saved form"))
            except (UserError, tomllib.TOMLDecodeError):
                pass  # saved by another version: the config above stays
        self.tabs.setCurrentIndex(int(s.value("tab", 1)))

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("state", self.saveState())
        s.setValue("train_splitter", self.train_view.splitter.saveState())
        s.setValue("inspect_splitter", self.inspect_view.splitter.saveState())
        s.setValue("opacity", self.inspect_view.opacity.value())
        s.setValue("boundaries", self.inspect_view.boundaries.isChecked())
        s.setValue("smoothing", self.train_view.plots.smoothing.value())
        s.setValue("run_dir", self.train_view.run_dir.text())
        try:
            s.setValue("form", self.train_view.form.config().to_toml())
        except UserError:
            pass  # a half-edited form is not kept over the last good one
        s.setValue("tab", self.tabs.currentIndex())
        s.sync()

    def last_dir(self) -> str:
        return str(self.settings.value("last_dir", str(Path.cwd())))

    def remember(self, path: Path) -> None:
        path = Path(path).resolve()
        self.settings.setValue("last_dir", str(path if path.is_dir() else path.parent))
        recent = [p for p in self.recent() if p != str(path)]
        self.settings.setValue("recent", [str(path)] + recent[:RECENT_MAX - 1])
        self._rebuild_recent()

    def recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent():
            self._action(self.recent_menu, path, lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.recent()))

    # opening things --------------------------------------------------------------------------------
    def open_path(self, path) -> bool:
        """A run directory, a checkpoint, a config, or frames (a folder or an image), as the command
        line, drag and drop and the recent menu give them."""
        path = Path(path)
        if path.is_dir() and is_run_dir(path):
            return self.open_run(path)
        if path.is_file() and path.suffix.lower() in CHECKPOINT_SUFFIXES:
            return self.open_checkpoint(path, "b")
        if path.is_file() and path.suffix.lower() == ".toml":
            self.tabs.setCurrentIndex(0)
            return self.load_config(path)
        if path.is_dir() or path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            return self.open_frames(path)
        self.show_error(UserError("cannot open this", path, "give a run directory, a checkpoint (.pt), a config "
                                                            "(.toml) or a folder of frames").line())
        return False

    def open_checkpoint(self, path, which: str) -> bool:
        path = Path(path)
        if not path.is_file():
            self.show_error(UserError("checkpoint not found", path, "choose an existing .pt file").line())
            return False
        self.inspect_view.models.add(path, as_a=which == "a")
        self.remember(path)
        self.tabs.setCurrentIndex(1)
        return True

    def open_frames(self, path, remember: bool = True) -> bool:
        path = Path(path)

        def done(inputs):
            self.inspect_view.set_frames(inputs.images)
            if remember:
                self.remember(path)
            if inputs.skipped:
                self.say(f"skipped {len(inputs.skipped)} file(s) that are not images")
        self.run_task(f"listing {path.name}", lambda progress: gather([path]), done)
        self.tabs.setCurrentIndex(1)
        return True

    def open_run(self, run_dir) -> bool:
        run_dir = Path(run_dir)
        try:
            config = run_config(run_dir)
        except UserError as exc:
            self.show_error(exc.line())
            return False
        if self.train_worker is not None:
            self.show_error(UserError("a training run is in progress", run_dir, "stop it before opening another "
                                                                                "run").line())
            return False
        self.follow_timer.stop()
        self.reader = MetricsReader(run_dir)
        self.run_total = config.get("train", {}).get("iterations", 0)
        self.train_view.clear_curves(run_dir.name, self.run_total)
        self.train_view.run_dir.setText(str(run_dir))  # Start now resumes this run (after asking), not the last
        self.train_view.say(f"opened run {run_dir}")

        reader = self.reader

        def done(records):
            if reader is not self.reader:
                return  # another run was opened meanwhile
            self.train_view.add_records(records)
            self._show_run_progress(records)
            self.follow_timer.start()
        self.run_task(f"reading {run_dir.name}", lambda progress: reader.read(), done)
        try:
            checkpoint = latest_checkpoint(run_dir)
            models = self.inspect_view.models
            if models.a < 0:  # nothing in panel A to compare the run with: its baseline there
                models.add(baseline(run_dir), as_a=True)
            # beside the models already open (the source-only one stays); this run's earlier one gives way
            models.add(checkpoint, replace_run=True)
        except UserError:
            pass  # no checkpoint yet: curves only
        self.remember(run_dir)
        self.tabs.setCurrentIndex(0)
        return True

    def follow_run(self) -> None:
        """New records of an opened run that is still growing (written by `pit train` elsewhere)."""
        if self.reader is None:
            return
        records = self.reader.read()
        if self.reader.restarted:  # the run was resumed and rewrote its metrics
            self.train_view.clear_curves(self.reader.path.parent.name, self.run_total)
        if records:
            self.train_view.add_records(records)
            self._show_run_progress(records)

    def _show_run_progress(self, records) -> None:
        if records and self.run_total:
            self.train_view.show_progress(records[-1]["iteration"], self.run_total)

    # dialogs --------------------------------------------------------------------------------------
    def ask_open_run(self):
        folder = QFileDialog.getExistingDirectory(self, "Open a run directory", self.last_dir())
        if folder:
            self.open_path(folder)

    def ask_open_checkpoint(self, which: str = "b"):
        title = f"Add models to Inspect (the last shown in panel {which.upper()})"
        paths, _ = QFileDialog.getOpenFileNames(self, title, self.last_dir(), "Checkpoints (*.pt *.pth)")
        for path in paths:  # several at once: every method of a comparison
            self.open_checkpoint(path, which)

    def ask_open_frames(self):
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of frames (or a Cityscapes split)",
                                                  self.last_dir())
        if folder:
            self.open_frames(folder)

    def ask_compare_run(self):
        folder = QFileDialog.getExistingDirectory(self, "Compare with another run", self.last_dir())
        if folder:
            self.compare_run(folder)

    def compare_run(self, run_dir) -> None:
        run_dir = Path(run_dir)
        if not is_run_dir(run_dir):
            self.show_error(UserError("not a run directory", run_dir, "choose a folder holding metrics.jsonl").line())
            return
        self.run_task(f"reading {run_dir.name}", lambda progress: MetricsReader(run_dir).read(),
                      lambda records: self.train_view.plots.add_reference(records, run_dir.name))

    def ask_export_plots(self):
        path, _ = QFileDialog.getSaveFileName(self, "Export the plots", str(Path(self.last_dir()) / "curves.png"),
                                              "PNG image (*.png);;SVG drawing (*.svg);;CSV, every point (*.csv)")
        if path:
            self.export_plots(path)

    def export_plots(self, path) -> bool:
        try:
            self.train_view.plots.export(path)
        except UserError as exc:
            self.show_error(exc.line())
            return False
        self.say(f"saved {path}")
        return True

    def ask_load_config(self):
        path, _ = QFileDialog.getOpenFileName(self, "Load a config", self.last_dir(), "Config (*.toml)")
        if path:
            self.load_config(path)

    def load_config(self, path) -> bool:
        try:
            config = Config.load(path)
            self.train_view.form.set_config(config)
        except UserError as exc:
            self.show_error(exc.line())
            return False
        self.train_view.preset.setCurrentIndex(0)  # the form no longer shows a preset
        self.train_view.say(f"loaded config {path}")
        for note in config.notes:  # e.g. an older config's flat [method] table, converted
            self.train_view.say(note)
        self.settings.setValue("config_path", str(Path(path).resolve()))
        self.remember(Path(path))
        self.say(f"loaded {path}")
        return True

    def ask_save_config(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save the config", self.last_dir(), "Config (*.toml)")
        if path:
            try:  # a bad form value or an unwritable place: both a UserError (atomic_write maps OSError)
                self.train_view.form.config().save(Path(path))
                self.say(f"saved {path}")
            except UserError as exc:
                self.show_error(exc.line())

    def ask_make_demo(self):
        folder = QFileDialog.getExistingDirectory(self, "Folder for the demo data (empty or new)", self.last_dir())
        if folder:
            self.make_demo_data(folder)

    def make_demo_data(self, out) -> None:
        out = Path(out)
        if out.is_dir() and any(out.iterdir()) and not ((out / "source").is_dir() and (out / "target").is_dir()):
            self.show_error(UserError("folder is not empty", out, "choose an empty or new folder").line())
            return

        def done(paths):
            self.train_view.load_preset("demo.toml")
            self.train_view.form.fields["data.source_root"].setText(str(paths["source"]))
            self.train_view.form.fields["data.target_root"].setText(str(paths["target"]))
            self.say(f"demo data in {out}")

        def make(progress):
            if (out / "source").is_dir() and (out / "target").is_dir():
                return {"source": out / "source", "target": out / "target"}  # made before: reuse it
            return make_demo(out, progress=progress)
        self.run_task("making demo data", make, done)

    def check_data(self, kind: str, root: str, split: str) -> None:
        if not root:
            self.show_error(UserError("no folder given", f"{kind} root", "fill in the folder first").line())
            return

        def done(report):
            summary = report.summary()
            problems = "\n".join(p.error().line() for p in report.problems[:200])
            title = f"{kind}: {report.frames} frame(s), {len(report.problems)} problem(s)"
            first = summary.split("\n", 1)[0]
            if report.problems:  # the reason on the dialog itself, not behind "Show Details"
                first += "\n\n" + report.problems[0].error().line() + \
                    (f"\n(and {len(report.problems) - 1} more: Show Details)" if len(report.problems) > 1 else "")
            self.say(title)
            self.show_info(title, first, summary + ("\n\n" + problems if problems else ""))
        self.run_task(f"checking {Path(root).name}",
                      lambda progress: check_dataset(kind, root, split or None, progress=progress), done)

    # export ----------------------------------------------------------------------------------------
    def ask_export_view(self):
        if self.inspect_view.result() is None:
            self.show_error("error: no frame is shown (Inspect) — open frames and pick one first")
            return
        name = self.inspect_view.current.stem.replace("_leftImg8bit", "") + "_view.png"
        path, _ = QFileDialog.getSaveFileName(self, "Export the view", str(Path(self.last_dir()) / name),
                                              "PNG (*.png)")
        if path:
            self.export_view(path)

    def export_view(self, path) -> bool:
        """Render the view here (fast: the engine's overlays), encode and write the PNG off the
        GUI thread (a 2048x1024 composite takes longer than a frame's time to compress)."""
        image = self.inspect_view.view_image()
        if image is None:
            return False
        path = Path(path)

        self.run_task(f"saving {path.name}", lambda progress: save_png(path, image),
                      lambda _: self.say(f"saved {path}"))
        return True

    def ask_export_folder(self):
        folder = QFileDialog.getExistingDirectory(self, "Export overlays of every frame into", self.last_dir())
        if folder:
            self.export_folder(folder)

    def export_folder(self, out, overwrite: bool = False) -> None:
        view = self.inspect_view
        a, b = view.models.checkpoint("a"), view.models.checkpoint("b")
        if not view.frames or not (a or b):
            self.show_error("error: nothing to export — open frames and a checkpoint first")
            return
        first, second = (a, b) if a and b else (a or b, None)

        def failed(line):
            if line.startswith("error: output exists") and self.confirm("Overwrite?", f"{line}\n\nOverwrite?"):
                self.export_folder(out, overwrite=True)
                return True
            return False
        self.run_task("exporting", lambda progress: export_overlays(first, view.frames, out, second, view.alpha,
                                                                    inference_device(), overwrite, progress),
                      lambda index: self.say(f"exported {len(index['frames'])} frame(s) to {out}"), failed)

    # background tasks ------------------------------------------------------------------------------
    def run_task(self, label: str, function, on_done, on_failed=None) -> TaskWorker:
        worker = TaskWorker(function)
        self.task_bar.setFormat(f"{label} %p%")
        self.task_bar.setValue(0)

        def progress(done, total):
            self.task_bar.setMaximum(max(total, 1))
            self.task_bar.setValue(done)
            self.task_bar.show()
            self.task_cancel.show()

        def ended():  # "checking target…" must not outlive the check
            if self.statusBar().currentMessage() == f"{label}…":
                self.statusBar().clearMessage()

        def done(result):
            ended()
            on_done(result)

        def failed(line, details):
            ended()
            if line == "cancelled":
                self.say(f"{label}: cancelled")
            elif not (on_failed and on_failed(line)):
                self.show_error(line, details)
        relay = Relay(worker, progress, done, failed, self)
        thread = start_thread(worker, label, (self._reap_tasks, relay.deleteLater))
        self.tasks.append((worker, thread))
        self.say(f"{label}…")
        return worker

    def _reap_tasks(self) -> None:
        for worker, thread in list(self.tasks):
            if thread.isFinished():
                thread.wait()
                self.tasks.remove((worker, thread))
        if not self.tasks:
            self.task_bar.hide()
            self.task_cancel.hide()

    def cancel_tasks(self) -> None:
        for worker, _ in self.tasks:
            worker.cancel()

    # training ---------------------------------------------------------------------------------------
    @property
    def training(self) -> bool:
        return self.train_worker is not None

    def start_training(self) -> bool:
        if self.training:
            return False
        try:
            config = self.train_view.form.config_to_train()
        except UserError as exc:
            self.show_error(exc.line())
            return False
        run_dir = self.train_view.default_run_dir()
        resume = _has_checkpoints(run_dir)
        if resume:
            fresh = _next_free(run_dir)
            if not self.confirm("Resume?", f"{run_dir} already holds checkpoints.\n\nYes: resume that run.\n"
                                           f"No: start a new run in {fresh}."):
                run_dir, resume = fresh, False
                self.train_view.run_dir.setText(str(run_dir))
        self.follow_timer.stop()
        self.reader = None
        worker = TrainWorker(config, run_dir, resume)
        worker.started.connect(self.on_started)
        worker.steps.connect(self.on_steps)
        worker.evaluated.connect(self.on_evaluated)
        worker.health.connect(self.on_health)
        worker.checkpoint.connect(self.on_checkpoint)
        worker.message.connect(self.train_view.say)
        worker.finished.connect(self.on_finished)
        self.train_worker = worker
        self.train_thread = start_thread(worker, "trainer", (self._join_trainer,))
        self.train_view.clear_curves(run_dir.name)
        self.train_view.set_running(True)
        self._sync_train_actions()
        self.train_view.say(f"starting {run_dir}")
        self.tabs.setCurrentIndex(0)
        self.say("training…")
        return True

    def toggle_pause(self) -> None:
        if not self.training:
            return
        trainer = self.train_worker.trainer
        if trainer.paused:
            self.train_worker.resume()
            self.say("resumed")
        else:
            self.train_worker.pause()
            self.say("paused (after the current step)")
        self.train_view.set_running(True, trainer.paused)
        self._sync_train_actions()

    def stop_training(self) -> None:
        if self.training:
            self.train_worker.stop()
            self.train_view.stop.setEnabled(False)
            self._sync_train_actions()
            self.say("stopping after the current step…")

    @Slot(object)
    def on_started(self, event) -> None:
        self.run_total = event.total_iterations
        self.train_view.plots.set_x_max(event.total_iterations)
        self.train_view.show_progress(event.start_iteration, event.total_iterations)
        self.train_view.say(f"training on {event.device}, {event.total_iterations} iterations, run {event.run_dir}")
        self.remember(Path(event.run_dir))

    @Slot(list)
    def on_steps(self, steps) -> None:
        self.train_view.plots.add_records([{"kind": "step", "iteration": s.iteration, "time": s.time, "lr": s.lr,
                                            **s.losses} for s in steps])
        last = steps[-1]
        self.train_view.show_progress(last.iteration, self.run_total, last.its_per_s, last.eta_s)

    @Slot(object)
    def on_evaluated(self, event) -> None:
        self.train_view.plots.add_records([{"kind": "eval", "iteration": event.iteration, "time": event.time,
                                            "miou": event.subsets}])
        self.train_view.say(f"evaluated at {event.iteration}{event.scored_on}: mIoU {100 * event.miou:.1f}")

    @Slot(object)
    def on_health(self, event) -> None:
        self.train_view.health.add_records([{"kind": "health", "iteration": event.iteration, "time": event.time,
                                             **event.record}])

    @Slot(object)
    def on_checkpoint(self, event) -> None:
        self.train_view.say(f"checkpoint {Path(event.path).name}")
        self.say(f"saved {event.path}")
        view = self.inspect_view
        if view.follow_training.isChecked():  # Inspect shows the run as it trains
            view.models.add(event.path, replace_run=True)

    @Slot(object)
    def on_finished(self, event) -> None:
        self.train_view.say(event.message or event.reason)  # "stopped at iteration 391", not "stopped: stopped …"
        if event.iteration and self.run_total:  # a stop falls between logged steps: the bar shows where it ended
            self.train_view.show_progress(event.iteration, self.run_total)
        if event.reason == "failed":
            self.show_error(event.message, event.traceback)
        else:
            self.say(event.message)

    @Slot()
    def _join_trainer(self) -> None:
        if self.train_thread is not None:
            self.train_thread.wait()
        run_dir = self.train_worker.trainer.run_dir if self.train_worker else None
        self.train_worker = self.train_thread = None
        self.train_view.set_running(False)
        self._sync_train_actions()
        if run_dir is not None:
            try:  # the newest checkpoint of the run just trained is what the user inspects next
                self.inspect_view.models.add(latest_checkpoint(run_dir), replace_run=True)
            except UserError:
                pass
        if self._close_when_stopped:
            self.close()

    def ready_for_screenshot(self) -> bool:
        """Nothing left loading: background tasks done, the selected frame drawn and the
        thumbnails of (up to 64) frames in."""
        view = self.inspect_view
        return not self.tasks and (not view.frames or view.result() is not None
                                   and view.settled() >= min(len(view.frames), 64))

    # drag and drop ---------------------------------------------------------------------------------
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event):
        for url in event.mimeData().urls():
            self.open_path(url.toLocalFile())
        event.acceptProposedAction()

    # closing ---------------------------------------------------------------------------------------
    def closeEvent(self, event):
        if self.training:
            if not self._close_when_stopped:
                if not self.confirm("Training is running", "Stop the training (a checkpoint is saved) and quit?"):
                    event.ignore()
                    return
                self._close_when_stopped = True
                self.stop_training()
            event.ignore()  # closes for real once the trainer has stopped and its thread is joined
            return
        self.shutdown()
        self.save_settings()
        event.accept()

    def shutdown(self) -> None:
        """Stop and join every thread this window started."""
        self.follow_timer.stop()
        self.cancel_tasks()
        for _, thread in list(self.tasks):
            thread.quit()
            thread.wait()
        self.tasks.clear()
        self.inference.shutdown()
        self.inference_thread.quit()
        self.inference_thread.wait()


def app() -> QApplication:
    return QApplication.instance() or QApplication(sys.argv)


def _has_checkpoints(run_dir: Path) -> bool:
    checkpoints = run_dir / "checkpoints"
    return checkpoints.is_dir() and any(checkpoints.glob("*.pt"))


def _next_free(run_dir: Path) -> Path:
    """run_dir-2, -3, ...: the first sibling without checkpoints, for a new run beside an old one."""
    n = 2
    while _has_checkpoints(run_dir.with_name(f"{run_dir.name}-{n}")):
        n += 1
    return run_dir.with_name(f"{run_dir.name}-{n}")
