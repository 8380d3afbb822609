"""Exports the window runs for its views: the Inspect view as shown (Export view, a PNG at the
frame's native resolution), every frame's overlays through the engine (Export folder, as `pit
export`), and the Train view's curves (PNG, SVG or CSV). The pictures are the engine's; this asks
where, and writes off the GUI thread."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from pit_engine.data.io import save_png
from pit_engine.errors import UserError
from pit_engine.export import export_overlays
from pit_engine.timeline_render import save_animation, save_step_png
from pit_gui.workers import inference_device


class Exports:
    def __init__(self, window):
        self.window = window

    def _save_name(self, title: str, name: str, kinds: str) -> str:
        window = self.window
        path, _ = QFileDialog.getSaveFileName(window, title, str(Path(window.remembered.last_dir()) / name), kinds)
        return path

    def ask_export_view(self):
        view = self.window.inspect_view
        if view.result() is None:
            self.window.show_error("error: no frame is shown (Inspect) — open frames and pick one first")
            return
        name = view.current.stem.replace("_leftImg8bit", "") + "_view.png"
        path = self._save_name("Export the view", name, "PNG (*.png)")
        if path:
            self.export_view(path)

    def export_view(self, path) -> bool:
        """Render the view here (fast: the engine's overlays), encode and write the PNG off the
        GUI thread (a 2048x1024 composite takes longer than a frame's time to compress)."""
        return self._save_picture(path, self.window.inspect_view.view_image())

    def _save_picture(self, path, image) -> bool:
        """A picture drawn here, encoded and written off the GUI thread; False where there is none."""
        if image is None:
            return False
        path = Path(path)
        self.window.background.run(f"saving {path.name}", lambda progress: save_png(path, image),
                                   lambda _: self.window.say(f"saved {path}"))
        return True

    def ask_export_folder(self):
        folder = QFileDialog.getExistingDirectory(self.window, "Export overlays of every frame into",
                                                  self.window.remembered.last_dir())
        if folder:
            self.export_folder(folder)

    def export_folder(self, out, overwrite: bool = False) -> None:
        window, view = self.window, self.window.inspect_view
        a, b = view.models.checkpoint("a"), view.models.checkpoint("b")
        if not view.frames or not (a or b):
            window.show_error("error: nothing to export — open frames and a checkpoint first")
            return
        first, second = (a, b) if a and b else (a or b, None)

        def failed(line):
            if line.startswith("error: output exists") and window.confirm("Overwrite?", f"{line}\n\nOverwrite?"):
                self.export_folder(out, overwrite=True)
                return True
            return False
        window.background.run("exporting", lambda progress: export_overlays(first, view.frames, out, second,
                                                                            view.alpha, inference_device(),
                                                                            overwrite, progress),
                              lambda index: window.say(f"exported {len(index['frames'])} frame(s) to {out}"),
                              failed)

    def ask_export_timeline(self, animated: bool) -> None:
        view = self.window.timeline_view
        if view.timeline is None or not view.timeline.steps:
            self.window.show_error("error: no timeline is shown — open a run that recorded one first")
            return
        step, frame = view.current
        name = view.timeline.names[frame] + ("_timeline.gif" if animated else
                                             f"_iter{view.timeline.iterations[step]}.png")
        kinds = "Animated GIF (*.gif);;Animated WebP (*.webp)" if animated else "PNG (*.png)"
        path = self._save_name("Export the timeline" if animated else "Export the step", name, kinds)
        if path:
            self.export_timeline(path, animated)

    def export_timeline(self, path, animated: bool) -> None:
        """The frame's whole timeline as an animation, or the step shown as PNG, written off the GUI
        thread (the engine draws and pillow encodes)."""
        view, path = self.window.timeline_view, Path(path)
        timeline, (step, frame) = view.timeline, view.current
        write = (lambda progress: save_animation(path, timeline, frame)) if animated else \
            (lambda progress: save_step_png(path, timeline, step, frame))
        self.window.background.run(f"saving {path.name}", write, lambda _: self.window.say(f"saved {path}"))

    def ask_export_what_if(self) -> None:
        view = self.window.inspect_view
        if not view.what_if.active():
            self.window.show_error("error: no what-if to export — turn on 'Edit the pivot' and click a class "
                                   "in the category chart first")
            return
        path = self._save_name("Export the what-if", view.current.stem.replace("_leftImg8bit", "") + "_what_if.png",
                               "PNG (*.png)")
        if path:
            self.export_what_if(path)

    def export_what_if(self, path) -> bool:
        """The frame, its pseudo-labels as inferred and under the edited pivot, as PNG."""
        return self._save_picture(path, self.window.inspect_view.what_if.picture())

    def ask_export_plots(self):
        path = self._save_name("Export the plots", "curves.png",
                               "PNG image (*.png);;SVG drawing (*.svg);;CSV, every point (*.csv)")
        if path:
            self.export_plots(path)

    def export_plots(self, path) -> bool:
        try:
            self.window.train_view.plots.export(path)
        except UserError as exc:
            self.window.show_error(exc.line())
            return False
        self.window.say(f"saved {path}")
        return True
