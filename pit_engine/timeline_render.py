"""A run's timeline drawn: one health frame at one step as its four panels (frame | pseudo-labels |
prediction | truth), and the exports of the Timeline view (the step as PNG, the frame's whole
timeline as an animated GIF or WebP, written by pillow). The GUI shows these same arrays."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pit_engine import overlay
from pit_engine.data.io import atomic_write
from pit_engine.errors import UserError
from pit_engine.timeline import Timeline

PANELS = ("frame", "pseudo-labels", "prediction", "truth")
ANIMATED = (".gif", ".webp")


def panels(timeline: Timeline, step: int, frame: int, alpha: float = 0.6) -> list[tuple[str, np.ndarray]]:
    """(title, RGB) of the four panels: the pseudo-labels the method trains on (ignore shows the
    frame; PIT's seeds in cyan), the student's prediction, the truth (blank without labels). A
    step whose file went since it was listed shows blank panels titled so."""
    image, maps = timeline.images[frame], timeline.maps(step)
    blank = np.full_like(image, 40)
    if maps is None:
        return [("frame", image), ("step unreadable", blank), ("step unreadable", blank),
                ("truth" if timeline.truth is not None else "no truth", blank)]
    if "pseudo" in maps:
        pseudo = overlay.pseudo_labels(image, maps["pseudo"][frame], timeline.seeds(step, frame), alpha)
        share = float((maps["pseudo"][frame] != 255).mean())
        pseudo_title = f"pseudo-labels ({100 * share:.0f} % of the frame)"
    else:
        pseudo, pseudo_title = blank, "no pseudo-labels (this method trains on none)"
    prediction = overlay.blend(image, maps["student"][frame], alpha, show_boundaries=True)
    truth = overlay.blend(image, timeline.truth[frame], alpha, show_boundaries=True) \
        if timeline.truth is not None else blank
    return [("frame", image), (pseudo_title, pseudo), ("prediction", prediction),
            ("truth" if timeline.truth is not None else "no truth", truth)]


def picture(timeline: Timeline, step: int, frame: int) -> np.ndarray:
    """The four panels side by side, titled with the frame and the iteration (small frames enlarged)."""
    shown = panels(timeline, step, frame)
    k = overlay.enlargement(timeline.images.shape[2])
    row = overlay.composite([(title, overlay.enlarge(a, k)) for title, a in shown])
    return overlay.titled(row, f"{timeline.names[frame]} at iteration {timeline.iterations[step]}")


def save_step_png(path: str | Path, timeline: Timeline, step: int, frame: int) -> Path:
    path = Path(path)
    atomic_write(path, lambda tmp: Image.fromarray(picture(timeline, step, frame)).save(tmp, format="PNG"))
    return path


def save_animation(path: str | Path, timeline: Timeline, frame: int, ms_per_step: int = 400) -> Path:
    """The frame's whole timeline, a step an image, looping: GIF or WebP by the name's suffix."""
    path = Path(path)
    if path.suffix.lower() not in ANIMATED:
        raise UserError(f"cannot write an animation as '{path.suffix}'", path, "name it .gif or .webp")
    if not timeline.steps:
        raise UserError("the timeline has no steps yet", path, "wait for the first health step")
    images = [Image.fromarray(picture(timeline, i, frame)) for i in range(len(timeline.steps))]
    fmt = "GIF" if path.suffix.lower() == ".gif" else "WEBP"
    atomic_write(path, lambda tmp: images[0].save(tmp, format=fmt, save_all=True, append_images=images[1:],
                                                  duration=ms_per_step, loop=0))
    return path
