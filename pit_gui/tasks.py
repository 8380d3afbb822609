"""The window's background tasks (listing a folder, reading a run, checking data, making the demo
data, exporting): each a TaskWorker on a QThread of its own, with one progress bar and a Cancel
button in the status bar for all of them. It holds the tasks running, and joins their threads."""
from __future__ import annotations

from PySide6.QtCore import QObject, QThread
from PySide6.QtWidgets import QProgressBar, QPushButton

from pit_gui.workers import Relay, TaskWorker, start_thread


class BackgroundTasks(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window  # its status bar, say() and show_error()
        self.running: list[tuple[TaskWorker, QThread]] = []
        self.bar = QProgressBar(maximumWidth=220, textVisible=True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.bar, self.cancel_button):
            window.statusBar().addPermanentWidget(w)
            w.hide()

    def run(self, label: str, function, on_done, on_failed=None) -> TaskWorker:
        """function(progress) in a thread; on_done(result) here, or on_failed(line) (True: handled)
        or the error dialog."""
        worker, window = TaskWorker(function), self.window
        self.bar.setFormat(f"{label} %p%")
        self.bar.setValue(0)

        def progress(done, total):
            self.bar.setMaximum(max(total, 1))
            self.bar.setValue(done)
            self.bar.show()
            self.cancel_button.show()

        def ended():  # "checking target…" must not outlive the check
            if window.statusBar().currentMessage() == f"{label}…":
                window.statusBar().clearMessage()

        def done(result):
            ended()
            on_done(result)

        def failed(line, details):
            ended()
            if line == "cancelled":
                window.say(f"{label}: cancelled")
            elif not (on_failed and on_failed(line)):
                window.show_error(line, details)
        relay = Relay(worker, progress, done, failed, self)
        thread = start_thread(worker, label, (self._reap, relay.deleteLater))
        self.running.append((worker, thread))
        window.say(f"{label}…")
        return worker

    def _reap(self) -> None:
        for worker, thread in list(self.running):
            if thread.isFinished():
                thread.wait()
                self.running.remove((worker, thread))
        if not self.running:
            self.bar.hide()
            self.cancel_button.hide()

    def cancel(self) -> None:
        for worker, _ in self.running:
            worker.cancel()

    def shutdown(self) -> None:
        """Cancel every task and join its thread."""
        self.cancel()
        for _, thread in list(self.running):
            thread.quit()
            thread.wait()
        self.running.clear()
