"""Source-only vs adapted on the same frame: where they differ, and who is right."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pit_engine.classes import IGNORE
from pit_engine.evaluate import ConfusionMatrix

BOTH_RIGHT, ONLY_A, ONLY_B, BOTH_WRONG = 0, 1, 2, 3
OUTCOMES = ("both right", "only A right", "only B right", "both wrong")  # A, B: the two predictors
# "both wrong" is violet: no Cityscapes class's colour is near it (a red sat beside person's and rider's)
OUTCOME_COLOURS = np.array([(60, 60, 60), (230, 120, 30), (40, 190, 90), (160, 0, 255)], np.uint8)


@dataclass(eq=False)  # arrays: compared by identity
class Comparison:
    differ: np.ndarray  # H x W bool: the two class maps disagree
    outcome: np.ndarray | None  # H x W uint8 of BOTH_RIGHT .. BOTH_WRONG, 255 where ignored or unknown
    counts: dict[str, int]  # pixels per outcome (with ground truth), or {"same", "differ"}
    miou_a: float | None = None  # per-image mIoU over the classes in truth or prediction
    miou_b: float | None = None
    iou_a: np.ndarray | None = None  # per-class IoU on this image, NaN for classes in neither
    iou_b: np.ndarray | None = None


def compare(a: np.ndarray, b: np.ndarray, truth: np.ndarray | None = None, num_classes: int = 19,
            matrices=(None, None)) -> Comparison:
    """matrices: a's and b's confusion against the truth where already counted (the GUI counts
    each model's once per frame), so they are not counted again."""
    differ = a != b
    if truth is None:
        return Comparison(differ, None, {"same": int((~differ).sum()), "differ": int(differ.sum())})
    valid = truth != IGNORE
    right_a, right_b = a == truth, b == truth
    outcome = np.full(a.shape, IGNORE, np.uint8)
    outcome[valid & right_a & right_b] = BOTH_RIGHT
    outcome[valid & right_a & ~right_b] = ONLY_A
    outcome[valid & ~right_a & right_b] = ONLY_B
    outcome[valid & ~right_a & ~right_b] = BOTH_WRONG
    counts = np.bincount(outcome[valid], minlength=4)
    scores, ious = [], []
    for pred, counted in zip((a, b), matrices):
        cm = ConfusionMatrix.of(counted) if counted is not None else ConfusionMatrix(num_classes)
        if counted is None:
            cm.update(pred.astype(np.int64), truth)
        scores.append(cm.miou(range(num_classes)))
        ious.append(cm.iou())
    return Comparison(differ, outcome, dict(zip(OUTCOMES, map(int, counts))), scores[0], scores[1], *ious)


class FolderComparison:
    """Per-class IoU of two predictors over many frames, and the delta (B - A)."""

    def __init__(self, num_classes: int = 19):
        self.a, self.b = ConfusionMatrix(num_classes), ConfusionMatrix(num_classes)

    def update(self, a: np.ndarray, b: np.ndarray, truth: np.ndarray) -> None:
        self.a.update(a.astype(np.int64), truth)
        self.b.update(b.astype(np.int64), truth)

    def table(self, names) -> list[dict]:
        ia, ib = self.a.iou(), self.b.iou()
        return [{"class": n, "a": _num(x), "b": _num(y), "delta": _num(y - x)} for n, x, y in zip(names, ia, ib)]


def _num(v) -> float | None:
    return None if v != v else round(float(v), 6)
