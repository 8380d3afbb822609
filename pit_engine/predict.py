"""The Predictor: everything the GUI and `pit predict` / `pit export` show about one frame.

Only numpy crosses this boundary. The network sees the frame resized to the checkpoint's
evaluation size; the class map and confidence come back at the frame's full resolution.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pit_engine.checkpoint import checkpoint_method, restore_model
from pit_engine.classes import CITYSCAPES_CLASSES
from pit_engine.data.transforms import get_normalization, resize


@dataclass(eq=False)  # arrays: compared by identity, not element by element
class Prediction:
    classes: np.ndarray  # H x W uint8 trainIds at the frame's resolution
    confidence: np.ndarray  # H x W float32, probability of the arg-max class
    # the pivot and the expanded regions: None for a method without a pivot
    q: np.ndarray | None = None  # C float32, the category vector: the pivot head's sigmoid(F(x)), or the segmenter reading's
    pivot_reading: str = ""  # where q comes from: "head" or "segmenter" ("" without a pivot)
    pooled: np.ndarray | None = None  # C float32, GWRP-pooled class probabilities
    pivot: np.ndarray | None = None  # C int8: 1 present, 0 absent, -1 unsure (after the optional GWRP refresh)
    tau_lo: float = 0.0
    tau_hi: float = 0.0
    cams: np.ndarray | None = None  # C x h x w float32 class activation maps at the network's feature resolution
    seeds: np.ndarray | None = None  # H x W bool, region-growing seeds
    regions: np.ndarray | None = None  # H x W uint8, grown regions (trainId, 255 elsewhere)

    @property
    def has_pivot(self) -> bool:
        return self.q is not None

    @property
    def size(self) -> tuple[int, int]:
        return self.classes.shape[1], self.classes.shape[0]

    def cam(self, c: int) -> np.ndarray:
        """Class c's activation map at the frame's resolution, scaled to 0..1."""
        cam = torch.from_numpy(self.cams[c])[None, None]
        up = F.interpolate(cam, size=self.classes.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
        lo, hi = float(up.min()), float(up.max())
        return (up - lo) / (hi - lo) if hi > lo else np.zeros_like(up)

    def pixel_share(self, num_classes: int = 19) -> np.ndarray:
        """Fraction of the frame's pixels given to each class."""
        return np.bincount(self.classes.ravel(), minlength=256)[:num_classes] / self.classes.size


@dataclass(eq=False)
class WhatIf:
    """What PIT would train a frame towards under a pivot edited by hand: D expands the present
    classes (their pooled score pushed up) and suppresses the absent ones (their peak pushed
    down); E grows its pseudo-labels from seeds under the pivot."""
    pivot: np.ndarray  # C int8, the states given
    expand: np.ndarray  # C bool
    suppress: np.ndarray  # C bool
    pooled: np.ndarray  # C float32, the frame's GWRP-pooled probabilities (what D expands)
    peak: np.ndarray  # C float32, each class's largest probability (what D suppresses)
    regions: np.ndarray  # H x W uint8 at the frame's resolution: the pseudo-labels (255 elsewhere)
    seeds: np.ndarray  # H x W bool


class Predictor:
    def __init__(self, model, state: dict, device="cpu"):
        self.model, self.device = model, torch.device(device)
        self.name = state.get("name", "")
        cfg = state["config"]
        self.classes = list(state["classes"])
        self.normalization = get_normalization(state["normalization"])
        self.size = tuple(cfg["eval"]["size"])
        self.method = checkpoint_method(state, self.name or "the checkpoint")
        self.source_kind = cfg["data"]["source_kind"]
        self.iteration = state.get("iteration", 0)
        self._kept = None  # what_if's frame: (the image array, probabilities, pooled scores, peaks)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device="cpu") -> "Predictor":
        model, state = restore_model(path, device)
        predictor = cls(model, state, device)
        predictor.name = predictor.name or predictor.default_name(path)
        return predictor

    def default_name(self, path) -> str:
        """A checkpoint by its run and method ("g11 · PIT @ 1000"), not by `iter_0001000`."""
        path = Path(path)
        run = path if path.is_dir() else path.parent.parent if path.parent.name == "checkpoints" else None
        label = getattr(self.method, "label", "") or "model"
        return f"{run.name} · {label} @ {self.iteration}" if run is not None else path.stem

    @property
    def has_pivot(self) -> bool:
        """Whether the checkpoint's method has a pivot (and expanded regions) to show."""
        return self.method.has_pivot

    @property
    def class_names(self) -> list[str]:
        return self.classes or list(CITYSCAPES_CLASSES)

    @torch.no_grad()
    def what_if(self, image: np.ndarray, pivot: np.ndarray) -> WhatIf:
        """D's and E's targets for a frame under `pivot` (C states: 1 present, 0 absent, -1 unsure),
        from the network's outputs, by the function the training step calls (the method's
        `targets`). The frame's outputs are kept, so editing the pivot again costs no forward pass."""
        if not self.has_pivot:
            raise ValueError("what-if needs a model with a pivot")
        key = image  # the array itself, held: an id alone could be reused by the next frame's array
        if self._kept is None or self._kept[0] is not key:
            x = self.normalization.apply(resize(np.asarray(image), None, self.size)[0])[None].to(self.device)
            out = self.model(x)
            small = out.logits.float().softmax(1)
            self._kept = (key, F.interpolate(out.logits.float(), size=x.shape[-2:], mode="bilinear",
                                             align_corners=False).softmax(1), self.method.pool(small),
                          small.flatten(2).amax(2))
        _, prob, pooled, peak = self._kept
        state = torch.as_tensor(np.asarray(pivot), dtype=torch.long, device=prob.device)[None]
        targets = self.method.targets(prob, state)
        h, w = image.shape[:2]
        near = lambda t: F.interpolate(t[None, None].float(), size=(h, w), mode="nearest")[0, 0]  # noqa: E731
        return WhatIf(pivot=np.asarray(pivot, np.int8), expand=targets.expand[0].cpu().numpy(),
                      suppress=targets.suppress[0].cpu().numpy(), pooled=pooled[0].cpu().numpy(),
                      peak=peak[0].cpu().numpy(), regions=near(targets.pseudo[0]).byte().cpu().numpy(),
                      seeds=near(targets.seeds[0]).bool().cpu().numpy())

    @torch.no_grad()
    def predict(self, image: np.ndarray) -> Prediction:
        return self.predict_batch([image])[0]

    @torch.no_grad()
    def predict_batch(self, images: list[np.ndarray]) -> list[Prediction]:
        """Frames of any sizes: each is resized to the evaluation size, so they share one forward."""
        x = torch.stack([self.normalization.apply(resize(np.asarray(im), None, self.size)[0]) for im in images])
        out = self.model(x.to(self.device))
        if self.has_pivot:
            prob_small = F.interpolate(out.logits.float(), size=x.shape[-2:], mode="bilinear",
                                       align_corners=False).softmax(1)
            q, pooled, pivot = self.method.infer_pivot(out)
            regions, seeds = self.method.expand(prob_small, pivot)
            cams = self.model.pivot_head.cam(out.features.float())
        results = []
        for i, image in enumerate(images):
            h, w = image.shape[:2]
            prob = F.interpolate(out.logits[i:i + 1].float(), size=(h, w), mode="bilinear",
                                 align_corners=False).softmax(1)[0]
            conf, cls = prob.max(0)
            near = lambda t: F.interpolate(t[None, None].float(), size=(h, w), mode="nearest")[0, 0]  # noqa: E731
            pivot_part = dict(
                q=q[i].cpu().numpy(), pooled=pooled[i].cpu().numpy(), pivot=pivot[i].cpu().numpy().astype(np.int8),
                tau_lo=self.method.config.tau_lo, tau_hi=self.method.config.tau_hi, cams=cams[i].cpu().numpy(),
                pivot_reading=self.method.config.pivot_reading,
                seeds=near(seeds[i]).bool().cpu().numpy(), regions=near(regions[i]).byte().cpu().numpy(),
            ) if self.has_pivot else {}
            results.append(Prediction(classes=cls.byte().cpu().numpy(), confidence=conf.cpu().numpy(), **pivot_part))
        return results
