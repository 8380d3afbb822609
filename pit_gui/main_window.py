"""The main window: a shell that builds the Train, Inspect and Folder views and the parts working
for them, and connects them. Its own: the tabs, the status bar's messages and dialogs, the
inference thread, drag and drop and closing. Everything it computes, the engine computes.

The Timeline tab (timeline_view.py) shows a run's health frames step by step.
The parts: menus.py (menus and shortcuts), remembered.py (settings and recent files), opening.py
(runs, checkpoints, configs, frames, drops), training.py (the training run), handoff.py (Train →
Inspect), form_tasks.py (the form's data tasks), exporting.py (exports), tasks.py (background tasks)."""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Slot
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QTabWidget

from pit_gui.exporting import Exports
from pit_gui.folder_summary import FolderSummary
from pit_gui.form_tasks import FormTasks
from pit_gui.handoff import Handoff, demo_inputs
from pit_gui.inspect_view import InspectView
from pit_gui.menus import Menus
from pit_gui.opening import Opener
from pit_gui.remembered import Remembered
from pit_gui.tasks import BackgroundTasks
from pit_gui.timeline_view import TimelineView
from pit_gui.train_view import TrainView
from pit_gui.training import TrainingRun
from pit_gui.workers import InferenceWorker, inference_device, start_thread


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, demo_models: bool = True, demo_frames: bool = True):
        super().__init__()
        self.setWindowTitle("PIT Studio")
        self.setAcceptDrops(True)
        self.train_view = TrainView()
        self.inspect_view = InspectView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.train_view, "Train")
        self.tabs.addTab(self.inspect_view, "Inspect")
        self.folder_summary = FolderSummary(self.inspect_view.state)  # the Inspect view's folder, its models
        self.tabs.addTab(self.folder_summary, "Folder")
        self.timeline_view = TimelineView()  # a run's mechanism on its health frames, step by step
        self.tabs.addTab(self.timeline_view, "Timeline")
        self.setCentralWidget(self.tabs)

        self.error_box = QMessageBox(QMessageBox.Warning, "PIT Studio", "", parent=self)
        self.error_box.setWindowModality(Qt.WindowModal)
        self.info_box = QMessageBox(QMessageBox.Information, "PIT Studio", "", parent=self)
        self.remembered = Remembered(settings if settings is not None else QSettings("PIT Studio", "pit-gui"), self)
        self.background = BackgroundTasks(self)
        self.handoff = Handoff(self.inspect_view)
        self.opener = Opener(self)
        self.training_run = TrainingRun(self)
        self.forms = FormTasks(self)
        self.exports = Exports(self)
        # what the command line, the tests and the benchmarks call on the window
        self.open_path, self.open_checkpoint = self.opener.open_path, self.opener.open_checkpoint
        self.open_frames, self.open_run, self.load_config = (self.opener.open_frames, self.opener.open_run,
                                                             self.opener.load_config)
        self.compare_run, self.recent = self.opener.compare_run, self.remembered.recent
        self.remember, self.tasks = self.remembered.remember, self.background.running  # (worker, thread)s running
        self.start_training, self.toggle_pause = self.training_run.start, self.training_run.toggle_pause
        self.stop_training = self.training_run.stop
        self.check_data, self.make_demo_data = self.forms.check_data, self.forms.make_demo_data
        self.export_view, self.export_folder = self.exports.export_view, self.exports.export_folder
        self.export_plots = self.exports.export_plots

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
        iv, tv = self.inspect_view, self.train_view
        iv.export_view_requested.connect(self.exports.ask_export_view)
        iv.export_folder_requested.connect(self.exports.ask_export_folder)
        iv.open_folder_requested.connect(self.opener.ask_open_frames)
        iv.open_checkpoint_requested.connect(self.opener.ask_open_checkpoint)
        iv.what_if.export_button.clicked.connect(self.exports.ask_export_what_if)
        tv.start_requested.connect(self.training_run.start)
        tv.pause_requested.connect(self.training_run.toggle_pause)
        tv.stop_requested.connect(self.training_run.stop)
        tv.load_config_requested.connect(self.opener.ask_load_config)
        tv.save_config_requested.connect(self.forms.ask_save_config)
        tv.make_demo_requested.connect(self.forms.ask_make_demo)
        tv.form.check_requested.connect(self.forms.check_data)
        tv.plots.compare_requested.connect(self.opener.ask_compare_run)
        tv.plots.export_requested.connect(self.exports.ask_export_plots)
        tl = self.timeline_view
        tl.status.connect(self.say)
        tl.export_animation_button.clicked.connect(lambda: self.exports.ask_export_timeline(True))
        tl.export_png_button.clicked.connect(lambda: self.exports.ask_export_timeline(False))

        self.menus = Menus(self)
        self.recent_menu = self.menus.recent_menu
        self.remembered.restore(self)
        # the first screen already shows a comparison: the shipped demo models on the demo frames
        a, b, frames = demo_inputs()
        if demo_models:
            self.inspect_view.set_models(a, b)
        if demo_frames:
            self.open_frames(frames, remember=False)
        self.say("ready")

    # what the parts share --------------------------------------------------------------------------
    @property
    def training(self) -> bool:
        """A training run is going on (the Train view's)."""
        return self.training_run.active

    @property
    def train_thread(self):
        return self.training_run.thread

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

    def ready_for_screenshot(self) -> bool:
        """Nothing left loading: background tasks done, the selected frame drawn and the
        thumbnails of (up to 64) frames in."""
        view = self.inspect_view
        return not self.tasks and (not view.frames or view.result() is not None
                                   and view.settled() >= min(len(view.frames), 64))

    # drag and drop, closing -----------------------------------------------------------------------------
    def dragEnterEvent(self, event):
        if self.opener.accepts(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event):
        self.opener.drop(event.mimeData())
        event.acceptProposedAction()

    def closeEvent(self, event):
        if not self.training_run.close_requested():
            event.ignore()  # closes for real once the trainer has stopped and its thread is joined
            return
        self.shutdown()
        self.remembered.save(self)
        event.accept()

    def shutdown(self) -> None:
        """Stop and join every thread this window started."""
        self.opener.follow_timer.stop()
        self.timeline_view.follow_timer.stop()
        self.timeline_view.play_timer.stop()
        self.background.shutdown()
        self.inference.shutdown()
        self.inference_thread.quit()
        self.inference_thread.wait()


def app() -> QApplication:
    return QApplication.instance() or QApplication(sys.argv)
