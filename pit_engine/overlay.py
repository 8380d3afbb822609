"""Rendering for people: class-colour overlays, heat maps, legends and comparison composites.

numpy and PIL only (no Qt), so `pit export` and the GUI draw the same pixels. Everything is at
the frame's native resolution (saved pictures of frames narrower than MIN_PICTURE_WIDTH are
enlarged by a whole factor); ignore pixels (255) keep the frame's own colour.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pit_engine.classes import CITYSCAPES_CLASSES, CITYSCAPES_COLOURS, IGNORE, NUM_CLASSES
from pit_engine.compare import OUTCOME_COLOURS, OUTCOMES

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


def pseudo_labels(image: np.ndarray, grown: np.ndarray, seeds: np.ndarray | None, alpha: float = 0.5) -> np.ndarray:
    """Every class's pseudo-labels in its colour with boundaries in white, their seeds in cyan;
    unlabelled pixels show the frame."""
    out = blend(image, grown, alpha, show_boundaries=True)
    if seeds is not None:
        out[seeds] = SEED_COLOUR
    return out


@lru_cache(maxsize=8)
def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # a Pillow without FreeType
        return ImageFont.load_default()


def text_px(height: int) -> int:
    return max(10, min(28, height // 28))


def classes_drawn(maps, visible=None) -> list[int]:
    """The classes any of these class maps (None: a panel without one) draws, in class order:
    the classes present and not switched off in `visible`."""
    counts = sum((np.bincount(np.asarray(m, np.uint8).ravel(), minlength=256) for m in maps if m is not None),
                 np.zeros(256, np.int64))
    shown = np.ones(NUM_CLASSES, bool) if visible is None else np.asarray(visible, bool)[:NUM_CLASSES]
    return [c for c in range(NUM_CLASSES) if counts[c] and shown[c]]


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


def with_legend(image: np.ndarray, classes: np.ndarray, visible=None) -> np.ndarray:
    """An overlay with a legend strip below it naming the classes drawn."""
    present = classes_drawn([classes], visible)
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


DIFFER_COLOUR = (255, 0, 255)
MIN_PICTURE_WIDTH = 512


def enlargement(width: int) -> int:
    """How many times a saved picture enlarges a frame: small frames (the 128x64 demo frames)
    are drawn at least MIN_PICTURE_WIDTH wide, so that a picture reads as it is."""
    return max(1, -(-MIN_PICTURE_WIDTH // max(width, 1)))


def enlarge(array: np.ndarray | None, k: int) -> np.ndarray | None:
    """Each pixel as a k x k block (nearest neighbour: class maps keep their classes)."""
    return array if array is None or k == 1 else np.repeat(np.repeat(array, k, 0), k, 1)


def overlay_image(image, classes, alpha=0.5, show_boundaries=True, visible=None, title: str = "") -> np.ndarray:
    """One frame's overlay, titled with the model that made it, with the legend of its classes
    below: `pit export`'s `_overlay.png`."""
    k = enlargement(image.shape[1])
    image, classes = enlarge(image, k), enlarge(classes, k)
    picture = blend(image, classes, alpha, show_boundaries, visible)
    return with_legend(titled(picture, title) if title else picture, classes, visible)


def outcome_panel(image, cmp) -> tuple[str, np.ndarray]:
    """Who is right (with ground truth), or where the two predictions differ (without)."""
    if cmp.outcome is not None:
        outcome = np.zeros_like(image)
        valid = cmp.outcome != 255
        outcome[valid] = OUTCOME_COLOURS[cmp.outcome[valid]]
        return "who is right", outcome
    diff = image // 3
    diff[cmp.differ] = DIFFER_COLOUR
    return "where A and B differ", diff


def comparison_image(image, a, b, truth, cmp, alpha=0.5, name_a="source-only", name_b="adapted",
                     show_boundaries=True, visible=None) -> np.ndarray:
    """frame | A | B | ground truth and who is right (or where A and B differ), titled, at native
    resolution (small frames enlarged), with a key of the class colours (and outcome colours) below."""
    k = enlargement(image.shape[1])
    if k > 1:
        image, a, b, truth = (enlarge(x, k) for x in (image, a, b, truth))
        cmp = replace(cmp, differ=enlarge(cmp.differ, k), outcome=enlarge(cmp.outcome, k))

    def score(m):
        return f", mIoU {100 * m:.1f}" if m is not None and m == m else ""

    def draw(classes):
        return blend(image, classes, alpha, show_boundaries, visible)
    panels = [("frame", image), (f"A: {name_a}{score(cmp.miou_a)}", draw(a)),
              (f"B: {name_b}{score(cmp.miou_b)}", draw(b))]
    key = class_items(classes_drawn([a, b, truth], visible))
    if truth is not None:
        panels.append(("ground truth", draw(truth)))
        key = [(f"{name}", tuple(int(v) for v in colour)) for name, colour in zip(OUTCOMES, OUTCOME_COLOURS)] + key
    panels.append(outcome_panel(image, cmp))
    grid = composite(panels)
    return np.concatenate([grid, legend(key, grid.shape[1], text_px(image.shape[0] * 2))], 0)
