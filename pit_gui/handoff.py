"""The hand-off from the Train view to the Inspect view: which models Inspect shows for a run.

A run opened shows its newest checkpoint in panel B beside its baseline in panel A; each checkpoint
the trainer saves takes the place of that run's earlier model (with Follow the training run on);
the newest checkpoint of a run that has ended is what the user inspects next. It holds no state of
its own beyond the Inspect view it feeds: the engine says which checkpoint is the newest."""
from __future__ import annotations

from pathlib import Path

from pit_engine.checkpoint import latest_checkpoint
from pit_engine.errors import UserError
from pit_engine.runs import source_only_sibling
from pit_resources import resource


def demo_inputs() -> tuple[Path, Path, Path]:
    """The shipped source-only and PIT checkpoints and the demo val frames."""
    return (resource("demo_source_only.pt"), resource("demo_pit.pt"),
            resource("demo_frames") / "leftImg8bit" / "val")


def baseline(run_dir) -> Path:
    """What panel A shows beside an opened run: the newest checkpoint of its source-only sibling
    run (as `pit demo` writes them), else the shipped demo source-only model."""
    sibling = source_only_sibling(run_dir)
    if sibling is not None:
        try:
            return latest_checkpoint(sibling)
        except UserError:
            pass  # that run has no checkpoint yet
    return demo_inputs()[0]


class Handoff:
    """Train → Inspect: the models a run puts in the Inspect view's list."""

    def __init__(self, inspect_view):
        self.inspect_view = inspect_view

    def run_opened(self, run_dir: Path) -> None:
        """The run's newest checkpoint in panel B, its baseline in an empty panel A; none yet: curves only."""
        try:
            checkpoint = latest_checkpoint(run_dir)
            models = self.inspect_view.models
            if models.a < 0:  # nothing in panel A to compare the run with: its baseline there
                models.add(baseline(run_dir), as_a=True)
            # beside the models already open (the source-only one stays); this run's earlier one gives way
            models.add(checkpoint, replace_run=True)
        except UserError:
            pass  # no checkpoint yet: curves only

    def checkpoint_saved(self, path) -> None:
        if self.inspect_view.follow_training.isChecked():  # Inspect shows the run as it trains
            self.inspect_view.models.add(path, replace_run=True)

    def run_ended(self, run_dir) -> None:
        try:  # the newest checkpoint of the run just trained is what the user inspects next
            self.inspect_view.models.add(latest_checkpoint(run_dir), replace_run=True)
        except UserError:
            pass
