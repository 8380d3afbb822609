"""The GUI's responsiveness, measured on the real main window (run by hand, not in the tests).

1. Event-loop stall: a 10 ms QTimer's lateness (actual interval - 10 ms), with the window idle
   and while the demo training runs in the worker thread (logging every step, the Train view
   showing its plots). Target: 99th percentile under 50 ms.
2. Frame switching with cached predictions: from selecting a frame to its panels drawn and
   painted, for the 128x64 demo frames and for 2048x1024 frames (the real Cityscapes frame
   scaled up), idle and during training. Target: under 200 ms.

    python benchmarks/gui_bench.py [--seconds 60] [--json FILE]

QT_QPA_PLATFORM defaults to offscreen; run it under Xvfb (`xvfb-run`) to include a real X server.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from PIL import Image

from gui_harness import StallTimer, open_window, start_demo_training, stats, steps_seen, wait
REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "realdata" / "cityscapes"
FRAME = "frankfurt_000000_000294"


def big_frames(root: Path, n: int = 3) -> Path:
    """n copies of the real frame at 2048x1024 in the Cityscapes layout (with their labels)."""
    image = Image.open(REAL / f"leftImg8bit/val/frankfurt/{FRAME}_leftImg8bit.png").convert("RGB")
    label = Image.open(REAL / f"gtFine/val/frankfurt/{FRAME}_gtFine_labelIds.png")
    (root / "leftImg8bit/val/big").mkdir(parents=True)
    (root / "gtFine/val/big").mkdir(parents=True)
    for i in range(n):
        flip = Image.FLIP_LEFT_RIGHT if i % 2 else None
        img, lab = (image.transpose(flip), label.transpose(flip)) if flip else (image, label)
        img.resize((2048, 1024), Image.BILINEAR).save(root / f"leftImg8bit/val/big/big_{i:06d}_000000_leftImg8bit.png")
        lab.resize((2048, 1024), Image.NEAREST).save(root / f"gtFine/val/big/big_{i:06d}_000000_gtFine_labelIds.png")
    return root / "leftImg8bit/val"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60, help="how long to measure during training")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    app, window, scratch = open_window("pit-gui-bench-")
    view = window.inspect_view
    stall = StallTimer()

    def scored():
        return view.frames and len(view.scores) == len(view.frames)

    def switch_times(rounds: int = 3) -> list[float]:
        out = []
        for _ in range(rounds):
            for row in range(view.list.count()):
                t = time.perf_counter()
                view.list.setCurrentRow(row)
                assert view.result() is not None and view.result().path == view.current  # cached: drawn at once
                window.repaint()  # include painting the panels
                app.processEvents()
                out.append(1000 * (time.perf_counter() - t))
        return out

    def measure_stall(seconds):
        stall.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.001)
        stall.stop()
        return stall.take()

    results = {"platform": os.environ["QT_QPA_PLATFORM"], "cpus": os.cpu_count()}
    wait(app, scored)
    window.tabs.setCurrentIndex(1)
    results["switch_demo_idle_ms"] = stats(switch_times())
    window.open_frames(big_frames(scratch / "big"))
    wait(app, lambda: scored() and len(view.frames) == 3)
    results["switch_2048_idle_ms"] = stats(switch_times())
    window.tabs.setCurrentIndex(0)
    results["stall_idle_ms"] = measure_stall(5)

    start_demo_training(window, scratch, iterations=100000, log_every=1)
    wait(app, lambda: steps_seen(window) >= 5)
    results["stall_training_ms"] = measure_stall(args.seconds)
    results["training_steps_seen"] = steps_seen(window)
    window.tabs.setCurrentIndex(1)
    results["switch_2048_training_ms"] = stats(switch_times())
    results["stall_training_inspect_ms"] = measure_stall(min(args.seconds, 20))
    window.close()
    wait(app, lambda: not window.training)
    window.close()

    print(f"platform {results['platform']}, {results['cpus']} CPUs")
    print(f"{'measure':34} {'n':>6} {'median':>8} {'p99':>8} {'max':>8}  (ms)")
    for key, value in results.items():
        if isinstance(value, dict):
            print(f"{key:34} {value['n']:>6} {value['median']:>8} {value['p99']:>8} {value['max']:>8}")
    print(f"training steps shown during the run: {results['training_steps_seen']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
