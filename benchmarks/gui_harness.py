"""What the GUI benchmarks share: the real main window on throw-away settings, the demo
training started in it, and a 10 ms timer whose lateness is the event loop's stall."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer  # noqa: E402

from pit_engine.config import Config  # noqa: E402
from pit_engine.data.demo import make_demo  # noqa: E402
from pit_gui.main_window import MainWindow, app as make_app  # noqa: E402
from pit_resources import resource  # noqa: E402


def open_window(prefix: str):
    """(app, window, scratch folder): the window shown at 1440x900, answering yes to its questions."""
    app = make_app()
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    window = MainWindow(QSettings(str(scratch / "settings.ini"), QSettings.IniFormat))
    window.confirm = lambda *_: True
    window.resize(1440, 900)
    window.show()
    return app, window, scratch


def start_demo_training(window, scratch: Path, **train) -> None:
    """The demo preset on freshly made demo data, on the CPU, with `train` overrides."""
    demo = make_demo(scratch / "demo")
    raw = Config.load(resource("demo.toml")).to_dict()
    raw["data"].update(source_root=str(demo["source"]), target_root=str(demo["target"]))
    raw["train"].update(device="cpu", **train)
    window.train_view.form.set_config(Config.from_dict(raw))
    window.train_view.run_dir.setText(str(scratch / "run"))
    window.start_training()


def steps_seen(window) -> int:
    series = window.train_view.plots.series["main"].get("seg")
    return series.n if series else 0


def wait(app, done, timeout_s: float = 600) -> None:
    end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > end:
            raise TimeoutError
        app.processEvents()
        time.sleep(0.005)


class StallTimer:
    """A 10 ms QTimer recording how late each tick comes (ms)."""

    def __init__(self):
        self.lateness: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer(interval=10)
        self._timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        self.lateness.append(max(0.0, 1000 * (now - self._last) - 10))
        self._last = now

    def start(self):
        self.lateness.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self):
        self._timer.stop()

    def take(self) -> dict:
        """The ticks since the last take (the first one skipped), summarised; then forgotten."""
        values, self.lateness = self.lateness[1:], []
        return stats(values)


def stats(values_ms) -> dict:
    v = np.asarray(values_ms)
    return {"n": int(v.size), "median": round(float(np.median(v)), 2), "p99": round(float(np.percentile(v, 99)), 2),
            "max": round(float(v.max()), 2)}
