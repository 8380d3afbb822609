"""A Cityscapes-val-sized folder in the Inspect view (run by hand, not in the tests).

500 frames at 2048x1024 with their labels (the real frame, scaled up and flipped, hard-linked
under 500 names) are opened with 2 and with 4 models. Each count of models runs in a process of
its own, so that its peak memory is its own. Measured, per count:

- the time until the frame list holds every frame, and until the first frame is drawn;
- frames scored per second in the background (every model predicts and scores every frame);
- the bytes of predictions the view holds (at most inspect_state.CACHE_BYTES) and the process's
  peak resident memory;
- the event loop's lateness (a 10 ms timer) while frames are scored.

    python benchmarks/gui_val_set.py [--frames 500] [--models 2,4] [--seconds 120] [--json FILE]

Scoring stops after --seconds (on a CPU all 500 frames take far longer); the rates are over the
frames scored by then. QT_QPA_PLATFORM defaults to offscreen.
"""
from __future__ import annotations

import argparse
import json
import os
import resource as rusage
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gui_bench import big_frames
from gui_harness import StallTimer, wait

from PySide6.QtCore import QSettings  # noqa: E402

from pit_gui.main_window import MainWindow, app as make_app, demo_inputs  # noqa: E402


def val_set(root: Path, frames: int) -> Path:
    """`frames` frames at 2048x1024 in the Cityscapes layout: 2 drawn, the rest hard links."""
    images = big_frames(root, 2)
    folder = images / "big"
    for i in range(2, frames):
        for kind, suffix in (("leftImg8bit", "leftImg8bit"), ("gtFine", "gtFine_labelIds")):
            src = root / kind / "val/big" / f"big_{i % 2:06d}_000000_{suffix}.png"
            os.link(src, src.with_name(f"big_{i:06d}_000000_{suffix}.png"))
    return folder


def models(scratch: Path, count: int) -> list[Path]:
    """The demo's source-only and PIT checkpoints, and copies of them under other runs."""
    a, b = demo_inputs()[:2]
    out = []
    for i in range(count):
        if i < 2:
            out.append((a, b)[i])
            continue
        copy = scratch / f"run{i}" / "checkpoints" / "iter_0000001.pt"
        copy.parent.mkdir(parents=True)
        shutil.copy((a, b)[i % 2], copy)
        out.append(copy)
    return out


def measure(folder: Path, count: int, seconds: float) -> dict:
    app = make_app()
    scratch = Path(tempfile.mkdtemp(prefix="pit-val-set-"))
    window = MainWindow(QSettings(str(scratch / "settings.ini"), QSettings.IniFormat), demo_models=False,
                        demo_frames=False)
    window.resize(1440, 900)
    window.show()
    view = window.inspect_view
    view.models.set_checkpoints(models(scratch, count))
    wait(app, lambda: all(view.models.names) and len(view.models.names) == count, 120)
    shown: list[float] = []
    view.frame_shown.connect(lambda _path: shown.append(time.perf_counter()))
    stall = StallTimer()
    start = time.perf_counter()
    window.open_frames(folder, remember=False)
    wait(app, lambda: len(view.frames) > 0, 120)
    listed = time.perf_counter() - start
    wait(app, lambda: shown, 300)
    first = shown[0] - start
    stall.start()
    scored_at_first, t_first = len(view.scores), time.perf_counter()
    peak_cache, end = 0, t_first + seconds
    while time.perf_counter() < end and len(view.scores) < len(view.frames):
        app.processEvents()
        peak_cache = max(peak_cache, sum(r.nbytes for r in view.cache.values()))
        time.sleep(0.005)
    elapsed = time.perf_counter() - t_first
    scored = len(view.scores)
    lateness = stall.take()
    stall.stop()
    window.close()
    return {"models": count, "frames": len(view.frames), "listed_s": round(listed, 2),
            "first_frame_s": round(first, 2), "scored": scored,
            "frames_per_s": round((scored - scored_at_first) / elapsed, 3),
            "peak_prediction_MiB": round(peak_cache / 2**20, 1),
            "peak_rss_MiB": round(rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "loop_lateness_ms": lateness}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--models", default="2,4", help="counts of models, one process each")
    parser.add_argument("--seconds", type=float, default=120, help="how long to let frames be scored")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--folder", help=argparse.SUPPRESS)  # a child process: measure this folder
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.folder:
        print(json.dumps(measure(Path(args.folder), int(args.models), args.seconds)))
        return 0
    root = Path(tempfile.mkdtemp(prefix="pit-val-frames-"))
    folder = val_set(root, args.frames)
    results = []
    for count in map(int, args.models.split(",")):
        done = subprocess.run([sys.executable, __file__, "--folder", str(folder), "--models", str(count),
                               "--seconds", str(args.seconds)], capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]))
    shutil.rmtree(root)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
