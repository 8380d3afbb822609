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

from pit_engine import method as M
from pit_engine.checkpoint import restore_model
from pit_engine.classes import CITYSCAPES_CLASSES
from pit_engine.data.transforms import get_normalization, resize


@dataclass
class Prediction:
    classes: np.ndarray  # H x W uint8 trainIds at the frame's resolution
    confidence: np.ndarray  # H x W float32, probability of the arg-max class
    q: np.ndarray  # C float32, the pivot head's category vector sigmoid(F(x))
    pooled: np.ndarray  # C float32, GWRP-pooled class probabilities
    pivot: np.ndarray  # C int8: 1 present, 0 absent, -1 unsure (after the optional GWRP refresh)
    tau_lo: float
    tau_hi: float
    cams: np.ndarray  # C x h x w float32 class activation maps at the network's feature resolution
    seeds: np.ndarray  # H x W bool, region-growing seeds
    regions: np.ndarray  # H x W uint8, grown regions (trainId, 255 elsewhere)

    @property
    def size(self) -> tuple[int, int]:
        return self.classes.shape[1], self.classes.shape[0]

    def cam(self, c: int) -> np.ndarray:
        """Class c's activation map at the frame's resolution, scaled to 0..1."""
        cam = torch.from_numpy(self.cams[c])[None, None]
        up = F.interpolate(cam, size=self.classes.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
        lo, hi = float(up.min()), float(up.max())
        return (up - lo) / (hi - lo) if hi > lo else np.zeros_like(up)

    def pixel_share(self) -> np.ndarray:
        """Fraction of the frame's pixels given to each class."""
        return np.bincount(self.classes.ravel(), minlength=256)[: len(self.q)] / self.classes.size


class Predictor:
    def __init__(self, model, state: dict, device="cpu"):
        self.model, self.device = model, torch.device(device)
        cfg = state["config"]
        self.classes = list(state["classes"])
        self.normalization = get_normalization(state["normalization"])
        self.size = tuple(cfg["eval"]["size"])
        m = cfg["method"]
        self.tau_lo, self.tau_hi = m["tau_lo"], m["tau_hi"]
        self.gwrp_decay, self.refresh_pivot = m["gwrp_decay"], m["refresh_pivot"]
        self.seed_threshold, self.grow_threshold, self.seed_ratio = m["seed_threshold"], m["grow_threshold"], m["seed_ratio"]
        self.source_kind = cfg["data"]["source_kind"]
        self.iteration = state.get("iteration", 0)
        self.name = state.get("name", "")

    @classmethod
    def from_checkpoint(cls, path: str | Path, device="cpu") -> "Predictor":
        model, state = restore_model(path, device)
        predictor = cls(model, state, device)
        predictor.name = predictor.name or Path(path).stem
        return predictor

    @property
    def class_names(self) -> list[str]:
        return self.classes or list(CITYSCAPES_CLASSES)

    @torch.no_grad()
    def predict(self, image: np.ndarray) -> Prediction:
        return self.predict_batch([image])[0]

    @torch.no_grad()
    def predict_batch(self, images: list[np.ndarray]) -> list[Prediction]:
        """Frames of any sizes: each is resized to the evaluation size, so they share one forward."""
        x = torch.stack([self.normalization.apply(resize(np.asarray(im), None, self.size)[0]) for im in images])
        out = self.model(x.to(self.device))
        small = F.interpolate(out.logits.float(), size=x.shape[-2:], mode="bilinear", align_corners=False)
        prob_small = small.softmax(1)
        q, pooled, pivot = M.infer_pivot(out.pivot, prob_small, self.tau_lo, self.tau_hi, self.gwrp_decay,
                                         self.refresh_pivot)
        regions, seeds = M.expand_regions(prob_small, pivot, self.seed_threshold, self.grow_threshold, self.seed_ratio)
        cams = self.model.pivot_head.cam(out.features.float())
        results = []
        for i, image in enumerate(images):
            h, w = image.shape[:2]
            prob = F.interpolate(out.logits[i:i + 1].float(), size=(h, w), mode="bilinear",
                                 align_corners=False).softmax(1)[0]
            conf, cls = prob.max(0)
            near = lambda t: F.interpolate(t[None, None].float(), size=(h, w), mode="nearest")[0, 0]  # noqa: E731
            results.append(Prediction(
                classes=cls.byte().cpu().numpy(), confidence=conf.cpu().numpy(),
                q=q[i].cpu().numpy(), pooled=pooled[i].cpu().numpy(), pivot=pivot[i].cpu().numpy().astype(np.int8),
                tau_lo=self.tau_lo, tau_hi=self.tau_hi, cams=cams[i].cpu().numpy(),
                seeds=near(seeds[i]).bool().cpu().numpy(), regions=near(regions[i]).byte().cpu().numpy()))
        return results
