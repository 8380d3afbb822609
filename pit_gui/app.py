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
    parser.add_argument("--timeline", metavar="FRAME[:STEP]",
                        help="open the Timeline view of the run given on health frame FRAME (from 1), at health "
                             "step STEP (from 1; the last by default)")
    parser.add_argument("--what-if", metavar="CLASS=STATE[,...]",
                        help="in Inspect, edit the pivot of the expanded-regions model on the frame shown, each "
                             "CLASS set present, unsure or absent (the targets PIT would train on follow)")
    parser.add_argument("--screenshot", metavar="PNG", help="render the window to PNG once loaded, then exit")
    return parser.parse_args(argv)


STATES = {"present": 1, "unsure": -1, "absent": 0}


def parse_what_if(text: str) -> dict[int, int]:
    """'vegetation=absent,car=present' as {class id: state}; ValueError with the reason."""
    from pit_engine.classes import CITYSCAPES_CLASSES

    edits = {}
    for part in filter(None, text.split(",")):
        name, _, state = part.partition("=")
        if name.strip() not in CITYSCAPES_CLASSES or state.strip() not in STATES:
            raise ValueError(f"--what-if '{part}' is not CLASS=STATE with a class name and one of "
                             "present, unsure, absent")
        edits[CITYSCAPES_CLASSES.index(name.strip())] = STATES[state.strip()]
    return edits


def arrange(window, args, edits) -> None:
    """What --timeline and --what-if ask for, once the window has loaded."""
    if args.timeline:
        frame, _, step = args.timeline.partition(":")
        view = window.timeline_view
        window.tabs.setCurrentWidget(view)
        if view.timeline is not None and view.timeline.steps:
            view.frame.setCurrentIndex(min(max(int(frame) - 1, 0), view.frame.count() - 1))
            view.slider.setValue(int(step) - 1 if step else view.slider.maximum())
    if edits:
        window.tabs.setCurrentIndex(1)
        window.inspect_view.what_if.edit.setChecked(True)
        for c, state in edits.items():
            window.inspect_view.what_if.set_state(c, state)


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
    try:
        edits = parse_what_if(args.what_if or "")
        if args.timeline and not all(p.isdigit() for p in args.timeline.split(":", 1) if p):
            raise ValueError(f"--timeline '{args.timeline}' is not FRAME or FRAME:STEP (numbers from 1)")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
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
        arrange(window, args, edits)
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
    if args.timeline or edits:
        from PySide6.QtCore import QTimer

        def when_loaded():
            if window.ready_for_screenshot():
                arrange(window, args, edits)
            else:
                QTimer.singleShot(100, when_loaded)
        when_loaded()
    return app.exec()


def _is_run(path) -> bool:
    from pit_engine.runs import is_run_dir
    return is_run_dir(path)


def _is_checkpoint(path) -> bool:
    return Path(path).suffix.lower() in (".pt", ".pth")
