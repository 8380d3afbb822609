"""The window's menus and their shortcuts: File (open, recent, export, quit), Train (start, pause,
stop, configs) and View (the tabs, frames, zoom, focus mode). It holds the actions whose state
changes: Train's three, enabled as the Train view's buttons, and the Open recent menu."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence


def add_action(menu, text: str, slot, shortcut, parent) -> QAction:
    action = QAction(text, parent)  # the window's: its shortcut works wherever the window has focus
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(slot)
    menu.addAction(action)
    return action


class Menus:
    def __init__(self, window):
        self.window = window
        add = self._add
        w, opener, forms, exports, training = window, window.opener, window.forms, window.exports, window.training_run
        iv, tabs = window.inspect_view, window.tabs
        bar = window.menuBar()
        file = bar.addMenu("&File")
        add(file, "Open run…", opener.ask_open_run, "Ctrl+R")
        add(file, "Add models (the last in panel B)…", lambda: opener.ask_open_checkpoint("b"), "Ctrl+K")
        add(file, "Add a model to panel A…", lambda: opener.ask_open_checkpoint("a"), "Ctrl+Shift+K")
        add(file, "Open frames…", opener.ask_open_frames, "Ctrl+O")
        self.recent_menu = file.addMenu("Open recent")
        file.addSeparator()
        add(file, "Export view…", exports.ask_export_view, "Ctrl+E")
        add(file, "Export folder…", exports.ask_export_folder, "Ctrl+Shift+E")
        file.addSeparator()
        add(file, "Quit", w.close, QKeySequence.Quit)
        train = bar.addMenu("&Train")
        self.start_action = add(train, "Start", training.start, "Ctrl+Return")
        self.pause_action = add(train, "Pause / resume", training.toggle_pause, "Ctrl+P")
        self.stop_action = add(train, "Stop", training.stop, "Ctrl+.")
        self.sync_train_actions()
        train.addSeparator()
        add(train, "Load config…", opener.ask_load_config, "Ctrl+L")
        add(train, "Save config…", forms.ask_save_config, "Ctrl+S")
        view = bar.addMenu("&View")
        add(view, "Train", lambda: tabs.setCurrentIndex(0), "Ctrl+1")
        add(view, "Inspect", lambda: tabs.setCurrentIndex(1), "Ctrl+2")
        add(view, "Folder summary", lambda: tabs.setCurrentIndex(2), "Ctrl+3")
        add(view, "Timeline", lambda: tabs.setCurrentIndex(3), "Ctrl+4")
        add(view, "Next frame", lambda: iv.step(1), "PgDown")
        add(view, "Previous frame", lambda: iv.step(-1), "PgUp")
        add(view, "Toggle class boundaries", iv.boundaries.toggle, "Ctrl+B")
        add(view, "Fit to panel (reset zoom)", lambda: iv.fit(), "Ctrl+0")
        view.addSeparator()
        add(view, "Focus: one panel fills the view", self._toggle_focus, "F")
        add(view, "Focus: flip A → B → third panel", lambda: self._focus_flip(1), "Space")
        add(view, "Focus: flip back", lambda: self._focus_flip(-1), "Shift+Space")
        window.remembered.recent_changed.connect(self.show_recent)
        self.show_recent(window.remembered.recent())

    def show_recent(self, paths: list) -> None:
        self.recent_menu.clear()
        for path in paths:
            self._add(self.recent_menu, path, lambda _=False, p=path: self.window.open_path(p))
        self.recent_menu.setEnabled(bool(paths))

    def _add(self, menu, text: str, slot, shortcut=None) -> QAction:
        return add_action(menu, text, slot, shortcut, self.window)

    def sync_train_actions(self) -> None:
        """Train ▸ Start, Pause and Stop as enabled as the Train view's buttons: Pause and Stop only in a run."""
        tv = self.window.train_view
        for action, button in ((self.start_action, tv.start), (self.pause_action, tv.pause),
                               (self.stop_action, tv.stop)):
            action.setEnabled(button.isEnabled())

    def _toggle_focus(self) -> None:
        self.window.tabs.setCurrentIndex(1)
        self.window.inspect_view.compared.toggle_focus()

    def _focus_flip(self, step: int) -> None:
        self.window.tabs.setCurrentIndex(1)
        self.window.inspect_view.compared.flip(step)
