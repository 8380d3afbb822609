"""Rendering for people: class-colour overlays, heat maps, legends and comparison composites.

numpy and PIL only (no Qt), so `pit export` and the GUI draw the same pixels. Everything is at
the frame's native resolution; ignore pixels (255) keep the frame's own colour.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pit_engine.classes import CITYSCAPES_CLASSES, CITYSCAPES_COLOURS, IGNORE, NUM_CLASSES

BOUNDARY_SCALAR = (255, 255, 255, 0)  # OR-ing it sets a pixel to white, the boundary colour


def boundaries(classes: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour has another class."""
    edge = np.zeros(classes.shape, bool)
    edge[:, :-1] |= classes[:, :-1] != classes[:, 1:]
    edge[:-1, :] |= classes[:-1, :] != classes[1:, :]
    return edge


_PALETTE = np.zeros((256, 3), np.uint8)
_PALETTE[:NUM_CLASSES] = CITYSCAPES_COLOURS
_CHANNEL_LUTS = [np.ascontiguousarray(_PALETTE[:, k]) for k in range(3)]


def blend(image: np.ndarray, classes: np.ndarray, alpha: float = 0.5, show_boundaries: bool = False,
          visible: np.ndarray | None = None) -> np.ndarray:
    """The frame with class colours blended in at `alpha`. Ignore pixels and classes switched off
    in `visible` (a bool per class) keep the frame's colour."""
    # OpenCV's table look-ups and masked copies are SIMD; numpy gathers and boolean indexing
    # over 2 M pixels cost several times more (benchmarks/overlay_bench.py)
    alpha = float(np.clip(alpha, 0, 1))
    classes = np.ascontiguousarray(classes, np.uint8)
    image = np.ascontiguousarray(image)
    colour = cv2.merge([cv2.LUT(classes, lut) for lut in _CHANNEL_LUTS])
    out = cv2.addWeighted(image, 1 - alpha, colour, alpha, 0)
    show = np.zeros(256, np.uint8)
    show[:NUM_CLASSES] = 1 if visible is None else np.asarray(visible, bool)[:NUM_CLASSES]
    shown = cv2.LUT(classes, show)
    if not shown.all():
        cv2.copyTo(image, 1 - shown, out)
    if show_boundaries:
        edge = (boundaries(classes) & shown.astype(bool)).view(np.uint8)
        # white boundaries: a masked OR with 255 in place, without a frame-sized colour image
        cv2.bitwise_or(out, BOUNDARY_SCALAR, dst=out, mask=edge)
    return out


_STOPS = np.array([(48, 18, 59), (40, 120, 240), (30, 200, 150), (160, 230, 50), (250, 190, 40), (200, 30, 20)],
                  np.float32)
_RAMP = np.stack([np.interp(np.linspace(0, len(_STOPS) - 1, 256), np.arange(len(_STOPS)), _STOPS[:, k])
                  for k in range(3)], 1).round().astype(np.uint8)


def colour_map(values: np.ndarray) -> np.ndarray:
    """0..1 floats to a perceptual blue-green-yellow-red ramp, uint8 RGB."""
    index = (np.clip(values, 0, 1) * 255).astype(np.uint8)
    return _RAMP.take(index, axis=0)


def heat(image: np.ndarray, values: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """A 0..1 map (a CAM, a confidence) over the frame."""
    return cv2.addWeighted(image, 1 - alpha, colour_map(values), alpha, 0)


SEED_COLOUR = (0, 255, 255)  # cyan: no class's colour, and not the white of the boundaries


def regions(image: np.ndarray, grown: np.ndarray, seeds: np.ndarray, c: int, alpha: float = 0.5) -> np.ndarray:
    """Class c's grown region in its colour with its boundary in white, its seeds in cyan."""
    mask = np.where(grown == c, np.uint8(c), np.uint8(IGNORE))
    out = blend(image, mask, alpha, show_boundaries=True)
    out[seeds & (grown == c)] = SEED_COLOUR
    return out


@lru_cache(maxsize=8)
def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # a Pillow without FreeType
        return ImageFont.load_default()


def text_px(height: int) -> int:
    return max(10, min(28, height // 28))


def class_items(classes_present) -> list[tuple[str, tuple[int, int, int]]]:
    return [(CITYSCAPES_CLASSES[c], tuple(int(v) for v in CITYSCAPES_COLOURS[c])) for c in classes_present]


def legend(items: list[tuple[str, tuple[int, int, int]]], width: int, height: int | None = None) -> np.ndarray:
    """A strip of colour swatches with their names, wrapped to `width`."""
    size = height or 14
    font = _font(size)
    pad, swatch = size // 2, size
    rows, x, row = [[]], pad, 0
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for name, colour in items:
        w = swatch + 4 + int(measure.textlength(name, font=font)) + pad * 2
        if x + w > width and rows[row]:
            rows.append([])
            row, x = row + 1, pad
        rows[row].append((x, name, colour))
        x += w
    line = size + pad
    strip = Image.new("RGB", (width, max(1, len(rows)) * line + pad), (24, 24, 24))
    draw = ImageDraw.Draw(strip)
    for r, entries in enumerate(rows):
        y = pad + r * line
        for x, name, colour in entries:
            draw.rectangle([x, y, x + swatch, y + swatch], fill=colour, outline=(255, 255, 255))
            draw.text((x + swatch + 4, y - 1), name, fill=(235, 235, 235), font=font)
    return np.asarray(strip)


def with_legend(image: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """An overlay with a legend strip below it naming the classes present."""
    present = [c for c in np.unique(classes) if c < NUM_CLASSES]
    return np.concatenate([image, legend(class_items(present), image.shape[1], text_px(image.shape[0] * 2))], 0)


def titled(image: np.ndarray, title: str) -> np.ndarray:
    size = text_px(image.shape[0] * 2)
    bar = Image.new("RGB", (image.shape[1], size + size // 2 + 4), (24, 24, 24))
    ImageDraw.Draw(bar).text((size // 2, 2), title, fill=(235, 235, 235), font=_font(size))
    return np.concatenate([np.asarray(bar), image], 0)


def composite(panels: list[tuple[str, np.ndarray]], gap: int = 4) -> np.ndarray:
    """Titled panels of the same size side by side: frame | source-only | adapted | truth or difference."""
    tiles = [titled(image, title) for title, image in panels]
    h = max(t.shape[0] for t in tiles)
    sep = np.full((h, gap, 3), 255, np.uint8)
    row = []
    for t in tiles:
        if t.shape[0] < h:
            t = np.concatenate([t, np.zeros((h - t.shape[0], t.shape[1], 3), np.uint8)], 0)
        row += [t, sep]
    return np.concatenate(row[:-1], 1)
