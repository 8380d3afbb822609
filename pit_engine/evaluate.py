"""Evaluation: confusion-matrix IoU at full label resolution, and the pivot's quality.

The network sees each frame resized to the evaluation size; its logits are upsampled to the
label's full size before the arg-max, as the standard protocol does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from pit_engine.checkpoint import restore_model
from pit_engine.classes import CITYSCAPES_CLASSES, EVAL_SUBSETS, IGNORE
from pit_engine.data.datasets import SegmentationDataset, open_dataset
from pit_engine.data.transforms import Normalization, get_normalization, resize
from pit_engine.errors import UserError
from pit_engine.method import PRESENT, category_vector, infer_pivot


class ConfusionMatrix:
    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), np.int64)  # rows: truth, columns: prediction

    def update(self, pred: np.ndarray, label: np.ndarray) -> None:
        valid = label != IGNORE
        c = self.num_classes
        self.matrix += np.bincount(c * label[valid].astype(np.int64) + pred[valid], minlength=c * c).reshape(c, c)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for a class that is neither in the truth nor predicted."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self, subset) -> float:
        """Mean IoU over a class subset, skipping classes absent from truth and prediction."""
        values = self.iou()[list(subset)]
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


@dataclass
class EvalResult:
    miou: dict[str, float]  # by subset name, e.g. {"mIoU19": ...} or {"mIoU16": ..., "mIoU13": ...}
    per_class: dict[str, float]  # IoU by class name (NaN where undefined)
    frames: int
    pivot_precision: dict[str, float] = field(default_factory=dict)
    pivot_recall: dict[str, float] = field(default_factory=dict)

    @property
    def primary(self) -> float:
        return next(iter(self.miou.values()))

    def to_dict(self) -> dict:
        def clean(d):
            return {k: (None if v != v else round(float(v), 6)) for k, v in d.items()}
        return {"miou": clean(self.miou), "per_class": clean(self.per_class), "frames": self.frames,
                "pivot_precision": clean(self.pivot_precision), "pivot_recall": clean(self.pivot_recall)}


@torch.no_grad()
def predict_logits(model, image: np.ndarray, size, normalization: Normalization, device):
    """Logits (1 x C x H x W) for one RGB frame, upsampled to the frame's size, and the raw output."""
    h, w = image.shape[:2]
    small, _ = resize(image, None, tuple(size))
    x = normalization.apply(small).unsqueeze(0).to(device)
    out = model(x)
    logits = F.interpolate(out.logits.float(), size=(h, w), mode="bilinear", align_corners=False)
    return logits, out


@torch.no_grad()
def evaluate(model, dataset: SegmentationDataset, subsets: dict[str, tuple[int, ...]], size, normalization,
             device, tau_lo: float = 0.1, tau_hi: float = 0.5, min_pixels: int = 1, max_frames: int = 0,
             progress=None, gwrp_decay: float = 0.996, refresh_pivot: bool = True) -> EvalResult:
    """Class IoU at full label resolution, and the quality of the pivot the method would use
    (thresholded q, refreshed with the pooled predictions when the config says so)."""
    was_training = model.training
    model.eval()
    num_classes = model.num_classes
    cm = ConfusionMatrix(num_classes)
    hits = np.zeros(num_classes)
    predicted = np.zeros(num_classes)
    actual = np.zeros(num_classes)
    indices = range(len(dataset) if not max_frames else min(max_frames, len(dataset)))
    frames = 0
    for i in (progress(indices) if progress else indices):
        image, label = dataset.load(i)
        if label is None:
            continue
        frames += 1
        logits, out = predict_logits(model, image, size, normalization, device)
        cm.update(logits.argmax(1)[0].cpu().numpy().astype(np.int64), label)
        truth = category_vector(torch.from_numpy(label.astype(np.int64))[None], num_classes, min_pixels)[0].numpy()
        prob = F.interpolate(out.logits.float(), size=(int(size[1]), int(size[0])), mode="bilinear", align_corners=False).softmax(1)
        state = infer_pivot(out.pivot, prob, tau_lo, tau_hi, gwrp_decay, refresh_pivot)[2]
        said = (state[0] == PRESENT).cpu().numpy()
        hits += said * truth
        predicted += said
        actual += truth
    model.train(was_training)
    names = CITYSCAPES_CLASSES[:num_classes]
    iou = cm.iou()
    with np.errstate(invalid="ignore", divide="ignore"):
        precision, recall = hits / predicted, hits / actual
    return EvalResult(
        miou={name: cm.miou(classes) for name, classes in subsets.items()},
        per_class=dict(zip(names, iou.tolist())),
        frames=frames,
        pivot_precision=dict(zip(names, precision.tolist())),
        pivot_recall=dict(zip(names, recall.tolist())),
    )


def evaluate_checkpoint(checkpoint, kind: str, root, split: str | None = None, device="cpu",
                        size=None, max_frames: int = 0, progress=None) -> EvalResult:
    """Evaluate a checkpoint (or a run directory's newest) on a labelled data set."""
    model, state = restore_model(checkpoint, device)
    cfg = state["config"]
    dataset = open_dataset(kind, root, split)
    if not dataset.labelled:
        raise UserError("the data set has no labels to evaluate against", root, "give a labelled split")
    return evaluate(model, dataset, EVAL_SUBSETS[cfg["data"]["source_kind"]], size or cfg["eval"]["size"],
                    get_normalization(state["normalization"]), device, cfg["method"]["tau_lo"],
                    cfg["method"]["tau_hi"], cfg["method"]["min_pixels"], max_frames, progress,
                    cfg["method"]["gwrp_decay"], cfg["method"]["refresh_pivot"])
