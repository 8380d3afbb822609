"""The adaptation's health: how a run's pseudo-labels, pivot and predictions stand on a fixed set of
target training frames, measured every `train.health_every` iterations.

Self-training drifts quietly: a class that starts to lose pixels loses more at each step, and the
losses do not show it. Where the target frames have labels (the demo does), they are read here
for this diagnosis only; no training step ever sees them. Without labels, what can be measured
is still measured: how much of each frame is pseudo-labelled, per class, and how often the pivot
calls each class present or absent.

Per class, each record holds (None where undefined):
- `iou`: the network's IoU on the frames (labels);
- `pl_precision`: of the pixels pseudo-labelled c, the share that truly are c (labels);
- `pl_recall`: of the pixels that are c, the share pseudo-labelled c (labels);
- `pl_share`: the share of all pixels pseudo-labelled c;
- `q_precision`, `q_recall`: the pivot's, of q alone (labels);
- `refreshed_precision`, `refreshed_recall`: of max(q, GWRP(p)) (labels);
- `q_present`, `q_absent`: on how many frames q calls the class present, absent.
Scalars: `pl_coverage` (the share of pixels with any pseudo-label) and each per-class key's mean
over the classes where it is defined.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pit_engine.classes import CITYSCAPES_CLASSES, IGNORE
from pit_engine.data.datasets import SegmentationDataset, open_dataset
from pit_engine.errors import UserError
from pit_engine.evaluate import ConfusionMatrix
from pit_engine.pit_ops import ABSENT, PRESENT, category_vector
from pit_engine.timeline import snapshot

PER_CLASS = ("iou", "pl_precision", "pl_recall", "pl_share", "q_precision", "q_recall", "refreshed_precision",
             "refreshed_recall", "q_present", "q_absent")


def open_health_probe(config, normalization, device, num_classes: int, say) -> HealthProbe | None:
    """The probe of a run: its fixed target train frames, read apart from the training stream
    (their labels, if any, serve the diagnosis alone); None, and said, where they cannot be read."""
    d = config.data
    try:
        frames = open_dataset(d.target_kind, d.target_root, d.target_split if d.target_kind == "cityscapes" else None)
        return HealthProbe(frames, config.train.health_frames, d.target_size, normalization, device, num_classes)
    except UserError as exc:
        say(f"no health curves: {exc.line()}")
        return None


class HealthProbe:
    """A fixed, evenly spaced set of target frames, read once; `measure(model, method)` gives a
    health record of them."""

    def __init__(self, dataset: SegmentationDataset, frames: int, size, normalization, device, num_classes: int):
        from pit_engine.data.transforms import resize

        self.device, self.c = torch.device(device), num_classes
        picks = np.linspace(0, len(dataset) - 1, min(frames, len(dataset))).round().astype(int)
        images, labels, self.images, self.names = [], [], [], []
        for i in sorted(set(picks.tolist())):
            image, label = dataset.load(i)
            x, y = resize(image, label, (int(size[0]), int(size[1])))
            images.append(normalization.apply(x))
            labels.append(None if y is None else torch.from_numpy(np.array(y)).long())
            self.images.append(np.asarray(x, np.uint8))  # as the network saw it, for the run's timeline
            self.names.append(dataset.samples[i].name)
        self.x = torch.stack(images).to(self.device)
        self.labels = torch.stack(labels).to(self.device) if all(y is not None for y in labels) else None
        self.last: tuple | None = None  # the last measure's (student logits, the method's diagnosis)

    def mechanism(self) -> dict[str, np.ndarray]:
        """The last measure's mechanism, per frame, for the run's timeline (pit_engine/timeline.py)."""
        logits, seen = self.last
        student = F.interpolate(logits.float(), size=self.x.shape[-2:], mode="bilinear",
                                align_corners=False).max(1).indices
        truth = self.labels.cpu().numpy() if self.labels is not None else None
        return snapshot(student.cpu().numpy(), seen, truth, self.c)

    @torch.no_grad()
    def measure(self, model, method) -> dict:
        was_training = model.training
        model.eval()
        try:
            out = model(self.x)
            seen = method.diagnose(self.x, out)
        finally:
            model.train(was_training)
        self.last = (out.logits, seen)  # read by `mechanism` alone: a run without a timeline pays nothing
        c, y = self.c, self.labels
        record: dict = {}
        if y is not None:
            pred = F.interpolate(out.logits.float(), size=y.shape[-2:], mode="bilinear",
                                 align_corners=False).max(1).indices
            matrix = ConfusionMatrix(c)
            matrix.update(pred.cpu().numpy(), y.cpu().numpy())
            record["iou"] = [None if np.isnan(v) else round(float(v), 4) for v in matrix.iou()]
        pseudo = seen.get("pseudo")
        if pseudo is not None:
            labelled = pseudo != IGNORE
            record["pl_coverage"] = float(labelled.float().mean())
            record["pl_share"] = (_count_of(pseudo, c) / pseudo.numel()).tolist()
            if y is not None:
                pseudo = F.interpolate(pseudo[:, None].float(), size=y.shape[-2:], mode="nearest")[:, 0].long()
                hits = _hits(pseudo, y, c)
                record["pl_precision"] = _ratio(hits, _count_of(pseudo, c, where=y != IGNORE))
                record["pl_recall"] = _ratio(hits, _count_of(y, c))
        if "pivot_q" in seen:
            q = seen["pivot_q"]
            record["q_present"] = (q == PRESENT).sum(0).tolist()
            record["q_absent"] = (q == ABSENT).sum(0).tolist()
            if y is not None:
                truth = category_vector(y, c)
                for name, state in (("q", q), ("refreshed", seen["pivot_refreshed"])):
                    said = (state == PRESENT).float()
                    record[f"{name}_precision"] = _ratio((said * truth).sum(0), said.sum(0))
                    record[f"{name}_recall"] = _ratio((said * truth).sum(0), truth.sum(0))
        for key in PER_CLASS:
            if key in record:
                values = [v for v in record[key] if v is not None]
                record[f"mean_{key}"] = float(np.mean(values)) if values else None
                record[key] = dict(zip(CITYSCAPES_CLASSES[:c], record[key]))
        record["frames"] = int(self.x.shape[0])
        return record


def _count_of(labels: torch.Tensor, c: int, where: torch.Tensor | None = None) -> torch.Tensor:
    keep = labels != IGNORE if where is None else (labels != IGNORE) & where
    return torch.bincount(labels[keep], minlength=c)[:c].float()


def _hits(pred: torch.Tensor, truth: torch.Tensor, c: int) -> torch.Tensor:
    """Per class, the valid pixels where prediction and truth are both c."""
    t = truth[(pred == truth) & (truth != IGNORE)]
    return torch.bincount(t, minlength=c)[:c].float()


def _ratio(num: torch.Tensor, den: torch.Tensor) -> list:
    return [None if d == 0 else round(float(n / d), 4) for n, d in zip(num.tolist(), den.tolist())]
