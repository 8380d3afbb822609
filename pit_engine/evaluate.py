"""Evaluation: confusion-matrix IoU at full label resolution, and the pivot's quality.

The network sees each frame resized to the evaluation size; its logits are upsampled to the
label's full size before the arg-max, as the standard protocol does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from pit_engine.checkpoint import checkpoint_config, checkpoint_method, restore_model
from pit_engine.classes import CITYSCAPES_CLASSES, EVAL_SUBSETS, IGNORE
from pit_engine.data.datasets import SegmentationDataset, open_dataset
from pit_engine.data.transforms import Normalization, get_normalization, resize
from pit_engine.errors import UserError
from pit_engine.pit_ops import PRESENT, category_vector


class ConfusionMatrix:
    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), np.int64)  # rows: truth, columns: prediction

    @classmethod
    def of(cls, matrix: np.ndarray) -> "ConfusionMatrix":
        """Counts made elsewhere (summed over frames or ranks), to read IoUs from."""
        cm = cls(len(matrix))
        cm.matrix = matrix
        return cm

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
    pivot_precision: dict[str, float] = field(default_factory=dict)  # of q, the classifier's verdict
    pivot_recall: dict[str, float] = field(default_factory=dict)
    skipped: int = 0  # unreadable frames left out
    refreshed_precision: dict[str, float] = field(default_factory=dict)  # of max(q, GWRP(p))
    refreshed_recall: dict[str, float] = field(default_factory=dict)
    subset_classes: dict[str, list[str]] = field(default_factory=dict)  # by subset name, the classes it holds

    def counted(self, subset: str) -> tuple[list[str], list[str]]:
        """The classes a mean is over, and those left out: as in cityscapesScripts, a class with
        neither ground truth nor prediction has no IoU (NaN) and does not count."""
        classes = self.subset_classes.get(subset, [])
        over = [c for c in classes if not np.isnan(self.per_class.get(c, np.nan))]
        return over, [c for c in classes if c not in over]

    @property
    def primary(self) -> float:
        return next(iter(self.miou.values()))

    def to_dict(self) -> dict:
        def clean(d):
            return {k: (None if v != v else round(float(v), 6)) for k, v in d.items()}
        return {"miou": clean(self.miou), "per_class": clean(self.per_class), "frames": self.frames,
                "skipped": self.skipped,
                "pivot_precision": clean(self.pivot_precision), "pivot_recall": clean(self.pivot_recall),
                "refreshed_precision": clean(self.refreshed_precision),
                "refreshed_recall": clean(self.refreshed_recall)}


class _Frames(Dataset):
    """Evaluation frames, read and prepared where the DataLoader's workers run: the network's
    input at the evaluation size, the trainIds at full size, and their category vector."""

    def __init__(self, dataset: SegmentationDataset, indices, size, normalization: Normalization,
                 num_classes: int, min_pixels: int, ignored=()):
        self.dataset, self.indices, self.size = dataset, list(indices), (int(size[0]), int(size[1]))
        self.normalization, self.num_classes, self.min_pixels = normalization, num_classes, min_pixels
        self.ignored = np.array(ignored, np.uint8)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        try:
            image, label = self.dataset.load(self.indices[i])
        except UserError as exc:  # handed over as data: a worker would wrap it in a traceback
            return {"error": exc}
        if label is None:
            return {}
        if self.ignored.size:  # ground truth of classes the network has not: neither hit nor miss
            label = np.where(np.isin(label, self.ignored), IGNORE, label).astype(np.uint8)
        label = torch.from_numpy(np.ascontiguousarray(label))
        return {"x": self.normalization.apply(resize(image, None, self.size)[0]), "label": label,
                "truth": category_vector(label[None].long(), self.num_classes, self.min_pixels)[0]}


def _as_is(item):
    return item


@torch.no_grad()
def evaluate(model, dataset: SegmentationDataset, subsets: dict[str, tuple[int, ...]], size, normalization,
             device, pivot=None, max_frames: int = 0, progress=None, workers: int = 0,
             rank: int = 0, world: int = 1, warn=None) -> EvalResult:
    """Class IoU at full label resolution, and, for a method with a pivot (`pivot`: the method,
    whose `pivot_verdicts` and `min_pixels` it uses), the pivot's quality: of q, the classifier's
    own verdict, and of the refreshed max(q, GWRP(p)).

    Workers read the frames while the device runs the network; the counts stay on the device
    until the end. With world > 1 (torch.distributed), each rank evaluates every world-th frame
    and the counts are summed over the ranks. An unreadable frame is skipped, and `warn` told."""
    was_training = model.training
    model.eval()
    device = torch.device(device)
    c = model.num_classes
    count = len(dataset) if not max_frames else min(max_frames, len(dataset))
    ignored = getattr(model, "absent_classes", ())  # a SYNTHIA network's terrain, truck and train
    frames = _Frames(dataset, range(rank, count, world), size, normalization, c, pivot.min_pixels if pivot else 1,
                     ignored)
    loader = DataLoader(frames, batch_size=None, num_workers=workers, collate_fn=_as_is,
                        pin_memory=device.type == "cuda")
    # one sum over the ranks at the end: the confusion matrix (+ a bin for ignored pixels), the
    # pivot's hits, claims and truths per class, and the frames evaluated and skipped
    confusion = torch.zeros(c * c + 1, dtype=torch.long, device=device)
    pivot_counts = torch.zeros(2, 3, c, device=device)  # q, refreshed
    tally = torch.zeros(2, dtype=torch.long, device=device)
    for i, item in enumerate(progress(loader) if progress else loader):
        if "error" in item:
            tally[1] += 1
            if warn:
                error = item["error"]
                warn(f"warning: skipped {error.where or dataset.samples[frames.indices[i]].image}: {error.what}")
            continue
        if not item:  # unlabelled
            continue
        tally[0] += 1
        label = item["label"].to(device, non_blocking=True).long()
        out = model(item["x"].to(device, non_blocking=True)[None])
        logits = F.interpolate(out.logits.float(), size=label.shape, mode="bilinear", align_corners=False)
        # max(1).indices is argmax(1), and 6x faster on CPUs, whose argmax over a non-innermost dim is slow
        pred = logits.max(1).indices[0]
        cell = torch.where(label != IGNORE, c * label + pred, c * c).flatten()
        confusion.scatter_add_(0, cell, torch.ones_like(cell))  # unlike bincount, no host sync on GPUs
        if pivot is not None:
            truth = item["truth"].to(device)
            for k, state in enumerate(pivot.pivot_verdicts(out).values()):
                said = (state[0] == PRESENT).float()
                pivot_counts[k] += torch.stack([said * truth, said, truth])
    if world > 1:
        for t in (confusion, pivot_counts, tally):
            dist.all_reduce(t)
    model.train(was_training)
    cm = ConfusionMatrix.of(confusion[:c * c].view(c, c).cpu().numpy())
    names = CITYSCAPES_CLASSES[:c]
    iou = cm.iou()
    quality = []  # (precision, recall) by class name, of q and of the refreshed vector
    for hits, predicted, actual in pivot_counts.double().cpu().numpy():
        with np.errstate(invalid="ignore", divide="ignore"):
            quality.append([dict(zip(names, (hits / predicted).tolist())), dict(zip(names, (hits / actual).tolist()))]
                           if pivot is not None else [{}, {}])
    evaluated, skipped = tally.tolist()
    return EvalResult(
        miou={name: cm.miou(classes) for name, classes in subsets.items()},
        subset_classes={name: [names[i] for i in classes] for name, classes in subsets.items()},
        per_class={name: v for i, (name, v) in enumerate(zip(names, iou.tolist())) if i not in ignored},
        frames=evaluated,
        pivot_precision=quality[0][0], pivot_recall=quality[0][1],
        refreshed_precision=quality[1][0], refreshed_recall=quality[1][1],
        skipped=skipped,
    )


def evaluate_checkpoint(checkpoint, kind: str, root, split: str | None = None, device="cpu",
                        size=None, max_frames: int = 0, progress=None, workers: int = 0, warn=None) -> EvalResult:
    """Evaluate a checkpoint (or a run directory's newest) on a labelled data set."""
    model, state = restore_model(checkpoint, device)
    cfg = checkpoint_config(state, checkpoint)
    method = checkpoint_method(state, checkpoint)
    dataset = open_dataset(kind, root, split)
    if not dataset.labelled:
        raise UserError("the data set has no labels to evaluate against", root, "give a labelled split")
    return evaluate(model, dataset, EVAL_SUBSETS[cfg.data.source_kind], size or cfg.eval.size,
                    get_normalization(state["normalization"]), device, method if method.has_pivot else None,
                    max_frames, progress, workers, warn=warn)
