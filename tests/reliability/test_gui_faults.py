"""The window under faults: a training that fails mid-run (a NaN loss at iteration 3) shows the
one-line reason in a dialog and leaves the window ready for the next run."""
from PySide6.QtCore import QSettings

from conftest import tiny_config
from pit_engine import pit_ops
from pit_gui.main_window import MainWindow


def test_training_failing_mid_run(qtbot, tiny_demo, tmp_path, monkeypatch):
    real, calls = pit_ops.image_level_loss, {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs) * (float("nan") if calls["n"] >= 3 else 1.0)
    monkeypatch.setattr(pit_ops, "image_level_loss", poisoned)
    window = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), demo_models=False, demo_frames=False)
    qtbot.addWidget(window)
    window.show()
    window.train_view.form.set_config(tiny_config(tiny_demo, train={"iterations": 50, "checkpoint_every": 1}))
    window.train_view.run_dir.setText(str(tmp_path / "run"))
    try:
        assert window.start_training()
        qtbot.waitUntil(lambda: not window.training, timeout=60000)
        assert window.error_box.isVisible()
        assert window.error_box.text().startswith("error: loss 'img_src' is not finite at iteration 3")
        assert window.train_view.start.isEnabled() and not window.train_view.stop.isEnabled()
        assert len(window.train_view.plots.points("seg")[0]) == 2  # the two good steps stay plotted
        assert (tmp_path / "run" / "checkpoints" / "iter_0000002.pt").is_file()
    finally:
        window.close()
    assert not window.inference_thread.isRunning()
