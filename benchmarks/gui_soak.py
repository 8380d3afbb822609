"""Soak: the window open with the demo training running for a long time (run by hand).

Every minute it records the process's resident memory, the training iteration and the
lateness of a 10 ms timer (p99, max) while the window alternates between the Train view
(curves growing) and the Inspect view (stepping through cached frames every few seconds).

    python benchmarks/gui_soak.py [--minutes 30] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--json")
    args = parser.parse_args()

    from PySide6.QtCore import QSettings, QTimer

    from pit_engine.config import Config
    from pit_engine.data.demo import make_demo
    from pit_gui.main_window import MainWindow, app as make_app
    from pit_resources import resource

    app = make_app()
    scratch = Path(tempfile.mkdtemp(prefix="pit-gui-soak-"))
    window = MainWindow(QSettings(str(scratch / "settings.ini"), QSettings.IniFormat))
    window.confirm = lambda *_: True
    window.resize(1440, 900)
    window.show()
    demo = make_demo(scratch / "demo")
    raw = Config.load(resource("demo.toml")).to_dict()
    raw["data"].update(source_root=str(demo["source"]), target_root=str(demo["target"]))
    raw["train"].update(iterations=10 ** 6, log_every=1, eval_every=500, checkpoint_every=500, keep_checkpoints=1,
                        device="cpu")
    window.train_view.form.set_config(Config.from_dict(raw))
    window.train_view.run_dir.setText(str(scratch / "run"))
    window.start_training()

    lateness: list[float] = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        lateness.append(max(0.0, 1000 * (now - last[0]) - 10))
        last[0] = now
    timer = QTimer(interval=10)
    timer.timeout.connect(tick)
    timer.start()

    rows, start = [], time.monotonic()
    next_minute, next_switch, next_tab = start + 60, start + 3, start + 30
    while time.monotonic() - start < args.minutes * 60:
        app.processEvents()
        time.sleep(0.001)
        now = time.monotonic()
        if now >= next_switch:
            window.inspect_view.step(1 if window.inspect_view.list.currentRow() < 7 else -7)
            next_switch = now + 3
        if now >= next_tab:
            window.tabs.setCurrentIndex(1 - window.tabs.currentIndex())
            next_tab = now + 30
        if now >= next_minute:
            late = np.asarray(lateness[1:])
            lateness.clear()
            points = window.train_view.plots.points("seg")[0]
            rows.append({"minute": len(rows) + 1, "iteration": points[-1] if points else 0, "rss_mib": round(rss_mib(), 1),
                         "stall_p99_ms": round(float(np.percentile(late, 99)), 2), "stall_max_ms": round(float(late.max()), 2)})
            print(json.dumps(rows[-1]), flush=True)
            next_minute = now + 60
    timer.stop()
    window.close()
    while window.training:
        app.processEvents()
        time.sleep(0.01)
    window.close()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    first, last_row = rows[min(1, len(rows) - 1)], rows[-1]
    print(f"RSS minute {first['minute']} → {last_row['minute']}: {first['rss_mib']} → {last_row['rss_mib']} MiB; "
          f"stall p99 {first['stall_p99_ms']} → {last_row['stall_p99_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
