"""Shared transforms: resize, random crop, horizontal flip and a named normalisation.

Images are resized bilinearly, labels with nearest neighbour. Randomness comes from the torch
generator passed in (the trainer seeds one per draw, so a resumed run repeats its augmentations)
or from torch's global one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from pit_engine.classes import IGNORE
from pit_engine.errors import UserError


@dataclass(frozen=True)
class Normalization:
    """How pixels become network input; its name is recorded in every checkpoint."""

    name: str
    mean: tuple[float, float, float]  # in the channel order given by `bgr`, on the 0..255 scale
    std: tuple[float, float, float]
    bgr: bool

    def apply(self, image: np.ndarray) -> torch.Tensor:
        """H x W x 3 uint8 RGB to a 3 x H x W float tensor."""
        x = torch.tensor(np.ascontiguousarray(image), dtype=torch.float32).permute(2, 0, 1)
        if self.bgr:
            x = x.flip(0)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (x - mean) / std

    def invert(self, x: torch.Tensor) -> np.ndarray:
        """A 3 x H x W normalised tensor back to H x W x 3 uint8 RGB."""
        x = x.detach().float().cpu() * torch.tensor(self.std).view(3, 1, 1) + torch.tensor(self.mean).view(3, 1, 1)
        if self.bgr:
            x = x.flip(0)
        return x.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


NORMALIZATIONS = {
    # torchvision ImageNet statistics on RGB
    "imagenet": Normalization("imagenet", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375), bgr=False),
    # Caffe-style DeepLab weights (the AdaptSegNet / ADVENT initialisation): BGR, mean only
    "caffe": Normalization("caffe", (104.008, 116.669, 122.679), (1.0, 1.0, 1.0), bgr=True),
    # TensorFlow-trained EfficientNet-Lite: RGB scaled to about [-1, 1]
    "inception": Normalization("inception", (127.0, 127.0, 127.0), (128.0, 128.0, 128.0), bgr=False),
}


def get_normalization(name: str) -> Normalization:
    try:
        return NORMALIZATIONS[name]
    except KeyError:
        raise UserError(f"unknown normalisation '{name}'", "normalization",
                        f"use one of: {', '.join(NORMALIZATIONS)}") from None


def resize(image: np.ndarray, label: np.ndarray | None, size: tuple[int, int]):
    """Resize to (width, height): image bilinear, label nearest."""
    w, h = size
    if image.shape[1] != w or image.shape[0] != h:
        image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    if label is not None and (label.shape[1] != w or label.shape[0] != h):
        label = np.asarray(Image.fromarray(label).resize((w, h), Image.NEAREST))
    return image, label


class Transform:
    """resize -> random crop -> random horizontal flip -> normalise."""

    def __init__(self, size: tuple[int, int] | None = None, crop: tuple[int, int] | None = None,
                 flip: bool = False, normalization: str = "imagenet"):
        self.size, self.crop, self.flip = size, crop, flip
        self.normalization = get_normalization(normalization)

    def __call__(self, image: np.ndarray, label: np.ndarray | None = None, generator: torch.Generator | None = None):
        if self.size is not None:
            image, label = resize(image, label, self.size)
        if self.crop is not None:
            image, label = self._random_crop(image, label, self.crop, generator)
        if self.flip and torch.rand((), generator=generator) < 0.5:
            image = image[:, ::-1]
            label = None if label is None else label[:, ::-1]
        x = self.normalization.apply(image)
        y = None if label is None else torch.tensor(np.ascontiguousarray(label), dtype=torch.long)
        return x, y

    @staticmethod
    def _random_crop(image, label, crop, generator):
        cw, ch = crop
        h, w = image.shape[:2]
        if h < ch or w < cw:  # pad: black image, ignored label
            ph, pw = max(ch - h, 0), max(cw - w, 0)
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
            if label is not None:
                label = np.pad(label, ((0, ph), (0, pw)), constant_values=IGNORE)
            h, w = image.shape[:2]
        top = int(torch.randint(0, h - ch + 1, (), generator=generator))
        left = int(torch.randint(0, w - cw + 1, (), generator=generator))
        image = image[top:top + ch, left:left + cw]
        label = None if label is None else label[top:top + ch, left:left + cw]
        return image, label
