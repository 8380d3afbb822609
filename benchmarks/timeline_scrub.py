"""How fast the Timeline view scrubs a run's health steps: each step drawn (the four panels, the
category vector, the curves' cursor) and painted, as a user dragging the slider sees it.

    QT_QPA_PLATFORM=offscreen python benchmarks/timeline_scrub.py RUN_DIR [--rounds 5] [--frame 0]

RUN_DIR: a run with a timeline (a demo run: `pit demo --quick --out D` writes D/pit, or a short
`pit train --config resources/demo.toml`). Every round goes through all the steps forwards and
back; the first round reads each step's maps from disk, later ones from the view's few kept
steps where they fit. Reported: steps/s over all rounds, and the slowest step.
"""
from __future__ import annotations

import argparse
import statistics
import time

from PySide6.QtCore import QSettings

from pit_gui.main_window import MainWindow, app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frame", type=int, default=0)
    args = parser.parse_args()
    qt = app()
    import tempfile
    settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.IniFormat)
    window = MainWindow(settings, demo_models=False, demo_frames=False)
    window.resize(1600, 900)
    window.show()
    window.open_run(args.run_dir)
    while window.tasks:
        qt.processEvents()
    view = window.timeline_view
    window.tabs.setCurrentWidget(view)
    view.frame.setCurrentIndex(args.frame)
    qt.processEvents()
    n = len(view.timeline.steps)
    order = list(range(n)) + list(range(n - 1, -1, -1))
    times = []
    for _ in range(args.rounds):
        for step in order:
            start = time.perf_counter()
            view.slider.setValue(step)
            view.graphics.repaint()  # painted now, not whenever the event loop gets to it
            qt.processEvents()
            times.append(time.perf_counter() - start)
    total = sum(times)
    print(f"{len(times)} steps drawn ({n} health steps of {view.timeline.frames} frames, "
          f"{view.timeline.images.shape[2]}x{view.timeline.images.shape[1]}): {len(times) / total:.1f} steps/s, "
          f"median {1000 * statistics.median(times):.1f} ms, slowest {1000 * max(times):.1f} ms")
    window.close()


if __name__ == "__main__":
    main()
