"""What the Train view's form asks of the window besides training: save its config, make the demo
data (filled into the form), and check a data folder as `pit data check` does. The work is the
engine's, run off the GUI thread; this asks where and tells the outcome."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from pit_engine.data.check import check_dataset
from pit_engine.data.demo import make_demo
from pit_engine.errors import UserError


class FormTasks:
    def __init__(self, window):
        self.window = window

    def ask_save_config(self):
        window = self.window
        path, _ = QFileDialog.getSaveFileName(window, "Save the config", window.remembered.last_dir(),
                                              "Config (*.toml)")
        if path:
            try:  # a bad form value or an unwritable place: both a UserError (atomic_write maps OSError)
                window.train_view.form.config().save(Path(path))
                window.say(f"saved {path}")
            except UserError as exc:
                window.show_error(exc.line())

    def ask_make_demo(self):
        folder = QFileDialog.getExistingDirectory(self.window, "Folder for the demo data (empty or new)",
                                                  self.window.remembered.last_dir())
        if folder:
            self.make_demo_data(folder)

    def make_demo_data(self, out) -> None:
        out, window, tv = Path(out), self.window, self.window.train_view
        if out.is_dir() and any(out.iterdir()) and not ((out / "source").is_dir() and (out / "target").is_dir()):
            window.show_error(UserError("folder is not empty", out, "choose an empty or new folder").line())
            return

        def done(paths):
            tv.load_preset("demo.toml")
            tv.form.fields["data.source_root"].setText(str(paths["source"]))
            tv.form.fields["data.target_root"].setText(str(paths["target"]))
            window.say(f"demo data in {out}")

        def make(progress):
            if (out / "source").is_dir() and (out / "target").is_dir():
                return {"source": out / "source", "target": out / "target"}  # made before: reuse it
            return make_demo(out, progress=progress)
        window.background.run("making demo data", make, done)

    def check_data(self, kind: str, root: str, split: str) -> None:
        window = self.window
        if not root:
            window.show_error(UserError("no folder given", f"{kind} root", "fill in the folder first").line())
            return

        def done(report):
            summary = report.summary()
            problems = "\n".join(p.error().line() for p in report.problems[:200])
            title = f"{kind}: {report.frames} frame(s), {len(report.problems)} problem(s)"
            first = summary.split("\n", 1)[0]
            if report.problems:  # the reason on the dialog itself, not behind "Show Details"
                first += "\n\n" + report.problems[0].error().line() + \
                    (f"\n(and {len(report.problems) - 1} more: Show Details)" if len(report.problems) > 1 else "")
            window.say(title)
            window.show_info(title, first, summary + ("\n\n" + problems if problems else ""))
        window.background.run(f"checking {Path(root).name}",
                              lambda progress: check_dataset(kind, root, split or None, progress=progress), done)
