"""The training run the window drives: start (resume a run directory that holds checkpoints, or
start a new one beside it), pause, stop, the trainer's events onto the Train view, and a close that
waits for the trainer to stop. It holds the TrainWorker, its thread and the run's length."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QThread, Slot

from pit_engine.errors import UserError
from pit_gui.workers import TrainWorker, start_thread


class TrainingRun(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.worker: TrainWorker | None = None
        self.thread: QThread | None = None
        self.total = 0  # the run's iterations
        self.close_when_stopped = False

    @property
    def active(self) -> bool:
        return self.worker is not None

    def start(self) -> bool:
        window, tv = self.window, self.window.train_view
        if self.active:
            return False
        try:
            config = tv.form.config_to_train()
        except UserError as exc:
            window.show_error(exc.line())
            return False
        run_dir = tv.default_run_dir()
        resume = _has_checkpoints(run_dir)
        if resume:
            fresh = _next_free(run_dir)
            if not window.confirm("Resume?", f"{run_dir} already holds checkpoints.\n\nYes: resume that run.\n"
                                             f"No: start a new run in {fresh}."):
                run_dir, resume = fresh, False
                tv.run_dir.setText(str(run_dir))
        window.opener.stop_following()
        worker = TrainWorker(config, run_dir, resume)
        worker.started.connect(self.on_started)
        worker.steps.connect(self.on_steps)
        worker.evaluated.connect(self.on_evaluated)
        worker.health.connect(self.on_health)
        worker.checkpoint.connect(self.on_checkpoint)
        worker.message.connect(tv.say)
        worker.finished.connect(self.on_finished)
        self.worker = worker
        self.thread = start_thread(worker, "trainer", (self._join,))
        tv.clear_curves(run_dir.name)
        tv.set_running(True)
        window.menus.sync_train_actions()
        tv.say(f"starting {run_dir}")
        window.tabs.setCurrentIndex(0)
        window.say("training…")
        return True

    def toggle_pause(self) -> None:
        if not self.active:
            return
        trainer = self.worker.trainer
        if trainer.paused:
            self.worker.resume()
            self.window.say("resumed")
        else:
            self.worker.pause()
            self.window.say("paused (after the current step)")
        self.window.train_view.set_running(True, trainer.paused)
        self.window.menus.sync_train_actions()

    def stop(self) -> None:
        if self.active:
            self.worker.stop()
            self.window.train_view.stop.setEnabled(False)
            self.window.menus.sync_train_actions()
            self.window.say("stopping after the current step…")

    def close_requested(self) -> bool:
        """The window asked to close: False while the trainer runs (after asking, it is stopped and
        the window closes once its thread is joined)."""
        if not self.active:
            return True
        if not self.close_when_stopped:
            if not self.window.confirm("Training is running", "Stop the training (a checkpoint is saved) and quit?"):
                return False
            self.close_when_stopped = True
            self.stop()
        return False

    # the trainer's events ----------------------------------------------------------------------------
    @Slot(object)
    def on_started(self, event) -> None:
        tv = self.window.train_view
        self.total = event.total_iterations
        tv.plots.set_x_max(event.total_iterations)
        tv.show_progress(event.start_iteration, event.total_iterations)
        tv.say(f"training on {event.device}, {event.total_iterations} iterations, run {event.run_dir}")
        self.window.remembered.remember(Path(event.run_dir))
        self.window.timeline_view.open_run(event.run_dir, live=True)  # grows as the health steps come

    @Slot(list)
    def on_steps(self, steps) -> None:
        tv = self.window.train_view
        tv.plots.add_records([{"kind": "step", "iteration": s.iteration, "time": s.time, "lr": s.lr, **s.losses}
                              for s in steps])
        last = steps[-1]
        tv.show_progress(last.iteration, self.total, last.its_per_s, last.eta_s)

    @Slot(object)
    def on_evaluated(self, event) -> None:
        tv = self.window.train_view
        tv.plots.add_records([{"kind": "eval", "iteration": event.iteration, "time": event.time,
                               "miou": event.subsets}])
        tv.say(f"evaluated at {event.iteration}{event.scored_on}: mIoU {100 * event.miou:.1f}")

    @Slot(object)
    def on_health(self, event) -> None:
        self.window.train_view.health.add_records([{"kind": "health", "iteration": event.iteration,
                                                    "time": event.time, **event.record}])
        self.window.timeline_view.refresh()  # the step's file, unless its writer is still at it (then soon)

    @Slot(object)
    def on_checkpoint(self, event) -> None:
        self.window.train_view.say(f"checkpoint {Path(event.path).name}")
        self.window.say(f"saved {event.path}")
        self.window.handoff.checkpoint_saved(event.path)

    @Slot(object)
    def on_finished(self, event) -> None:
        window, tv = self.window, self.window.train_view
        tv.say(event.message or event.reason)  # "stopped at iteration 391", not "stopped: stopped …"
        window.timeline_view.stop_following()  # the last step is on disk once the run has ended
        if event.iteration and self.total:  # a stop falls between logged steps: the bar shows where it ended
            tv.show_progress(event.iteration, self.total)
        if event.reason == "failed":
            window.show_error(event.message, event.traceback)
        else:
            window.say(event.message)

    @Slot()
    def _join(self) -> None:
        if self.thread is not None:
            self.thread.wait()
        run_dir = self.worker.trainer.run_dir if self.worker else None
        self.worker = self.thread = None
        self.window.train_view.set_running(False)
        self.window.menus.sync_train_actions()
        if run_dir is not None:
            self.window.handoff.run_ended(run_dir)
        if self.close_when_stopped:
            self.window.close()


def _has_checkpoints(run_dir: Path) -> bool:
    checkpoints = run_dir / "checkpoints"
    return checkpoints.is_dir() and any(checkpoints.glob("*.pt"))


def _next_free(run_dir: Path) -> Path:
    """run_dir-2, -3, ...: the first sibling without checkpoints, for a new run beside an old one."""
    n = 2
    while _has_checkpoints(run_dir.with_name(f"{run_dir.name}-{n}")):
        n += 1
    return run_dir.with_name(f"{run_dir.name}-{n}")
