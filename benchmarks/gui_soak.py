"""Soak: the window open with the demo training running for a long time (run by hand).

Every minute it records the process's resident memory, the training iteration and the
lateness of a 10 ms timer (p99, max) while the window alternates between the Train view
(curves growing) and the Inspect view (stepping through cached frames every few seconds).

    python benchmarks/gui_soak.py [--minutes 30] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gui_harness import StallTimer, open_window, start_demo_training, steps_seen, wait


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

    app, window, scratch = open_window("pit-gui-soak-")
    start_demo_training(window, scratch, iterations=10 ** 6, log_every=1, eval_every=500, checkpoint_every=500,
                        keep_checkpoints=1)
    stall = StallTimer()
    stall.start()

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
            late = stall.take()
            rows.append({"minute": len(rows) + 1, "steps": steps_seen(window), "rss_mib": round(rss_mib(), 1),
                         "stall_p99_ms": late["p99"], "stall_max_ms": late["max"]})
            print(json.dumps(rows[-1]), flush=True)
            next_minute = now + 60
    stall.stop()
    window.close()
    wait(app, lambda: not window.training)
    window.close()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if not rows:
        return 0
    first, last_row = rows[min(1, len(rows) - 1)], rows[-1]
    print(f"RSS minute {first['minute']} → {last_row['minute']}: {first['rss_mib']} → {last_row['rss_mib']} MiB; "
          f"stall p99 {first['stall_p99_ms']} → {last_row['stall_p99_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
