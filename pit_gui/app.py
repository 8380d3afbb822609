"""`pit-gui [RUN_DIR | CKPT | IMAGE_DIR ...] [--config FILE] [--start] [--focus a|b|third] [--screenshot PNG]`."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

SCREENSHOT_SIZE = (1440, 900)
SCREENSHOT_TIMEOUT_S = 120


def parse(argv):
    parser = argparse.ArgumentParser(prog="pit-gui", description="PIT Studio: train, watch and inspect PIT "
                                     "domain adaptation. Opens with the shipped demo models and frames.")
    parser.add_argument("paths", nargs="*", help="run directories, checkpoints (.pt), configs (.toml) or folders of "
                                                 "frames to open")
    parser.add_argument("--config", help="load this config TOML into the training form")
    parser.add_argument("--start", action="store_true", help="start training the loaded config at once")
    parser.add_argument("--focus", choices=["a", "b", "third"],
                        help="open Inspect with one panel filling the view (F toggles it, Space flips)")
    parser.add_argument("--screenshot", metavar="PNG", help="render the window to PNG once loaded, then exit")
    return parser.parse_args(argv)


def _wait(app, done, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        app.processEvents()
        if done():
            return True
        time.sleep(0.01)
    return False


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    for path in args.paths + ([args.config] if args.config else []):
        if not Path(path).exists():
            print(f"error: not found ({path}) — give an existing run directory, checkpoint, folder or config",
                  file=sys.stderr)
            return 2
    if args.screenshot and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no screen needed to render a picture

    from PySide6.QtCore import QSettings

    from pit_gui.main_window import MainWindow, app as make_app

    app = make_app()
    app.setApplicationName("PIT Studio")
    app.setOrganizationName("PIT Studio")
    settings = QSettings()
    if args.screenshot:  # a picture that does not depend on this user's saved layout
        scratch = tempfile.TemporaryDirectory()
        settings = QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.IniFormat)
    gives_models = any(_is_checkpoint(p) or _is_run(p) for p in args.paths)
    gives_frames = any(not (_is_checkpoint(p) or _is_run(p) or p.endswith(".toml")) for p in args.paths)
    window = MainWindow(settings, demo_models=not gives_models, demo_frames=not gives_frames)
    for path in args.paths:
        window.open_path(path)
    if args.config:
        window.load_config(args.config)
        window.tabs.setCurrentIndex(0)
    if args.start:
        window.start_training()
    if args.focus:
        window.tabs.setCurrentIndex(1)
        window.inspect_view.compared.set_focus({"a": 0, "b": 1, "third": 2}[args.focus])
    if args.screenshot:
        window.resize(*SCREENSHOT_SIZE)
        window.show()
        ready = _wait(app, window.ready_for_screenshot, SCREENSHOT_TIMEOUT_S)
        _wait(app, lambda: False, 0.3)  # let the last repaint land
        ok = window.grab().save(args.screenshot)
        if window.training:
            window.stop_training()
            _wait(app, lambda: not window.training, SCREENSHOT_TIMEOUT_S)
        window.close()
        if not ok:
            print(f"error: cannot write the screenshot ({args.screenshot}) — choose another path", file=sys.stderr)
            return 2
        print(f"saved {args.screenshot}" + ("" if ready else " (before everything had loaded)"))
        return 0
    window.show()
    return app.exec()


def _is_run(path) -> bool:
    from pit_engine.runs import is_run_dir
    return is_run_dir(path)


def _is_checkpoint(path) -> bool:
    return Path(path).suffix.lower() in (".pt", ".pth")
