"""What a training run reports, as plain dataclasses passed to the caller's callback."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Started:
    total_iterations: int
    run_dir: str
    start_iteration: int = 0
    device: str = "cpu"


@dataclass
class Step:
    iteration: int
    losses: dict[str, float]  # each loss term under its own name, averaged since the last Step
    lr: float
    its_per_s: float
    eta_s: float
    time: float = 0.0  # wall clock (Unix seconds) when it was logged, as in metrics.jsonl


@dataclass
class Evaluated:
    iteration: int
    miou: float  # the primary mean (19 classes, or 16 for a SYNTHIA source)
    per_class: dict[str, float]
    subsets: dict[str, float] = field(default_factory=dict)
    time: float = 0.0
    split: str = ""  # what it was scored on: "val" (the config's data.val_split), or a data set kind
    frames: int = 0

    @property
    def scored_on(self) -> str:
        """Where the scores come from, e.g. ' on val (100 frames)', for a line beside other scores."""
        if not self.split:
            return ""
        return f" on {self.split}" + (f" ({self.frames} frames)" if self.frames else "")


@dataclass
class Health:
    iteration: int
    record: dict  # pit_engine.health: per-class pseudo-label, pivot and IoU measures, and their means
    time: float = 0.0


@dataclass
class CheckpointSaved:
    iteration: int
    path: str


@dataclass
class Finished:
    reason: str  # done, stopped or failed
    message: str = ""
    iteration: int = 0
    traceback: str = ""  # set when the failure is a bug rather than bad input
