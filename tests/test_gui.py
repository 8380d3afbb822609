"""The real main window, driven through pytest-qt (offscreen, set in conftest.py).

Every test closes its window, which stops and joins the trainer, inference and task threads."""
import gc
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest

from conftest import tiny_config
from pit_engine import overlay
from pit_engine.classes import CITYSCAPES_CLASSES
from pit_engine.config import Config
from pit_engine.events import Step
from pit_engine.export import export_overlays
from pit_engine.runs import MetricsReader
from pit_engine.train import Trainer
from pit_gui.main_window import MainWindow, demo_inputs
from pit_gui.smoothing import ema
from pit_gui.workers import TrainWorker
from pit_resources import resource

WAIT_MS = 60000


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


@pytest.fixture
def make_window(qtbot, settings):
    windows = []

    def make(**kwargs):
        window = MainWindow(settings, **kwargs)
        window.confirm = lambda title, text: True  # the modal question dialogs answer yes
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window
    yield make
    for window in windows:
        if window.training:
            window.stop_training()
            qtbot.waitUntil(lambda: not window.training, timeout=WAIT_MS)
        window.close()
        assert not window.inference_thread.isRunning()
        assert not window.tasks
    windows.clear()
    # collect the closed windows' reference cycles here, in the GUI thread: a collection that
    # happens to run in the next test's worker thread would destroy Qt objects there, and Qt aborts
    gc.collect()


@pytest.fixture
def window(make_window, qtbot):
    window = make_window()
    qtbot.waitUntil(window.ready_for_screenshot, timeout=WAIT_MS)
    return window


def wait_scored(qtbot, window):
    view = window.inspect_view
    qtbot.waitUntil(lambda: view.frames and len(view.scores) == len(view.frames), timeout=WAIT_MS)


def test_opens_with_the_demo_comparison(window):
    view = window.inspect_view
    assert len(view.frames) == 8
    r = view.result()
    assert r.preds[0] is not None and r.preds[1] is not None and r.truth is not None
    assert view.panel_a.array is not None and view.panel_b.array is not None and view.panel_c.array is not None
    assert "mIoU" in view.panel_b.titleLabel.text
    assert view.table.rowCount() > 1 and view.table.item(0, 0).text() == "mIoU"
    # the chart shows the same q the engine predicted
    assert np.allclose(view.chart.values["PIT"], r.preds[1].q)


def start_tiny_training(make_window, tiny_demo, run_dir, **train):
    """A window without the demo models and frames, training a tiny config (2000 iterations) in run_dir."""
    window = make_window(demo_models=False, demo_frames=False)
    window.train_view.form.set_config(tiny_config(tiny_demo, train={"iterations": 2000, **train}))
    window.train_view.run_dir.setText(str(run_dir))
    assert window.start_training()
    return window


def test_train_curve_grows_pause_resume_stop(make_window, qtbot, tiny_demo, tmp_path):
    window = start_tiny_training(make_window, tiny_demo, tmp_path / "run", health_every=3, health_frames=2,
                                 checkpoint_every=5)
    plots = window.train_view.plots
    qtbot.waitUntil(lambda: len(plots.points("seg")[0]) >= 3, timeout=WAIT_MS)
    assert plots.plots["seg"] in window.train_view.plots.graphics.ci.items
    # the health curves grow live beside the losses, per class or as the mean
    health = window.train_view.health
    qtbot.waitUntil(lambda: len(health.records) >= 2, timeout=WAIT_MS)
    xs, ys = health.series("pl_share")
    assert xs[:2] == [3, 6] and all(0 <= y <= 100 for y in ys)
    assert health.curves["iou"].isVisible() and "fixed target train frames" in health.info.text()
    health.cls.setCurrentText("road")
    assert 0 <= health.series("q_present")[1][0] <= 100 and 0 <= health.series("iou")[1][0] <= 100

    # Inspect follows the run: the first checkpoint (every 5 iterations) became the adapted model
    qtbot.waitUntil(lambda: "iter_0000005" in window.inspect_view.models.checkpoint("b"), timeout=WAIT_MS)

    window.toggle_pause()
    assert window.train_view.pause.text() == "Resume"
    assert window.train_view.rate.text() == "paused"  # no stale it/s or ETA
    # the step in flight finishes (slow on a busy machine), then the curve holds still
    seen, deadline = -1, time.time() + 30
    while len(plots.points("seg")[0]) != seen and time.time() < deadline:
        seen = len(plots.points("seg")[0])
        qtbot.wait(1500)
    qtbot.wait(1500)
    assert len(plots.points("seg")[0]) == seen  # paused: no new steps

    window.toggle_pause()
    qtbot.waitUntil(lambda: len(plots.points("seg")[0]) > seen + 2, timeout=WAIT_MS)
    window.stop_training()
    qtbot.waitUntil(lambda: not window.training, timeout=WAIT_MS)
    assert window.train_view.start.isEnabled() and not window.train_view.stop.isEnabled()
    assert window.train_view.rate.text() == ""
    assert list((tmp_path / "run" / "checkpoints").glob("iter_*.pt"))
    assert "stopped" in window.train_view.log.toPlainText()
    # the newest checkpoint of the run is now the adapted model in Inspect
    assert window.inspect_view.models.checkpoint("b").startswith(str(tmp_path / "run" / "checkpoints"))


def test_training_updates_are_batched():
    worker = TrainWorker(tiny_config(Path("/nonexistent")), "/nonexistent-run")
    batches = []
    worker.steps.connect(batches.append)  # same thread: direct
    start = time.monotonic()
    for i in range(2000):
        worker._on_event(Step(i, {"seg": 1.0}, 0.1, 100.0, 1.0))
    worker._flush()
    elapsed = time.monotonic() - start
    assert sum(len(b) for b in batches) == 2000  # nothing lost
    assert len(batches) <= elapsed / 0.05 + 2  # at most ~20 a second


def test_open_run_replays_and_follows(window, qtbot, tiny_demo, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(tiny_demo), run, log=lambda *_: None).run()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"]
    assert window.open_path(run)
    plots = window.train_view.plots
    qtbot.waitUntil(lambda: len(plots.points("seg")[0]) == len(steps), timeout=WAIT_MS)
    assert plots.points("seg")[1] == pytest.approx([r["seg"] for r in steps])
    assert "mIoU" in plots.terms()  # the final evaluation
    assert "health" not in plots.terms()  # health records are the health plot's, not a loss
    # a line appended by a training elsewhere shows up; a half-written one waits for its newline
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"kind": "step", "iteration": 99, "lr": 0.1, "seg": 0.5}) + "\n" + '{"kind": "st')
    qtbot.waitUntil(lambda: len(plots.points("seg")[0]) == len(steps) + 1, timeout=5000)
    assert plots.points("seg")[0][-1] == 99
    # the run's checkpoint became the adapted model
    assert Path(window.inspect_view.models.checkpoint("b")).parent == run / "checkpoints"
    assert str(run.resolve()) in window.recent()


def test_compare_run_overlays_curves(window, qtbot, tiny_demo, tmp_path):
    # any number of runs over this one, each in a colour of its own, the x range fitting the longest
    for name, iterations in (("a", 6), ("b", 6), ("c", 9)):
        Trainer(tiny_config(tiny_demo, train={"seed": ord(name), "iterations": iterations}), tmp_path / name,
                log=lambda *_: None).run()
    window.open_path(tmp_path / "a")
    plots = window.train_view.plots
    qtbot.waitUntil(lambda: len(plots.points("seg")[0]) == 6, timeout=WAIT_MS)
    window.compare_run(tmp_path / "b")
    qtbot.waitUntil(lambda: len(plots.points("seg", "ref1")[0]) == 6, timeout=WAIT_MS)
    window.compare_run(tmp_path / "c")
    qtbot.waitUntil(lambda: len(plots.points("seg", "ref2")[0]) == 9, timeout=WAIT_MS)
    assert len(plots.points("seg", "ref1")[0]) == 6
    assert plots.points("seg", "ref1")[1] != plots.points("seg")[1]
    assert "b</span>" in plots.key.text() and "c</span>" in plots.key.text() and plots.colour("ref1") != plots.colour("ref2")
    qtbot.waitUntil(lambda: plots.plots["seg"].vb.viewRange()[0][1] >= 9, timeout=5000)  # the longest run fits
    assert "c</span>: seg" in plots.value_at("seg", 9) and "at iteration 9" in plots.value_at("seg", 9)
    plots.clear_compare_button.click()
    assert set(plots.series) == {"main"} and "c</span>" not in plots.key.text()


def test_frame_class_opacity_visibility(window, qtbot):
    view = window.inspect_view
    view.list.setCurrentRow(2)
    qtbot.waitUntil(lambda: view.result() is not None and view.result().path == view.frames[2], timeout=WAIT_MS)
    r = view.result()
    view.opacity.setValue(80)
    assert np.array_equal(view.panel_b.array, overlay.blend(r.image, r.preds[1].classes, 0.8, True))
    view.boundaries.setChecked(False)
    assert np.array_equal(view.panel_b.array, overlay.blend(r.image, r.preds[1].classes, 0.8, False))
    road = CITYSCAPES_CLASSES.index("road")
    view.legend.item(road).setCheckState(Qt.Unchecked)
    hidden = r.preds[1].classes == road
    assert hidden.any()
    assert np.array_equal(view.panel_b.array[hidden], r.image[hidden])  # road hidden: the frame shows
    # a class's CAM and its grown region
    car = CITYSCAPES_CLASSES.index("car")
    view.region_class.setCurrentIndex(car)
    view.region_mode.setCurrentIndex(1)
    assert np.array_equal(view.panel_regions.array, overlay.heat(r.image, r.preds[1].cam(car), 0.8))
    view.region_mode.setCurrentIndex(0)
    assert np.array_equal(view.panel_regions.array, overlay.regions(r.image, r.preds[1].regions, r.preds[1].seeds, car, 0.8))
    assert "car" in view.panel_regions.titleLabel.text


def test_next_previous_and_sort_by_gain(window, qtbot):
    view = window.inspect_view
    wait_scored(qtbot, window)
    view.sort.setCurrentText("gain of B over A, worst first")
    order = [Path(view.list.item(i).data(Qt.UserRole)) for i in range(view.list.count())]
    gains = [view.scores[p][1] - view.scores[p][0] for p in order]
    assert gains == sorted(gains)
    view.list.setCurrentRow(0)
    view.step(1)
    assert view.current == order[1]
    view.step(-1)
    view.step(-1)  # stays at the first
    assert view.current == order[0]


def test_linked_zoom(window, qtbot):
    view = window.inspect_view
    view.panel_a.vb.setRange(xRange=(10, 50), yRange=(5, 25), padding=0)
    qtbot.wait(50)
    (ax0, ax1), (ay0, ay1) = view.panel_a.vb.viewRange()
    assert ax0 <= 10.5 and ax1 >= 49.5 and ay0 <= 5.5 and ay1 >= 24.5  # A shows the asked region
    for panel in (view.panel_b, view.panel_c):  # panels of A's shape show exactly what A shows
        assert np.allclose(panel.vb.viewRange(), view.panel_a.vb.viewRange(), atol=1.5)
    # the regions panel has another shape and keeps its own view (the whole frame), so that a link
    # at one scale does not shrink the frames of the three compared panels
    (x0, x1), (y0, y1) = view.panel_regions.vb.viewRange()
    h, w = view.panel_regions.array.shape[:2]
    assert x0 <= 0.5 and x1 >= w - 0.5 and y0 <= 0.5 and y1 >= h - 0.5


def test_export_view_and_folder_match_pit_export(window, qtbot, tmp_path):
    view = window.inspect_view
    a, b, frames = demo_inputs()
    assert window.export_view(tmp_path / "view.png")
    qtbot.waitUntil(lambda: not window.tasks, timeout=WAIT_MS)
    export_overlays(a, [frames], tmp_path / "cli", b)  # what `pit export --compare` writes
    stem = view.current.name.replace("_leftImg8bit.png", "")
    cli = np.asarray(Image.open(tmp_path / "cli" / f"{stem}_compare.png").convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "view.png").convert("RGB")), cli)

    window.export_folder(tmp_path / "gui")
    qtbot.waitUntil(lambda: (tmp_path / "gui" / "index.json").is_file() and not window.tasks, timeout=WAIT_MS)
    for name in (f"{stem}_compare.png", f"{stem}_overlay.png"):
        assert (tmp_path / "gui" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    # a second export into the same folder asks, then overwrites (confirm answers yes here)
    before = (tmp_path / "gui" / "index.json").stat().st_mtime_ns
    window.export_folder(tmp_path / "gui")
    qtbot.waitUntil(lambda: (tmp_path / "gui" / "index.json").stat().st_mtime_ns != before and not window.tasks,
                    timeout=WAIT_MS)


def test_bad_input_shows_one_line_and_keeps_working(window, qtbot, tmp_path):
    box = window.error_box
    window.open_path(tmp_path / "missing")
    assert box.isVisible() and box.text().startswith("error: cannot open this")
    box.hide()

    typo = tmp_path / "typo.toml"
    typo.write_text("[modle]\nbackbone = 'small'\n")
    assert not window.load_config(typo)
    assert "did you mean 'model'" in box.text() and "\n" not in box.text()
    box.hide()

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    window.open_checkpoint(corrupt, "b")
    qtbot.waitUntil(box.isVisible, timeout=WAIT_MS)
    assert box.text().startswith("error:") and "\n" not in box.text()
    box.hide()

    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    a, b, _ = demo_inputs()
    window.open_checkpoint(a, "a")
    window.open_checkpoint(b, "b")
    window.open_frames(frames)
    qtbot.waitUntil(box.isVisible, timeout=WAIT_MS)
    assert "broken.png" in box.text() and box.text().startswith("error:")


def test_failed_training_shows_dialog_and_window_stays_usable(make_window, qtbot, tiny_demo, tmp_path):
    window = make_window(demo_models=False, demo_frames=False)
    window.train_view.form.set_config(tiny_config(tiny_demo, data={"source_root": str(tmp_path / "nope")}))
    window.train_view.run_dir.setText(str(tmp_path / "run"))
    assert window.start_training()
    qtbot.waitUntil(lambda: not window.training, timeout=WAIT_MS)
    assert window.error_box.isVisible() and window.error_box.text().startswith("error:")
    assert window.train_view.start.isEnabled() and window.train_view.form.isEnabled()
    # fixed, it trains
    window.error_box.hide()
    window.train_view.form.set_config(tiny_config(tiny_demo))
    assert window.start_training()
    qtbot.waitUntil(lambda: not window.training, timeout=WAIT_MS)
    assert not window.error_box.isVisible()
    assert list((tmp_path / "run" / "checkpoints").glob("iter_*.pt"))


def test_closing_mid_training_stops_saves_and_joins(make_window, qtbot, tiny_demo, tmp_path):
    window = make_window(demo_models=False, demo_frames=False)
    window.train_view.form.set_config(tiny_config(tiny_demo, train={"iterations": 5000}))
    window.train_view.run_dir.setText(str(tmp_path / "run"))
    window.start_training()
    qtbot.waitUntil(lambda: len(window.train_view.plots.points("seg")[0]) >= 2, timeout=WAIT_MS)
    thread = window.train_thread
    start = time.monotonic()
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)
    assert time.monotonic() - start < 10
    assert thread is not None and thread.isFinished() and not window.inference_thread.isRunning()
    assert list((tmp_path / "run" / "checkpoints").glob("iter_*.pt"))


def test_settings_and_recent_survive_a_restart(make_window, qtbot, settings, tmp_path):
    first = make_window(demo_models=False, demo_frames=False)
    first.inspect_view.opacity.setValue(30)
    first.train_view.plots.smoothing.setValue(90)
    first.remember(tmp_path)
    first.close()
    second = make_window(demo_models=False, demo_frames=False)
    assert second.inspect_view.opacity.value() == 30
    assert second.train_view.plots.smoothing.value() == 90
    assert second.recent()[0] == str(tmp_path.resolve())
    assert second.recent_menu.actions()[0].text() == str(tmp_path.resolve())


def test_drop_a_checkpoint_and_a_folder(window, qtbot, tmp_path):
    a, b, frames = demo_inputs()
    one = frames / "democity"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(a)), QUrl.fromLocalFile(str(next(one.iterdir())))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dropEvent(event)
    view = window.inspect_view
    assert view.models.checkpoint("b") == str(a)
    assert view.models.checkpoint("a") == str(b)  # it was panel A's model: the two panels swapped
    qtbot.waitUntil(lambda: len(view.frames) == 1 and view.result() is not None, timeout=WAIT_MS)


def test_smoothing_slider_and_log_scale(window, qtbot, tiny_demo, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(tiny_demo), run, log=lambda *_: None).run()
    window.open_path(run)
    plots = window.train_view.plots
    qtbot.waitUntil(lambda: len(plots.points("seg")[0]) == 6, timeout=WAIT_MS)
    raw = plots.points("seg")[1]
    plots.smoothing.setValue(0)
    qtbot.wait(100)
    assert plots.curves[("main", "seg")][1].getData()[1] == pytest.approx(raw)  # no smoothing: the raw values
    plots.smoothing.setValue(90)
    qtbot.wait(100)
    assert list(plots.curves[("main", "seg")][1].getData()[1]) == pytest.approx(list(ema(raw, 0.9)))
    plots.log_scale.setChecked(True)
    assert all(plot.ctrl.logYCheck.isChecked() for plot in plots.plots.values())
    plots.set_term_visible("seg", False)
    assert plots.plots["seg"] not in plots.graphics.ci.items.keys()


def test_debiased_ema():
    assert ema([3.0, 3.0, 3.0], 0.9) == pytest.approx([3.0, 3.0, 3.0])  # no pull towards zero
    smoothed = ema([0.0, 10.0, float("nan"), 10.0], 0.5)
    assert smoothed[0] == 0 and np.isnan(smoothed[2]) and 0 < smoothed[3] < 10


def test_metrics_reader_waits_for_whole_lines_and_sees_rewrites(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iteration": 1, "seg": 1}\n{"iteration": 2')
    reader = MetricsReader(tmp_path)
    assert [r["iteration"] for r in reader.read()] == [1]
    with open(path, "a") as f:
        f.write(', "seg": 2}\n')
    assert [r["iteration"] for r in reader.read()] == [2]
    path.write_text('{"iteration": 1, "seg": 1}\n')  # a resumed run rewrote it, shorter
    assert [r["iteration"] for r in reader.read()] == [1] and reader.restarted


def test_check_button_and_demo_data(window, qtbot, tmp_path):
    window.make_demo_data(tmp_path / "demo")
    form = window.train_view.form
    qtbot.waitUntil(lambda: form.fields["data.target_root"].text().endswith("target"), timeout=WAIT_MS)
    assert form.config().data.source_root == str(tmp_path / "demo" / "source")
    form.fields["train.amp"].setCurrentText("bf16")
    assert form.config().train.amp == "bf16"  # the form edits the engine's mixed-precision switch
    window.check_data("cityscapes", form.fields["data.target_root"].text(), "val")
    qtbot.waitUntil(window.info_box.isVisible, timeout=WAIT_MS)
    assert window.info_box.text() == "cityscapes: 100 frame(s), 0 problem(s)"
    assert "class pixels" in window.info_box.detailedText()
    form.set_config(Config.load(resource("gta5_to_cityscapes.toml")))  # a paper preset: the GPU fast path
    assert form.fields["train.amp"].currentText() == "auto" and form.fields["train.channels_last"].isChecked()
    assert form.config().train.compile  # a key without a field passes through the form


def test_screenshot_command(tmp_path):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = tmp_path / "shot.png"
    done = subprocess.run([sys.executable, "-m", "pit_gui", "--screenshot", str(out)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    shot = np.asarray(Image.open(out).convert("RGB"))
    assert shot.shape == (900, 1440, 3)
    assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 500  # a drawn window, not a blank one
    bad = subprocess.run([sys.executable, "-m", "pit_gui", str(tmp_path / "nope"), "--screenshot", str(out)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: not found") and bad.stderr.count("\n") == 1


def test_a_flat_curve_gets_a_readable_axis_and_a_lone_point_a_dot(qtbot):
    from pit_gui.loss_plots import LossPlots

    plots = LossPlots()
    qtbot.addWidget(plots)
    plots.resize(900, 600)
    plots.show()
    flat = 0.1164107918739322
    plots.add_records([{"kind": "step", "iteration": i, "pix": flat * (1 + (i % 3) * 1e-16), "seg": 1.0 / i}
                       for i in range(1, 30)])
    y_range = lambda term: plots.plots[term].getViewBox().viewRange()[1]  # noqa: E731
    # a moving curve keeps its own range; the flat one spans 0.1 %, not the 7e-16 of its noise
    qtbot.waitUntil(lambda: y_range("seg")[0] < 1 / 29 and y_range("seg")[1] > 1, timeout=5000)
    lo, hi = y_range("pix")
    assert hi - lo >= 0.99e-3 * flat and lo < flat < hi
    plots.add_records([{"kind": "step", "iteration": 30, "pix_first": 0.5}])  # one point so far: a dot
    plots._redraw()
    symbol = lambda term: plots.curves[("main", term)][0].opts["symbol"]  # noqa: E731
    assert symbol("pix_first") == "o" and symbol("pix") is None
    plots.log_scale.setChecked(True)
    qtbot.waitUntil(lambda: y_range("pix")[1] < 0, timeout=5000)  # log10 of 0.116
    lo, hi = y_range("pix")
    assert hi - lo >= 3.9e-4


def test_the_form_chooses_any_registered_method_and_its_settings(qtbot):
    from pit_engine.methods import METHODS
    from pit_gui.config_form import ConfigForm

    form = ConfigForm()
    qtbot.addWidget(form)
    choice = form.fields["method.name"]
    assert [choice.itemData(i) for i in range(choice.count())] == list(METHODS)
    form.set_config(Config.load(resource("demo.toml")))
    assert choice.currentData() == "pit" and form.fields["method.pit.image_level"].isChecked()
    choice.setCurrentIndex(list(METHODS).index("cbst"))
    form.fields["method.cbst.lambda_st"].setValue(0.5)
    config = form.config()
    assert config.method.name == "cbst" and config.method.cbst.lambda_st == 0.5
    assert config.method.cbst.round_every == 100  # the demo preset's, kept
    assert config.method.pit.seed_ratio == 0.2  # another method's table, not shown, passes through


def test_a_model_without_a_pivot_hides_the_pivot_panels(make_window, qtbot, tiny_demo, tmp_path):
    Trainer(tiny_config(tiny_demo, "minent", train={"iterations": 1, "warmup": 0}), tmp_path / "run",
            log=lambda *_: None).run()
    window = make_window(demo_models=False)
    window.open_path(str(next((tmp_path / "run/checkpoints").glob("*.pt"))))  # as the adapted model
    window.open_path(str(tiny_demo / "target/leftImg8bit/val"))
    view = window.inspect_view
    qtbot.waitUntil(lambda: view.result() is not None and view.pair_preds(view.result())[1] is not None, timeout=WAIT_MS)
    assert not view.pivot_row.isVisible() and not view.regions_box.isVisible()
    assert view.panel_b.array is not None  # the mask is shown


def test_health_plots_without_target_labels_show_what_needs_none(qtbot):
    from pit_gui.health_plots import HealthPlots

    health = HealthPlots()
    qtbot.addWidget(health)
    assert "No health records" in health.info.text()
    record = {"kind": "health", "iteration": 50, "frames": 4, "pl_coverage": 0.5, "pl_share": {"road": 0.25},
              "mean_pl_share": 0.25, "q_present": {"road": 3}, "q_absent": {"road": 1}, "mean_q_present": 3,
              "mean_q_absent": 1}
    health.add_records([{"kind": "step", "iteration": 50, "seg": 1.0}, record])
    assert len(health.records) == 1  # only health records are kept
    assert health.series("pl_share") == ([50], [50.0])  # the mean view: the share with any pseudo-label
    assert not health.curves["iou"].isVisible() and health.curves["pl_share"].isVisible()
    assert "no target labels" in health.info.text()
    health.cls.setCurrentText("road")
    assert health.series("q_present") == ([50], [75.0]) and health.series("q_absent") == ([50], [25.0])


def test_curves_come_back_for_every_run_after_the_first(window, qtbot, tiny_demo, tmp_path):
    # the plot grid was laid out again only for a term never seen before, so every run after the
    # first showed "No curves yet" while its progress bar moved
    plots = window.train_view.plots
    for name in ("first", "second", "third"):
        Trainer(tiny_config(tiny_demo), tmp_path / name, log=lambda *_: None).run()
        assert window.open_path(tmp_path / name)
        qtbot.waitUntil(lambda: len(plots.points("seg")[0]) == 6, timeout=WAIT_MS)
        assert plots.graphics.isVisible() and not plots.empty.isVisible(), name
        assert plots.plots["seg"] in plots.graphics.ci.items, name


def test_the_wheel_changes_a_field_only_once_it_has_focus(qtbot):
    # one wheel notch over the form, without a click, set lambda_adv and the iterations to 0
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from pit_gui.config_form import ConfigForm

    form = ConfigForm()
    qtbot.addWidget(form)
    form.show()
    form.set_config(Config.load(resource("demo.toml")))
    before = form.config().to_dict()

    def wheel(widget, notches=-3):
        pos = QPointF(widget.width() / 2, widget.height() / 2)
        QApplication.sendEvent(widget, QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * notches),
                                                   Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False))
    for key in ("train.iterations", "method.pit.lambda_adv", "train.lr", "method.name", "data.source_kind"):
        wheel(form.fields[key])
    assert form.config().to_dict() == before
    spin = form.fields["train.iterations"]  # clicked or tabbed into, it scrolls as usual
    form.activateWindow()
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=5000)
    wheel(spin, notches=1)
    assert form.config().train.iterations == before["train"]["iterations"] + spin.singleStep()


def test_the_apps_openmp_threads_sleep_while_they_wait():
    # spinning OpenMP threads starved the window on a busy machine (ready after 8-9 s instead of
    # 1.2-1.4 s, and past the 60 s the tests wait under two busy loops); the app makes them sleep
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import pit_gui.main_window, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "PASSIVE", done.stderr[-2000:]


def test_the_category_chart_shows_q_the_pooled_score_and_the_state_apart(qtbot):
    # a bar's colour came from the refreshed pivot: q = 0.45 was drawn green, "present", left of τ_hi
    import pyqtgraph as pg

    from pit_engine.predict import Prediction
    from pit_gui.panels import MODEL_COLOURS, CategoryChart

    def prediction(q_car, pooled_car, state_car):
        q, pooled = np.full(19, 0.01, np.float32), np.zeros(19, np.float32)
        pivot = np.zeros(19, np.int8)
        q[13], pooled[13], pivot[13] = q_car, pooled_car, state_car
        return Prediction(classes=np.zeros((4, 4), np.uint8), confidence=np.ones((4, 4), np.float32), q=q,
                          pooled=pooled, pivot=pivot, tau_lo=0.1, tau_hi=0.5)
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    chart = CategoryChart()
    widget.addItem(chart)
    truth = np.zeros(19, bool)
    truth[13] = True
    chart.show_vectors([("source-only", prediction(0.2, 0.1, -1)), ("PIT", prediction(0.45, 0.61, 1))], truth)
    bars = [item for item in chart.bars if isinstance(item, pg.BarGraphItem)]
    assert [b.opts["brush"].color().getRgb()[:3] for b in bars] == list(MODEL_COLOURS)  # a colour per model
    diamonds = [item for item in chart.bars if isinstance(item, pg.ScatterPlotItem)]
    assert [float(d.data["x"][13]) for d in diamonds] == pytest.approx([0.1, 0.61])  # the pooled scores
    marks = [item.toPlainText() for item in chart.bars if isinstance(item, pg.TextItem)]
    assert marks.count("●") == 1 and marks.count("?") == 1 and marks.count("○") == 36
    assert chart.hover_text(13) == ("car (in the ground truth)\nsource-only: q 0.200 · pooled 0.100 · pivot unsure\n"
                                    "PIT: q 0.450 · pooled 0.610 · pivot present")
    assert chart.tau_hi.value() == 0.5 and chart.tau_lo.value() == 0.1


def test_the_panels_say_what_they_show(window, qtbot, tmp_path):
    # the third panel keys its colours on screen, a frame without labels says so (panel and IoU
    # table), and seeds are not drawn in the white of the boundaries
    view = window.inspect_view
    wait_scored(qtbot, window)
    view.third.setCurrentIndex(1)
    title = view.panel_c.titleLabel.text
    assert title.startswith("who is right") and "only PIT" in title and "both wrong" in title
    r = view.result()
    car = CITYSCAPES_CLASSES.index("car")
    view.region_class.setCurrentIndex(car)
    seeds = r.preds[1].seeds & (r.preds[1].regions == car)
    if seeds.any():
        assert (view.panel_regions.array[seeds] == overlay.SEED_COLOUR).all()
    assert view.region_mode.currentText().startswith("cyan seeds")
    unlabelled = tmp_path / "frames"
    unlabelled.mkdir()
    Image.fromarray(r.image).save(unlabelled / "street.png")
    assert window.open_path(unlabelled)
    qtbot.waitUntil(lambda: view.result() is not None and view.result().path.name == "street.png", timeout=WAIT_MS)
    view.third.setCurrentIndex(0)
    assert view.panel_c.titleLabel.text.startswith("no ground truth")
    assert view.table.rowCount() == 1 and view.table.item(0, 0).text() == "no ground truth for this frame"


def test_the_learning_rate_is_drawn_as_it_is(qtbot):
    from pit_gui.loss_plots import LossPlots

    plots = LossPlots()
    qtbot.addWidget(plots)
    plots.add_records([{"kind": "step", "iteration": i, "lr": 0.01 * (1 - i / 100), "seg": 1.0 / i} for i in range(1, 40)])
    plots._redraw()
    raw, smooth = plots.curves[("main", "lr")]  # xData / yData: the data set, not what the view clips
    assert smooth.xData is None or len(smooth.xData) == 0  # no EMA of a schedule
    assert list(raw.yData) == pytest.approx([0.01 * (1 - i / 100) for i in range(1, 40)])
    assert len(plots.curves[("main", "seg")][1].xData) == 39  # a loss keeps its smoothed curve


def test_curves_on_steps_or_on_elapsed_time(qtbot):
    from pit_gui.loss_plots import LossPlots

    plots = LossPlots()
    qtbot.addWidget(plots)
    start = 1_700_000_000.0
    plots.add_records([{"kind": "step", "iteration": i, "time": start + 30 * i, "lr": 0.01, "seg": 1.0 / i}
                       for i in range(1, 11)])
    plots.add_reference([{"kind": "step", "iteration": i, "time": start + 9999 + 60 * i, "seg": 2.0 / i}
                         for i in range(1, 6)], "other")  # started later: its own time counts from its start
    plots._redraw()
    raw, _ = plots.curves[("main", "seg")]
    assert list(raw.xData) == list(range(1, 11)) and plots.plots["seg"].getAxis("bottom").labelText == "iteration"
    plots.x_axis.setCurrentText("elapsed time")
    assert list(raw.xData) == pytest.approx([0.5 * i - 0.5 for i in range(1, 11)])  # minutes since its first record
    assert list(plots.curves[("ref1", "seg")][0].xData) == pytest.approx([i - 1.0 for i in range(1, 6)])
    assert plots.plots["seg"].getAxis("bottom").labelText == "elapsed (min)"
    assert "at iteration 5, 2.0 min" in plots.value_at("seg", 2.1)
    plots.x_axis.setCurrentText("steps")
    assert list(raw.xData) == list(range(1, 11))


def test_the_health_curves_follow_the_loss_curves_x_axis(qtbot):
    from pit_gui.train_view import TrainView

    view = TrainView()
    qtbot.addWidget(view)
    start = 1_700_000_000.0
    view.add_records([{"kind": "step", "iteration": 1, "time": start, "seg": 1.0},
                      {"kind": "health", "iteration": 50, "time": start + 120, "frames": 16, "pl_coverage": 0.5},
                      {"kind": "health", "iteration": 100, "time": start + 300, "frames": 16, "pl_coverage": 0.6}])
    assert view.health.series("pl_share")[0] == [50, 100]
    view.plots.x_axis.setCurrentText("elapsed time")  # minutes since the run's first record, like the losses
    assert view.health.series("pl_share")[0] == pytest.approx([2.0, 5.0])
    assert view.health.plot.getAxis("bottom").labelText == "elapsed (min)"


def test_the_form_check_and_resume_do_what_a_user_expects(make_window, qtbot, settings, tiny_demo, tmp_path):
    # the folders Make demo data filled in survive a restart; Check on a missing folder says why on
    # the dialog itself; "No" to "Resume?" starts a new run beside the old one
    first = make_window(demo_models=False, demo_frames=False)
    first.train_view.form.set_config(tiny_config(tiny_demo, train={"iterations": 2}))
    first.close()
    second = make_window(demo_models=False, demo_frames=False)
    form = second.train_view.form
    assert form.fields["data.source_root"].text() == str(tiny_demo / "source")
    assert form.fields["train.iterations"].value() == 2

    second.check_data("gta5", str(tmp_path / "missing"), "")
    qtbot.waitUntil(second.info_box.isVisible, timeout=WAIT_MS)
    assert "folder not found" in second.info_box.informativeText()

    run = tmp_path / "run"
    Trainer(tiny_config(tiny_demo, train={"iterations": 2}), run, log=lambda *_: None).run()
    second.train_view.run_dir.setText(str(run))
    asked = []
    second.confirm = lambda title, text: asked.append(text) or False
    assert second.start_training()
    assert "No: start a new run in" in asked[0] and second.train_view.run_dir.text() == str(tmp_path / "run-2")
    qtbot.waitUntil(lambda: not second.training, timeout=WAIT_MS)
    assert list((tmp_path / "run-2" / "checkpoints").glob("*.pt"))
    assert [p.name for p in (run / "checkpoints").glob("*.pt")] == ["iter_0000002.pt"]  # the old run untouched


def test_form_errors_name_the_field_as_the_form_shows_it(window, tiny_demo):
    # not `--set data.target_root` or a bare config key: the group and label on screen
    form, box = window.train_view.form, window.error_box
    form.set_config(tiny_config(tiny_demo))
    form.fields["data.target_root"].setText("")
    assert not window.start_training()
    assert box.text() == ("error: 'Data ▸ Target folder' is empty (the training form) — fill it in, or make demo "
                          "data (Train ▸ Make demo data…)")
    box.hide()
    form.fields["data.target_root"].setText(str(tiny_demo / "target"))
    form.fields["train.iterations"].setValue(0)
    assert not window.start_training()
    assert box.text().startswith("error: 'Training ▸ Iterations' (train.iterations) must be at least 1")
    form.set_config(Config.load(resource("demo.toml")))  # a preset without folders still saves
    assert form.config().data.source_root == ""


def test_curves_link_their_x_axes_read_out_on_hover_and_export(window, qtbot, tiny_demo, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(tiny_demo), run, log=lambda *_: None).run()
    assert window.open_path(run)
    plots = window.train_view.plots
    qtbot.waitUntil(lambda: len(plots.points("seg")[0]) == 6, timeout=WAIT_MS)
    first = plots.plots[plots.terms()[0]]
    assert all(p.vb.linkedView(p.vb.XAxis) is first.vb for t, p in plots.plots.items() if p is not first)
    xs, ys = plots.points("seg")
    assert f"seg {ys[2]:.4g}" in plots.value_at("seg", 3.2) and "at iteration 3" in plots.value_at("seg", 3.2)
    assert "lr" in plots.value_at("lr", 6) and "smoothed" not in plots.value_at("lr", 6)
    for suffix in ("png", "svg", "csv"):
        assert window.export_plots(tmp_path / f"curves.{suffix}")
    assert Image.open(tmp_path / "curves.png").size[0] > 100
    assert "<svg" in (tmp_path / "curves.svg").read_text()[:2000]
    rows = (tmp_path / "curves.csv").read_text().splitlines()
    assert rows[0] == "run,term,iteration,time,value,smoothed" and sum(r.startswith("run,seg,") for r in rows) == 6
    assert not window.export_plots(tmp_path / "curves.bmp")
    assert "use .png, .svg or .csv" in window.error_box.text()


def test_focus_mode_flips_between_a_b_and_the_truth_and_the_readout_names_the_pixel(window, qtbot):
    from PySide6.QtTest import QTest

    view = window.inspect_view
    wait_scored(qtbot, window)
    window.tabs.setCurrentIndex(1)
    QTest.keyClick(window, Qt.Key_F)  # the window's shortcut: the adapted model fills the view
    assert view.compared.focused == 1
    assert [h.isVisible() for h in view.compared.hosts] == [False, True, False] and not view.pivot_row.isVisible()
    QTest.keyClick(window, Qt.Key_Space)
    assert view.compared.focused == 2 and [h.isVisible() for h in view.compared.hosts] == [False, False, True]
    QTest.keyClick(window, Qt.Key_Space)
    assert view.compared.focused == 0
    assert view.panel_b.vb.linkedView(view.panel_b.vb.XAxis) is None  # a focused panel zooms on its own
    QTest.keyClick(window, Qt.Key_F)
    assert view.compared.focused is None and all(h.isVisible() for h in view.compared.hosts)
    assert view.pivot_row.isVisible()
    assert view.panel_b.vb.linkedView(view.panel_b.vb.XAxis) is view.panel_a.vb  # linked again
    r = view.result()
    y, x = 40, 10
    text = view.readout_at(x, y)
    a_name = CITYSCAPES_CLASSES[r.preds[0].classes[y, x]]
    assert text.startswith(f"({x}, {y}) · source-only: {a_name} {r.preds[0].confidence[y, x]:.2f} · PIT: ")
    assert text.endswith(f"ground truth: {CITYSCAPES_CLASSES[r.truth[y, x]]}" if r.truth[y, x] < 19 else "ignored")
    assert view.readout_at(10_000, 0) == ""


def test_models_are_named_by_run_and_method(window, qtbot, tiny_demo, tmp_path):
    run = tmp_path / "g11"
    Trainer(tiny_config(tiny_demo), run, log=lambda *_: None).run()
    assert window.open_path(run)
    view = window.inspect_view
    qtbot.waitUntil(lambda: view.models.name(view.pair[1]) == "g11 · PIT @ 6", timeout=WAIT_MS)
    assert view.models.table.item(view.pair[1], 0).text() == "g11 · PIT @ 6"
    # the run's model joins the open ones: the source-only model stays in panel A
    assert view.models.names == ["source-only", "PIT", "g11 · PIT @ 6"] and view.pair == (0, 2)
    qtbot.waitUntil(lambda: view.result() is not None and len(view.result().preds) == 3, timeout=WAIT_MS)
    assert view.panel_b.titleLabel.text.startswith("B · g11 · PIT @ 6")


def test_the_folder_summary_sums_the_scored_frames(window, qtbot, tmp_path):
    from pit_engine.compare import FolderComparison

    view, folder = window.inspect_view, window.folder_summary
    wait_scored(qtbot, window)
    qtbot.waitUntil(lambda: len(folder.totals.frames) == 8, timeout=WAIT_MS)
    expected = FolderComparison()
    hits = said = truth = 0
    road = CITYSCAPES_CLASSES.index("road")
    for path in view.frames:
        r = view.cache[path]
        expected.update(r.preds[0].classes, r.preds[1].classes, r.truth)
        hits += int(r.preds[1].pivot[road] == 1 and r.truth_present[road])
        said += int(r.preds[1].pivot[road] == 1)
        truth += int(r.truth_present[road])
    table = {row["class"]: row for row in expected.table(CITYSCAPES_CLASSES)}
    qtbot.waitUntil(lambda: "Over 8 of 8 frame(s)" in folder.info.text(), timeout=WAIT_MS)  # refreshes throttled
    cells = folder.row("road")
    assert cells[1] == f"{100 * table['road']['a']:.1f}" and cells[2] == f"{100 * table['road']['b']:.1f}"
    # a pivot column for the model that has one (PIT), none for source-only
    assert len(cells) == 5 and cells[4] == f"{100 * hits / said:.1f} / {100 * hits / truth:.1f}"
    assert folder.image.image is not None
    window.tabs.setCurrentIndex(2)
    unlabelled = tmp_path / "frames"
    unlabelled.mkdir()
    Image.fromarray(view.cache[view.frames[0]].image).save(unlabelled / "street.png")
    assert window.open_path(unlabelled)
    qtbot.waitUntil(lambda: "No frame with ground truth" in folder.info.text(), timeout=WAIT_MS)


def test_frame_filters_show_the_frames_that_match(window, qtbot):
    view = window.inspect_view
    wait_scored(qtbot, window)
    car, train = CITYSCAPES_CLASSES.index("car"), CITYSCAPES_CLASSES.index("train")

    def expected(test):
        return sorted(p for p in view.frames if test(view.cache[p]))
    view.filter_class.setCurrentIndex(car)
    view.filter.setCurrentText("ground truth holds the class")
    assert sorted(view.shown_frames()) == expected(lambda r: r.truth_present[car])
    view.filter.setCurrentText("a model predicts the class")
    assert sorted(view.shown_frames()) == expected(lambda r: (r.preds[0].classes == car).any() or (r.preds[1].classes == car).any())
    view.filter.setCurrentText("a pivot is wrong about the class")
    for c in range(19):  # some class the PIT pivot gets wrong on some frame, and the frames it does
        view.filter_class.setCurrentIndex(c)
        wrong = expected(lambda r: (r.preds[1].pivot[c] == 1) != bool(r.truth_present[c]) and r.preds[1].pivot[c] != -1)
        assert sorted(view.shown_frames()) == wrong
    view.filter_class.setCurrentIndex(train)
    view.filter.setCurrentText("ground truth holds the class")
    shown = view.shown_frames()
    view.filter.setCurrentText("all frames")
    assert len(view.shown_frames()) == 8 and len(shown) <= 8
    # stepping skips the hidden frames
    view.filter_class.setCurrentIndex(car)
    view.filter.setCurrentText("ground truth holds the class")
    shown = view.shown_frames()
    if len(shown) >= 2:
        view.list.setCurrentItem(view.items[shown[0]])
        view.step(1)
        assert view.current == shown[1]


def test_every_config_key_is_in_the_form_with_its_documentation(qtbot):
    import dataclasses

    from pit_engine.config import section_classes
    from pit_gui.config_form import ConfigForm

    form = ConfigForm()
    qtbot.addWidget(form)
    keys = {f"{section}.{f.name}" for section, cls in section_classes().items() for f in dataclasses.fields(cls)}
    assert keys <= set(form.fields)  # generated from the schema: a new key appears by itself
    assert "horizon" in form.fields["train.poly_iterations"].toolTip()
    assert "support" in form.fields["method.pit.gwrp_support"].toolTip()
    for preset in ("demo.toml", "gta5_to_cityscapes.toml", "synthia_to_cityscapes.toml"):
        config = Config.load(resource(preset))
        form.set_config(config)
        assert form.config().to_dict() == config.to_dict(), preset  # every value survives the form
    form.fields["data.crop"].setText("[512, 256]")
    form.fields["method.pit.tau_hi"].setValue(0.6)
    config = form.config()
    assert config.data.crop == [512, 256] and config.method.pit.tau_hi == 0.6
    form.fields["data.crop"].setText("[512, ")
    with pytest.raises(Exception, match="not a list"):
        form.config()


def test_wide_frames_get_two_rows_of_panels(window, qtbot):
    view = window.inspect_view
    panels = view.compared
    qtbot.waitUntil(lambda: view.result() is not None, timeout=WAIT_MS)

    def spot(i):
        return panels.grid.getItemPosition(panels.grid.indexOf(panels.hosts[i]))[:2]
    assert view.result().image.shape[1] >= 2 * view.result().image.shape[0] and panels.rows == 2  # auto, 2:1
    assert [spot(i) for i in range(3)] == [(0, 0), (0, 1), (1, 0)]
    view.layout_choice.setCurrentText("one row")
    assert panels.rows == 1 and spot(2) == (0, 2)
    view.layout_choice.setCurrentText("auto")
    assert panels.rows == 2


def test_any_number_of_models_two_of_them_in_the_panels(window, qtbot, tmp_path):
    view, folder = window.inspect_view, window.folder_summary
    wait_scored(qtbot, window)
    a, b, _ = demo_inputs()
    third = tmp_path / "other" / "checkpoints" / "iter_0000001.pt"  # another run's checkpoint
    third.parent.mkdir(parents=True)
    third.write_bytes(a.read_bytes())
    assert window.open_checkpoint(third, "b")
    qtbot.waitUntil(lambda: len(view.models.names) == 3 and all(view.models.names), timeout=WAIT_MS)
    wait_scored(qtbot, window)
    assert view.pair == (0, 2) and all(len(s) == 3 for s in view.scores.values())
    # the gain of B over A next to the class (in sight however many models), then one IoU column per model
    header = [view.table.horizontalHeaderItem(j).text() for j in range(view.table.columnCount())]
    assert header == ["class", "Δ (B − A)", "source-only", "PIT", "source-only"]
    assert view.table.item(0, 1).text() == "+0.0"  # the same weights in A and B
    qtbot.waitUntil(lambda: "Over 8 of 8" in folder.info.text(), timeout=WAIT_MS)
    assert folder.table.columnCount() == 1 + 3 + 1 + 1  # class, three IoUs, Δ, PIT's pivot
    assert folder.pair == (0, 2) and folder.which.currentIndex() == 2  # Δ and the matrix: panel B's model

    # another pair: drawn and sorted from what is there, nothing predicted again
    generation, r = view.generation, view.result()
    view.models.groups["b"].button(1).click()
    assert view.pair == (0, 1) and view.generation == generation and view.result() is r
    assert view.panel_b.titleLabel.text.startswith("B · PIT")
    assert np.array_equal(view.panel_b.array, overlay.blend(r.image, r.preds[1].classes, view.alpha, True))
    view.sort.setCurrentText("gain of B over A, best first")
    order = [Path(view.list.item(i).data(Qt.UserRole)) for i in range(view.list.count())]
    gains = [view.scores[p][1] - view.scores[p][0] for p in order]
    assert gains == sorted(gains, reverse=True)
    view.models.groups["a"].button(2).click()
    assert view.pair == (2, 1) and view.panel_a.titleLabel.text.startswith("A · source-only")
    assert folder.pair == (2, 1)
    # the adapted model in A, source-only in B: the pivot's panels show A's pivot (B has none)
    view.models.set_pair(1, 0)
    c, pit = view.region_class.currentIndex(), r.preds[1]
    assert np.array_equal(view.panel_regions.array, overlay.regions(r.image, pit.regions, pit.seeds, c, view.alpha))

    # closing a model: the rest are predicted again, the panels keep two models
    view.models.remove(2)
    assert view.models.checkpoints == [str(a), str(b)] and view.pair == (1, 0)
    qtbot.waitUntil(lambda: view.result() is not None and len(view.result().preds) == 2, timeout=WAIT_MS)
    assert view.table.columnCount() == 4


def test_frames_are_scored_in_the_background_with_progress(window, qtbot):
    view = window.inspect_view
    wait_scored(qtbot, window)
    assert view.progress.isHidden()
    window.open_frames(demo_inputs()[2], remember=False)
    qtbot.waitUntil(lambda: not view.progress.isHidden(), timeout=WAIT_MS)
    assert view.progress.maximum() == 8 and view.progress.value() < 8
    wait_scored(qtbot, window)
    assert view.progress.isHidden()


def test_the_prediction_cache_is_bounded_and_keeps_the_shown_frame(window, qtbot, monkeypatch):
    import dataclasses

    import pit_gui.inspect_state as inspect_state
    view = window.inspect_view
    wait_scored(qtbot, window)
    shown = view.frames[3]
    view.select(shown)
    r = view.result()
    monkeypatch.setattr(inspect_state, "CACHE_BYTES", int(2.5 * r.nbytes))
    for path in view.frames:  # every frame scored again (as for a folder of 500), the shown one first
        view.on_ready(dataclasses.replace(r, path=path))
    assert sum(x.nbytes for x in view.cache.values()) <= 2.5 * r.nbytes
    assert shown in view.cache and view.frames[-1] in view.cache and len(view.cache) == 2


def wheel_notch(widget, notches=-1):
    """A real wheel event over the middle of a widget, as a mouse sends it (no click before)."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    pos = QPointF(widget.width() / 2, widget.height() / 2)
    QApplication.sendEvent(widget, QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * notches),
                                               Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False))


def test_the_wheel_over_the_preset_box_loads_nothing(qtbot):
    # one notch over the preset box switched demo.toml to gta5_to_cityscapes.toml and refilled the form
    from pit_gui.train_view import TrainView

    view = TrainView()
    qtbot.addWidget(view)
    view.show()
    before = view.form.config().to_dict()
    wheel_notch(view.preset, -1)  # one notch down: the next preset
    assert view.preset.currentText() == "demo.toml" and view.form.config().to_dict() == before


def test_every_combo_spin_box_and_slider_takes_the_wheel_only_with_focus(make_window, qtbot):
    # in Inspect one notch each changed Sort by, Third panel and the Opacity slider
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QMenu, QSlider

    window = make_window(demo_models=False, demo_frames=False)

    def state(w):
        return w.currentIndex() if isinstance(w, QComboBox) else w.value()
    controls = [w for kind in (QComboBox, QAbstractSpinBox, QSlider) for w in window.findChildren(kind)]
    controls = [w for w in controls if not isinstance(w.window(), QMenu)]  # pyqtgraph's context menus: not on screen
    view = window.inspect_view
    assert {view.sort, view.third, view.opacity, view.filter, window.train_view.preset,
            window.train_view.plots.smoothing, window.folder_summary.which} <= set(controls)
    for w in controls:
        if isinstance(w, QComboBox) and w.count() < 2:
            w.addItems(["one", "two", "three"])  # something to change to (the folder summary's models)
        if isinstance(w, QComboBox):
            w.setCurrentIndex(1)
        else:
            w.setValue((w.minimum() + w.maximum()) / 2 if isinstance(w.value(), float)
                       else (w.minimum() + w.maximum()) // 2)
    before = [state(w) for w in controls]
    for w in controls:
        wheel_notch(w, -1)
        wheel_notch(w, 1)
        wheel_notch(w, -1)
    changed = [f"{type(w).__name__} {w.objectName() or w.toolTip()[:40]}" for w, old in zip(controls, before)
               if state(w) != old]
    assert not changed
    window.tabs.setCurrentIndex(1)  # focused (a click or Tab), the wheel works as usual
    window.activateWindow()
    view.sort.setFocus()
    qtbot.waitUntil(view.sort.hasFocus, timeout=5000)
    index = view.sort.currentIndex()
    wheel_notch(view.sort, -1)
    assert view.sort.currentIndex() == index + 1


def test_a_preset_over_edited_values_asks_first_and_can_be_undone(qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from pit_gui.train_view import TrainView

    view = TrainView()
    qtbot.addWidget(view)
    view.show()
    asked = []
    answer = [QMessageBox.No]

    def question(*args, **kwargs):
        asked.append(args[2] if len(args) > 2 else "")
        return answer[0]
    monkeypatch.setattr(QMessageBox, "question", question)
    gta5 = view.preset.findText("gta5_to_cityscapes.toml")
    # not edited: a preset loads at once, and Undo puts demo.toml back
    view.preset.activated.emit(gta5)
    assert not asked and view.form.config().train.iterations == Config.load(resource("gta5_to_cityscapes.toml")).train.iterations
    assert view.undo_preset.isEnabled()
    QTest.mouseClick(view.undo_preset, Qt.LeftButton)
    assert view.form.config().to_dict() == Config.load(resource("demo.toml")).to_dict()
    assert view.preset.currentText() == "demo.toml" and not view.undo_preset.isEnabled()

    # edited: asked first; No keeps every edited value
    view.form.fields["train.iterations"].setValue(1234)
    view.form.fields["method.pit.tau_lo"].setValue(0.07)
    view.form.fields["data.crop"].setText("[48, ")  # half typed
    edited = view.form.snapshot()
    view.preset.setCurrentIndex(gta5)  # what picking it in the box does, then activated
    view.preset.activated.emit(gta5)
    assert len(asked) == 1 and "gta5_to_cityscapes.toml" in asked[0]
    assert view.form.snapshot() == edited and view.preset.currentIndex() == 0
    # Yes replaces them; Undo preset brings them back, half-typed text included
    answer[0] = QMessageBox.Yes
    view.preset.setCurrentIndex(gta5)
    view.preset.activated.emit(gta5)
    assert len(asked) == 2 and view.form.fields["train.iterations"].value() != 1234
    assert view.preset.currentText() == "gta5_to_cityscapes.toml"
    QTest.mouseClick(view.undo_preset, Qt.LeftButton)
    assert view.form.snapshot() == edited and view.form.fields["data.crop"].text() == "[48, "


def test_the_frame_list_cuts_long_names_in_the_middle_and_tells_them_in_full(make_window, qtbot):
    # "democity_000000_0003…" for all 8 frames, and no tooltip
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QFontMetrics, QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    window = make_window(demo_models=False)
    window.tabs.setCurrentIndex(1)
    view = window.inspect_view
    qtbot.waitUntil(lambda: len(view.frames) == 8 and view.list.count() == 8, timeout=WAIT_MS)
    view.splitter.setSizes([180, 900, 330])  # a narrow list: the names do not fit
    qtbot.wait(50)
    assert view.list.textElideMode() == Qt.ElideMiddle
    metrics, shown = QFontMetrics(view.list.font()), set()
    for i in range(view.list.count()):
        item = view.list.item(i)
        name = item.text().split("\n")[0]
        width = view.list.visualItemRect(item).width() - view.list.iconSize().width() - 12
        assert metrics.horizontalAdvance(name) > width  # too long for the list: cut
        shown.add(metrics.elidedText(name, view.list.textElideMode(), width))
    assert len(shown) == 8  # the ends that tell the frames apart stay visible
    item = view.list.item(2)
    pos = view.list.visualItemRect(item).center()
    viewport = view.list.viewport()
    QApplication.sendEvent(viewport, QHelpEvent(QEvent.ToolTip, pos, viewport.mapToGlobal(pos)))
    path = Path(item.data(Qt.UserRole))
    assert QToolTip.text().split("\n")[0] == path.name
    QToolTip.hideText()


def train_menu_actions(window) -> dict:
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Train")
    return {a.text(): a for a in menu.actions() if a.text()}


def test_a_stopped_run_leaves_no_stale_controls_progress_or_messages(make_window, qtbot, tiny_demo, tmp_path):
    # Pause and Stop enabled while idle, "stopped: stopped at iteration 391", the bar left at 380/500
    import re

    window = make_window(demo_models=False, demo_frames=False)
    tv = window.train_view
    actions = train_menu_actions(window)
    assert actions["Start"].isEnabled()
    assert not actions["Pause / resume"].isEnabled() and not actions["Stop"].isEnabled()
    # no step is logged before the stop (log_every): only the stop can say where the run got to
    config = tiny_config(tiny_demo, "source_only", train={"iterations": 2000, "log_every": 1000,
                                                          "checkpoint_every": 2})
    tv.form.set_config(config)
    tv.run_dir.setText(str(tmp_path / "run"))
    QTest.mouseClick(tv.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.training, timeout=WAIT_MS)
    assert not actions["Start"].isEnabled()
    assert actions["Pause / resume"].isEnabled() and actions["Stop"].isEnabled()
    qtbot.waitUntil(lambda: "checkpoint iter_0000002.pt" in tv.log.toPlainText(), timeout=WAIT_MS)
    QTest.mouseClick(tv.stop, Qt.LeftButton)
    assert not actions["Stop"].isEnabled()  # asked once: it stops after the current step
    qtbot.waitUntil(lambda: not window.training, timeout=WAIT_MS)
    assert actions["Start"].isEnabled()
    assert not actions["Pause / resume"].isEnabled() and not actions["Stop"].isEnabled()
    events = (tmp_path / "run/events.log").read_text()
    stopped_at = int(re.search(r"stopped at iteration (\d+)", events).group(1))
    assert stopped_at >= 2 and "stopped stopped" not in events and "finished: stopped" not in events
    assert tv.progress.value() == stopped_at and tv.progress.maximum() == 2000
    log = tv.log.toPlainText()
    assert f"stopped at iteration {stopped_at}" in log and "stopped: stopped" not in log


def test_the_status_bar_and_run_directory_follow_what_is_shown(make_window, qtbot, tiny_demo, tmp_path):
    # Inspect's frame name on the Train tab, "checking target…" after the check, the last run's folder
    window = make_window(demo_models=False)
    bar = window.statusBar()
    qtbot.waitUntil(lambda: len(window.inspect_view.frames) == 8 and not window.tasks, timeout=WAIT_MS)
    assert window.tabs.currentIndex() == 1 and bar.currentMessage() == "8 frame(s)"
    QTest.keyClick(window, Qt.Key_1, Qt.ControlModifier)  # View ▸ Train
    assert window.tabs.currentIndex() == 0 and bar.currentMessage() == ""
    QTest.keyClick(window, Qt.Key_2, Qt.ControlModifier)  # back: Inspect's own news again
    assert bar.currentMessage() == "8 frame(s)"
    QTest.keyClick(window, Qt.Key_1, Qt.ControlModifier)

    window.check_data("cityscapes", str(tiny_demo / "target"), "val")
    assert bar.currentMessage() == "checking target…"
    qtbot.waitUntil(lambda: not window.tasks, timeout=WAIT_MS)
    assert bar.currentMessage().startswith("cityscapes: 4 frame(s)")
    window.info_box.hide()

    runs = []
    for name in ("first", "second"):
        run = tmp_path / name
        run.mkdir()
        (run / "config.toml").write_text(tiny_config(tiny_demo).to_toml())
        (run / "metrics.jsonl").write_text(json.dumps({"kind": "step", "iteration": 1, "lr": 0.1, "seg": 1.0}) + "\n")
        runs.append(run)
    window.train_view.run_dir.setText(str(tmp_path / "typed"))
    for run in runs:
        assert window.open_path(run)
        assert window.train_view.run_dir.text() == str(run)


# issue 26, items 1-3: the panels' geometry -----------------------------------------------------------
def frame_size(view) -> tuple[int, int]:
    h, w = view.result().image.shape[:2]
    return w, h


def assert_fitted(panel, w: int, h: int) -> None:
    """The view's range holds the whole frame and is tight along one axis (fitted, not zoomed out);
    the frame, when drawn, fills the panel's view box along that axis."""
    (x0, x1), (y0, y1) = panel.vb.viewRange()
    assert x0 <= 0.5 and x1 >= w - 0.5 and y0 <= 0.5 and y1 >= h - 0.5, panel.vb.viewRange()
    assert x1 - x0 <= w * 1.02 or y1 - y0 <= h * 1.02, panel.vb.viewRange()
    if panel.array is not None:
        box, image = panel.vb.sceneBoundingRect(), panel.image_item.sceneBoundingRect()
        assert box.adjusted(-1, -1, 1, 1).contains(image)  # nothing drawn beyond the panel (clipped)
        assert image.width() >= box.width() - 2 or image.height() >= box.height() - 2


def assert_fills_the_view(view, i: int) -> None:
    """Focus mode: panel i is the only one shown, over the whole view, fitted."""
    compared, panel = view.compared, view.compared.panels[i]
    assert [h.isVisible() for h in compared.hosts] == [j == i for j in range(3)]
    host = compared.hosts[i]
    assert host.width() >= compared.width() - 2 and host.height() >= compared.height() - 2
    assert panel.vb.sceneBoundingRect().width() >= 0.95 * compared.width()
    assert_fitted(panel, *frame_size(view))


def test_focus_mode_fills_the_view_with_the_one_panel(window, qtbot):
    # panel B stayed in its cell at the same size, the rest of the view blank; Space and Ctrl+0 too
    from PySide6.QtWidgets import QApplication

    view = window.inspect_view
    wait_scored(qtbot, window)
    window.tabs.setCurrentIndex(1)
    QTest.mouseClick(view.compared.hosts[1].viewport(), Qt.LeftButton)  # click panel B
    QTest.keyClick(QApplication.focusWidget() or window, Qt.Key_F)
    qtbot.wait(100)
    assert view.compared.focused == 1
    assert_fills_the_view(view, 1)
    QTest.keyClick(QApplication.focusWidget() or window, Qt.Key_Space)  # the ground truth
    qtbot.wait(100)
    assert_fills_the_view(view, 2)
    QTest.keyClick(window, Qt.Key_0, Qt.ControlModifier)
    qtbot.wait(50)
    assert_fills_the_view(view, 2)
    window.resize(1200, 800)
    qtbot.wait(100)
    assert_fills_the_view(view, 2)
    QTest.keyClick(window, Qt.Key_F)  # the three back, each in its cell, fitted
    qtbot.wait(100)
    assert view.compared.focused is None and all(h.isVisible() for h in view.compared.hosts)
    for panel in view.compared.panels:
        assert_fitted(panel, *frame_size(view))
    # Panels = one row (a narrow column each), then focus: the one panel takes the whole view too
    view.layout_choice.setCurrentText("one row")
    QTest.keyClick(window, Qt.Key_F)
    qtbot.wait(100)
    assert_fills_the_view(view, 1)


def test_pit_gui_focus_b_fills_the_view(make_window, qtbot):
    # `pit-gui --focus b`: what app.main does before the window's first frame is drawn
    window = make_window()
    window.tabs.setCurrentIndex(1)
    window.inspect_view.compared.set_focus(1)
    qtbot.waitUntil(window.ready_for_screenshot, timeout=WAIT_MS)
    qtbot.wait(100)
    assert_fills_the_view(window.inspect_view, 1)


@pytest.fixture(scope="module")
def demo_like_runs(tiny_demo, tmp_path_factory) -> Path:
    """OUT/pit beside OUT/source_only, as `pit demo` writes them, with a checkpoint each."""
    out = tmp_path_factory.mktemp("demo_out")
    for name in ("source_only", "pit"):
        Trainer(tiny_config(tiny_demo, name, train={"iterations": 2, "warmup": 1}), out / name,
                log=lambda *_: None).run()
    return out


def test_a_runs_baseline_is_its_source_only_sibling_else_none(demo_like_runs, tmp_path):
    import shutil

    from pit_engine.runs import source_only_sibling

    assert source_only_sibling(demo_like_runs / "pit") == demo_like_runs / "source_only"
    assert source_only_sibling(demo_like_runs / "source_only") is None  # a baseline has none
    alone = tmp_path / "alone" / "pit"
    shutil.copytree(demo_like_runs / "pit", alone)
    assert source_only_sibling(alone) is None
    for name in ("source_only_seed11", "source_only_seed12"):  # several seeds: the run's own first
        shutil.copytree(demo_like_runs / "source_only", tmp_path / "alone" / name)
    (tmp_path / "alone" / "pit").rename(tmp_path / "alone" / "pit_seed12")
    assert source_only_sibling(tmp_path / "alone" / "pit_seed12") == tmp_path / "alone" / "source_only_seed12"


def test_opening_one_run_draws_it_fitted_beside_its_baseline(make_window, qtbot, demo_like_runs, tmp_path):
    # `pit-gui RUN`: panel A was empty and B and the truth drawn shifted to the bottom right, clipped
    import shutil

    window = make_window(demo_models=False)
    view = window.inspect_view
    assert window.open_path(demo_like_runs / "pit")
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: view.result() is not None and None not in view.pair_preds(view.result()),
                    timeout=WAIT_MS)
    qtbot.wait(100)
    assert Path(view.models.checkpoint("a")).parent == demo_like_runs / "source_only" / "checkpoints"
    assert Path(view.models.checkpoint("b")).parent == demo_like_runs / "pit" / "checkpoints"
    for panel in view.compared.panels:
        assert_fitted(panel, *frame_size(view))

    # a run without a source-only sibling: the shipped demo source-only model in A
    alone = tmp_path / "alone" / "pit"
    shutil.copytree(demo_like_runs / "pit", alone)
    window2 = make_window(demo_models=False)
    assert window2.open_path(alone)
    assert window2.inspect_view.models.checkpoint("a") == str(demo_inputs()[0])


def test_one_model_and_none_in_a_is_drawn_fitted(make_window, qtbot, demo_like_runs):
    window = make_window(demo_models=False)
    view = window.inspect_view
    window.open_checkpoint(next((demo_like_runs / "pit" / "checkpoints").glob("*.pt")), "b")
    qtbot.waitUntil(lambda: view.result() is not None and view.pair_preds(view.result())[1] is not None,
                    timeout=WAIT_MS)
    qtbot.wait(100)
    assert view.models.checkpoint("a") == "" and view.panel_a.array is None
    for panel in view.compared.panels:
        assert_fitted(panel, *frame_size(view))
    view.panel_b.vb.setRange(xRange=(10, 30), yRange=(5, 15), padding=0)  # zoomed in
    QTest.keyClick(window, Qt.Key_0, Qt.ControlModifier)  # View ▸ Fit to panel
    qtbot.wait(50)
    for panel in view.compared.panels:
        assert_fitted(panel, *frame_size(view))
    # a second model (`pit-gui A.pt B.pt`): the first moves to the empty panel A, the second is B
    first = view.models.checkpoint("b")
    window.open_checkpoint(demo_inputs()[1], "b")
    assert view.models.checkpoint("a") == first and view.models.checkpoint("b") == str(demo_inputs()[1])


def test_small_frames_fill_the_space_the_panels_have(window, qtbot):
    # 128x64 frames were drawn about 366x183 in 409x233 cells, the fourth cell empty
    view = window.inspect_view
    window.tabs.setCurrentIndex(1)
    wait_scored(qtbot, window)
    qtbot.wait(100)
    compared = view.compared
    assert compared.rows == 2
    assert compared.grid.indexOf(view.regions_host) >= 0 and view.regions_host.isVisible()
    assert compared.grid.getItemPosition(compared.grid.indexOf(view.regions_host))[:2] == (1, 1)
    for panel, host in zip(compared.panels, compared.hosts):
        image = panel.image_item.sceneBoundingRect()
        assert max(image.width() / host.width(), image.height() / host.height()) >= 0.95
    # one row: the regions panel goes back under the panels, beside the chart
    view.layout_choice.setCurrentText("one row")
    assert compared.grid.indexOf(view.regions_host) < 0 and view.pivot_row.isAncestorOf(view.regions_host)


def test_each_error_shows_once_for_the_action_that_caused_it(window, qtbot, tmp_path):
    # a folder with a truncated and a garbage PNG: the truncated one's dialog came back on later
    # actions, a truncated checkpoint then showed only the PNG's message, and an unreadable frame
    # kept showing the previous frame with its "mIoU 29.1" title
    from PySide6.QtWidgets import QMessageBox

    view, box = window.inspect_view, window.error_box
    shown = []
    show_error = window.show_error
    window.show_error = lambda line, details="": (shown.append(line), show_error(line, details))
    _, _, frames = demo_inputs()
    good = sorted(frames.rglob("*.png"))[0]
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "a_good.png").write_bytes(good.read_bytes())
    (folder / "b_truncated.png").write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    (folder / "c_garbage.png").write_bytes(bytes(range(256)) * 4)
    window.open_frames(folder)
    qtbot.waitUntil(lambda: len(view.unreadable) == 2 and len(view.scores) == 1, timeout=WAIT_MS)
    qtbot.wait(300)
    lines = box.text().split("\n")
    assert box.isVisible() and len(lines) == 2  # both, neither hiding the other
    assert sum("b_truncated.png" in line for line in lines) == 1 and sum("c_garbage.png" in line for line in lines) == 1
    assert len(shown) == 2
    QTest.mouseClick(box.button(QMessageBox.Ok), Qt.LeftButton)
    assert not box.isVisible()

    # later actions: selecting each frame (the list's keys), another pair of models (a click)
    view.list.setFocus()
    view.list.setCurrentRow(0)
    qtbot.waitUntil(lambda: view.result() is not None and view.panel_b.array is not None, timeout=WAIT_MS)
    QTest.keyClick(view.list, Qt.Key_Down)
    assert view.current.name == "b_truncated.png"
    qtbot.wait(300)
    for panel in view.compared.panels:  # shown as unreadable, not the previous frame
        assert panel.array is None and "unreadable" in panel.titleLabel.text and "mIoU" not in panel.titleLabel.text
    assert view.table.item(0, 0).text() == "unreadable frame"
    QTest.keyClick(view.list, Qt.Key_Down)
    assert view.current.name == "c_garbage.png" and "c_garbage.png is unreadable" in view.panel_b.titleLabel.text
    QTest.mouseClick(view.models.groups["a"].button(1), Qt.LeftButton)  # PIT in panel A
    QTest.keyClick(view.list, Qt.Key_Up)
    qtbot.wait(500)
    assert not box.isVisible() and len(shown) == 2

    # a truncated checkpoint (Ctrl+K, then this file): its own error, alone
    _, pit, _ = demo_inputs()
    broken = tmp_path / "truncated.pt"
    broken.write_bytes(pit.read_bytes()[:len(pit.read_bytes()) // 2])
    window.open_checkpoint(broken, "b")
    qtbot.waitUntil(box.isVisible, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: view.models.names == ["source-only", "PIT"] and len(view.scores) == 1, timeout=WAIT_MS)
    qtbot.wait(500)
    assert len(shown) == 3 and "truncated.pt" in shown[2]
    assert box.text() == shown[2] and ".png" not in box.text()


def test_the_folder_summary_has_the_headline_a_colour_scale_values_on_hover_and_marks_empty_rows(window, qtbot):
    # no mean-IoU row, no colour scale, no values on hover, column names cut and run together
    # ("motorbicyc"), and truth rows without pixels (truck, train) drawn as rows of zero shares
    import pyqtgraph as pg
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QFontMetricsF
    from PySide6.QtWidgets import QToolTip

    from pit_engine.evaluate import ConfusionMatrix

    view, folder = window.inspect_view, window.folder_summary
    wait_scored(qtbot, window)
    qtbot.waitUntil(lambda: "Over 8 of 8 frame(s)" in folder.info.text(), timeout=WAIT_MS)
    window.tabs.setCurrentIndex(2)
    qtbot.wait(100)
    sums = [sum(view.cache[p].matrices[k] for p in view.frames) for k in (0, 1)]
    means = [ConfusionMatrix.of(m).miou(range(19)) for m in sums]
    # each model's mean is over the classes in the truth or its prediction: the two may differ
    over = sorted({int(np.isfinite(ConfusionMatrix.of(m).iou()).sum()) for m in sums})
    label = f"mIoU ({over[0]} classes)" if len(over) == 1 else f"mIoU ({over[0]}–{over[-1]} classes)"
    cells = [folder.table.item(0, j).text() for j in range(4)]
    assert cells[0] == label and folder.table.item(0, 0).font().bold()
    assert cells[1:] == [f"{100 * means[0]:.1f}", f"{100 * means[1]:.1f}", f"{100 * (means[1] - means[0]):+.1f}"]

    # a colour scale beside the matrix, reading the shares as percentages
    assert isinstance(folder.scale, pg.ColorBarItem) and folder.scale.scene() is folder.graphics.scene()
    assert tuple(folder.scale.levels()) == (0, 1)

    # every column named in full, upright, one line per column: none cut, none run together
    axis = folder.plot.getAxis("bottom")
    assert axis.names == list(CITYSCAPES_CLASSES)
    metrics = QFontMetricsF(folder.font())
    assert axis.height() >= max(metrics.horizontalAdvance(n) for n in CITYSCAPES_CLASSES)
    column = folder.plot.vb.mapViewToScene(QPointF(1, 0)).x() - folder.plot.vb.mapViewToScene(QPointF(0, 0)).x()
    assert column >= metrics.height()

    # the values of a cell on hover: a real mouse move over the matrix
    matrix, road, car = sums[1], CITYSCAPES_CLASSES.index("road"), CITYSCAPES_CLASSES.index("car")

    def hover(r, c):
        scene = folder.plot.vb.mapViewToScene(QPointF(c + 0.5, r + 0.5))
        QTest.mouseMove(folder.graphics.viewport(), folder.graphics.mapFromScene(scene))
        qtbot.wait(50)
        return folder.hovered
    share = 100 * matrix[road, car] / matrix[road].sum()
    assert hover(road, car) == (f"truth road → predicted car: {share:.1f} % of the truth's road pixels "
                                f"({int(matrix[road, car]):,} of {int(matrix[road].sum()):,})")
    qtbot.waitUntil(lambda: QToolTip.text() == folder.hovered, timeout=5000)

    # a truth row the frames have no pixel of says so, and is no row of zero shares
    empty = [c for c in range(19) if matrix[c].sum() == 0]
    assert empty and [round(t.pos().y() - 0.5) for t in folder.empty_rows] == empty
    assert all(t.toPlainText() == "no pixels" for t in folder.empty_rows)
    assert np.isnan(folder.shares[empty[0]]).all()
    name = CITYSCAPES_CLASSES[empty[0]]
    assert hover(empty[0], road) == f"{name}: no pixels in the ground truth of the frames scored"
    QToolTip.hideText()


def test_the_category_chart_explains_itself_labels_tau_and_keeps_the_pooled_diamond_hollow(qtbot):
    # nothing explained q, the pooled score or the refresh rule; the τ lines carried no values; a
    # pooled diamond beyond the end of its bar was a tiny filled dot
    import pyqtgraph as pg
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    from pit_engine.predict import Prediction
    from pit_gui.panels import CategoryChart

    car = CITYSCAPES_CLASSES.index("car")

    def prediction(q_car, pooled_car):
        q, pooled = np.full(19, 0.01, np.float32), np.zeros(19, np.float32)
        q[car], pooled[car] = q_car, pooled_car
        return Prediction(classes=np.zeros((4, 4), np.uint8), confidence=np.ones((4, 4), np.float32), q=q,
                          pooled=pooled, pivot=np.zeros(19, np.int8), tau_lo=0.05, tau_hi=0.5)
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    chart = CategoryChart()
    widget.addItem(chart)
    widget.resize(700, 600)
    widget.show()
    qtbot.waitExposed(widget)
    # A: the diamond inside its bar; B: beyond the end of its bar
    chart.show_vectors([("A", prediction(0.8, 0.4)), ("B", prediction(0.2, 0.9))], None)
    qtbot.wait(100)
    assert [label.toPlainText() for label in chart.tau_labels] == ["τ_lo 0.05", "τ_hi 0.5"]

    # the help on the chart: a "?" whose tooltip says what q, pooled and the refresh rule are
    viewport = widget.viewport()
    pos = widget.mapFromScene(chart.help.mapToScene(chart.help.boundingRect().center()))

    def tooltip():  # a tooltip still fading out from an earlier test may take a moment to give way
        QApplication.sendEvent(viewport, QHelpEvent(QEvent.ToolTip, pos, viewport.mapToGlobal(pos)))
        return QToolTip.text()
    qtbot.waitUntil(lambda: "GWRP" in tooltip(), timeout=5000)
    text = QToolTip.text()
    assert "q" in text and "max(q, pooled)" in text and "τ_hi" in text and "τ_lo" in text
    QToolTip.hideText()

    # each pooled diamond is drawn hollow in white: seen inside its bar and beyond it
    image = widget.grab().toImage()
    diamonds = [item for item in chart.bars if isinstance(item, pg.ScatterPlotItem)]
    for diamond, x in zip(diamonds, (0.4, 0.9)):
        assert diamond.opts["symbol"] == "d" and diamond.opts["brush"].style() == Qt.NoBrush
        centre = widget.mapFromScene(chart.vb.mapViewToScene(QPointF(x, float(diamond.data["y"][car]))))
        white = [image.pixelColor(centre.x() + dx, centre.y() + dy).lightness() > 200
                 for dx in range(-6, 7) for dy in range(-6, 7)]
        assert sum(white) >= 8, x  # its outline, not a dot in the bar's or the background's colour


def test_the_default_layout_shows_check_the_exports_and_the_gain(make_window, qtbot, tmp_path):
    # at 1440x900: the Check buttons cut to "Chec", Export view / Export folder below the fold, and
    # with three models the Δ column behind a horizontal scroll bar
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QPushButton

    window = make_window()
    qtbot.waitUntil(window.ready_for_screenshot, timeout=WAIT_MS)
    assert window.size().toTuple() == (1440, 900)
    window.tabs.setCurrentIndex(0)
    form = window.train_view.form
    checks = [b for b in form.findChildren(QPushButton) if b.text() == "Check"]

    def checks_whole():
        viewport = form.parentWidget()  # the scroll area's viewport
        return all(viewport.rect().contains(QRect(b.mapTo(viewport, QPoint(0, 0)), b.size()))
                   and b.width() >= b.sizeHint().width() for b in checks)
    qtbot.wait(50)
    assert len(checks) == 2 and checks_whole()
    font = form.font()  # larger text (another font, a high-DPI setting): the form pane widens, nothing is cut
    font.setPointSizeF(font.pointSizeF() * 1.4)
    form.setFont(font)
    qtbot.wait(100)
    assert checks_whole()

    window.tabs.setCurrentIndex(1)
    view = window.inspect_view
    qtbot.wait(50)
    exports = [b for b in view.findChildren(QPushButton) if b.text() in ("Export view…", "Export folder…")]
    assert len(exports) == 2  # (the what-if's export sits with the what-if, in the regions box)
    for button in exports:  # in sight, whole, without scrolling
        assert button.visibleRegion().boundingRect() == button.rect()

    third = tmp_path / "other" / "checkpoints" / "iter_0000001.pt"
    third.parent.mkdir(parents=True)
    third.write_bytes(demo_inputs()[0].read_bytes())
    assert window.open_checkpoint(third, "b")
    qtbot.waitUntil(lambda: len(view.models.names) == 3 and all(view.models.names) and view.result() is not None
                    and len(view.result().preds) == 3 and view.table.columnCount() == 5, timeout=WAIT_MS)
    qtbot.wait(50)
    table = view.table
    delta = [j for j in range(table.columnCount()) if table.horizontalHeaderItem(j).text() == "Δ (B − A)"][0]
    assert table.horizontalScrollBar().value() == 0
    assert table.columnViewportPosition(delta) + table.columnWidth(delta) <= table.viewport().width()
