"""The Timeline view (pit_gui/timeline_view.py) in the real window, through pytest-qt: a tiny
recorded run reopened and scrubbed, exported, growing while it trains, and its bad input."""
import shutil

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from conftest import tiny_config
from pit_engine import timeline as T
from pit_engine.train import Trainer
from test_gui import WAIT_MS, make_window, settings, start_tiny_training  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def recorded_run(tiny_demo, tmp_path_factory):
    run = tmp_path_factory.mktemp("gui_timeline") / "pit"
    finished = Trainer(tiny_config(tiny_demo, train={"health_every": 2, "health_frames": 2}), run,
                       log=lambda *_: None).run()
    assert finished.reason == "done", finished.message
    return run


def open_timeline(make_window, qtbot, run):
    window = make_window(demo_models=False, demo_frames=False)
    assert window.open_run(run)
    qtbot.waitUntil(lambda: not window.tasks, timeout=WAIT_MS)
    window.tabs.setCurrentWidget(window.timeline_view)
    return window, window.timeline_view


def test_a_recorded_run_reopens_and_scrubs(make_window, qtbot, recorded_run, tmp_path):
    window, view = open_timeline(make_window, qtbot, recorded_run)
    assert view.timeline.iterations == [2, 4, 6] and view.frame.count() == 2
    assert view.slider.maximum() == 2 and view.slider.value() == 2  # the newest step first
    titles = [p.titleLabel.text for p in view.panels]
    assert titles[0] == "frame" and "pseudo-labels" in titles[1] and titles[2:] == ["prediction", "truth"]
    assert all(p.array is not None and p.array.shape == (32, 64, 3) for p in view.panels)
    # scrubbing: the slider, the arrow keys; the pseudo-label panel follows the step's own map
    view.slider.setValue(0)
    assert "iteration 2 " in view.where.text() and view.cursors["precision"].value() == 2
    first = view.panels[1].array.copy()
    view.setFocus()
    QTest.keyClick(view, Qt.Key_Right)
    assert view.slider.value() == 1 and view.cursors["share"].value() == 4
    QTest.keyClick(view, Qt.Key_End)
    assert view.slider.value() == 2
    from pit_engine.timeline_render import panels
    assert np.array_equal(view.panels[1].array, panels(view.timeline, 2, 0)[1][1])
    assert not np.array_equal(first, view.panels[1].array) or view.timeline.iterations[0] != 6
    # the frame's category vector at the step, and its curves over the steps with the class picked
    s = view.timeline.steps[2]
    assert np.allclose(view.chart.values["iteration 6"], s["q"][0].astype(np.float32))
    xs, ys = view.curve_values("share")
    c = view.cls.currentIndex()
    assert xs == [2, 4, 6] and ys[-1] == pytest.approx(100 * float(s["share"][0][c]), abs=1e-3)
    view.frame.setCurrentIndex(1)
    assert np.array_equal(view.panels[0].array, view.timeline.images[1])
    # playing steps through them, in a loop
    view.slider.setValue(2)
    view.play.setChecked(True)
    qtbot.waitUntil(lambda: view.slider.value() == 0, timeout=WAIT_MS)
    view.play.setChecked(False)
    # exports: the frame's timeline animated, the step shown as PNG
    window.exports.export_timeline(tmp_path / "t.gif", animated=True)
    window.exports.export_timeline(tmp_path / "s.png", animated=False)
    qtbot.waitUntil(lambda: not window.tasks, timeout=WAIT_MS)
    with Image.open(tmp_path / "t.gif") as im:
        assert im.n_frames == 3
    assert Image.open(tmp_path / "s.png").format == "PNG"


def test_a_run_without_a_timeline_says_so(make_window, qtbot, recorded_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(recorded_run, old)
    shutil.rmtree(T.timeline_dir(old))
    window, view = open_timeline(make_window, qtbot, old)
    assert view.timeline is None and "no timeline" in view.info.text()
    assert not view.slider.isEnabled() and not view.export_animation_button.isEnabled()


def test_a_truncated_or_missing_step_is_skipped_and_the_rest_shows(make_window, qtbot, recorded_run, tmp_path):
    run = tmp_path / "cut"
    shutil.copytree(recorded_run, run)
    cut = T.step_path(run, 4)
    cut.write_bytes(cut.read_bytes()[:200])
    window, view = open_timeline(make_window, qtbot, run)
    assert view.timeline.iterations == [2, 6]
    assert "Skipped 1 unreadable step file(s)" in view.info.text() and "step_0000004.npz" in view.info.text()
    assert "step_0000004.npz" in window.statusBar().currentMessage()  # the one line, in the log
    T.step_path(run, 2).unlink()  # gone after it was listed: blank panels for it, the others still show
    view.slider.setValue(0)
    assert view.panels[1].titleLabel.text == "step unreadable"
    view.slider.setValue(1)
    assert "pseudo-labels" in view.panels[1].titleLabel.text


def test_the_timeline_grows_during_a_training(make_window, qtbot, tiny_demo, tmp_path):
    window = start_tiny_training(make_window, tiny_demo, tmp_path / "live", health_every=2, health_frames=2,
                                 checkpoint_every=0)
    view = window.timeline_view
    qtbot.waitUntil(lambda: view.timeline is not None and len(view.timeline.steps) >= 1, timeout=WAIT_MS)
    first = len(view.timeline.steps)
    qtbot.waitUntil(lambda: len(view.timeline.steps) >= first + 2, timeout=WAIT_MS)
    assert view.slider.maximum() == len(view.timeline.steps) - 1
    assert view.slider.value() == view.slider.maximum()  # following the newest step
    window.stop_training()
    qtbot.waitUntil(lambda: not window.training, timeout=WAIT_MS)


def test_bad_timeline_and_what_if_arguments_are_one_line(capsys):
    from pit_gui.app import main, parse_what_if

    assert parse_what_if("car=absent,vegetation=present") == {13: 0, 8: 1}
    for args in (["--what-if", "cat=absent"], ["--what-if", "car=gone"], ["--timeline", "x:2"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
