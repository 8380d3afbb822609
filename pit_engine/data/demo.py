"""The demo domain pair: procedural street scenes in two looks.

The **source** is written in GTA5 format (flat, saturated, sharp, synthetic-looking) and the
**target** in Cityscapes format with train and val splits (other palette, lighting, texture,
noise, blur, an ego-vehicle bonnet and other class frequencies). Both draw the same kind of
street layout, so which classes a frame holds is recognisable across the two, while the pixel
colours a source-trained model relies on are not: the shift PIT is built for.

Every frame is drawn from `numpy.random.default_rng([seed, domain, index])`, so the output
depends only on the seed, not on the order or number of frames generated.

Thin things (poles, signs, lights) are drawn at least 3 pixels across: at 128 x 64 and output
stride 8 that is about 0.4 of an output cell, as a Cityscapes pole at the protocol's 1024 x 512 is.
Thinner, they were below the network's output grid, out of reach even of a model trained on the
target's own labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pit_engine.classes import IGNORE, TRAINID_TO_LABELID_LUT, labelid_palette
from pit_engine.data.io import save_png

(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY,
 PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)
EGO_LABEL_ID = 1  # Cityscapes "ego vehicle", ignored in evaluation


@dataclass(frozen=True)
class Look:
    """How a domain looks and what its streets hold."""

    name: str
    size: tuple[int, int]  # width, height
    palette: dict[int, tuple[int, int, int]]
    vehicle_colours: tuple[tuple[int, int, int], ...]
    jitter: float  # per-instance colour spread
    objects: dict[int, float]  # class -> expected count per frame
    backdrop: dict[int, float]  # class -> probability of lining a side of the street
    textured: bool
    noise: float
    blur: float
    light: tuple[float, float]  # range of a per-frame exposure factor
    ego_bonnet: bool = False
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


SOURCE = Look(
    name="source", size=(160, 88),
    palette={ROAD: (120, 60, 150), SIDEWALK: (250, 60, 220), BUILDING: (90, 80, 70), WALL: (110, 110, 190),
             FENCE: (220, 170, 140), POLE: (170, 170, 170), LIGHT: (255, 180, 0), SIGN: (255, 255, 0),
             VEGETATION: (60, 200, 30), TERRAIN: (150, 255, 140), SKY: (40, 140, 255), PERSON: (240, 20, 60),
             RIDER: (255, 40, 0)},
    vehicle_colours=((0, 0, 200), (200, 0, 0), (250, 220, 0), (0, 160, 60), (240, 240, 240), (20, 20, 160)),
    jitter=10.0,
    objects={CAR: 3.0, TRUCK: 0.6, BUS: 0.4, TRAIN: 0.1, PERSON: 1.2, RIDER: 0.3, POLE: 2.0, SIGN: 0.8,
             LIGHT: 0.6, WALL: 0.4, FENCE: 0.4, TERRAIN: 0.5},
    backdrop={BUILDING: 0.75, VEGETATION: 0.25},
    textured=False, noise=0.0, blur=0.0, light=(0.95, 1.05),
)

TARGET = Look(
    name="target", size=(128, 64),
    palette={ROAD: (105, 85, 115), SIDEWALK: (200, 140, 190), BUILDING: (125, 110, 95), WALL: (115, 115, 150),
             FENCE: (170, 140, 120), POLE: (120, 120, 125), LIGHT: (200, 150, 50), SIGN: (210, 200, 70),
             VEGETATION: (80, 140, 60), TERRAIN: (140, 190, 120), SKY: (150, 180, 220), PERSON: (170, 60, 80),
             RIDER: (180, 80, 50)},
    vehicle_colours=((40, 40, 110), (150, 50, 50), (190, 170, 60), (50, 110, 70), (200, 200, 200), (60, 60, 70)),
    jitter=18.0,
    objects={CAR: 2.2, TRUCK: 0.3, BUS: 0.3, TRAIN: 0.05, PERSON: 2.5, RIDER: 0.8, POLE: 3.0, SIGN: 1.2,
             LIGHT: 1.0, WALL: 0.3, FENCE: 0.6, TERRAIN: 0.8},
    backdrop={BUILDING: 0.6, VEGETATION: 0.4},
    textured=True, noise=7.0, blur=0.8, light=(0.65, 1.15), ego_bonnet=True, tint=(1.0, 0.97, 0.9),
)


@dataclass
class Scene:
    label: np.ndarray  # trainIds
    inst: np.ndarray  # instance ids
    classes: list[int] = field(default_factory=list)  # class of each instance

    def new(self, cls: int) -> int:
        self.classes.append(cls)
        return len(self.classes) - 1

    def paint(self, mask: np.ndarray, cls: int, inst: int | None = None) -> None:
        self.label[mask] = cls
        self.inst[mask] = self.new(cls) if inst is None else inst


def _box(scene: Scene, cls: int, x0: float, y0: float, x1: float, y1: float, inst: int | None = None) -> int:
    h, w = scene.label.shape
    xa, xb = int(np.clip(round(x0), 0, w)), int(np.clip(round(x1), 0, w))
    ya, yb = int(np.clip(round(y0), 0, h)), int(np.clip(round(y1), 0, h))
    inst = scene.new(cls) if inst is None else inst
    scene.label[ya:yb, xa:xb] = cls
    scene.inst[ya:yb, xa:xb] = inst
    return inst


def _disc(scene: Scene, cls: int, cx: float, cy: float, r: float, inst: int | None = None) -> int:
    yy, xx = np.ogrid[: scene.label.shape[0], : scene.label.shape[1]]
    inst = scene.new(cls) if inst is None else inst
    scene.paint((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r, cls, inst)
    return inst


def draw_scene(rng: np.random.Generator, look: Look) -> Scene:
    """A street: sky, two lined sides, road and sidewalks in perspective, then objects."""
    w, h = look.size
    scene = Scene(np.full((h, w), SKY, np.uint8), np.zeros((h, w), np.int32), [SKY])
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    horizon = h * rng.uniform(0.36, 0.5)
    vx = w * rng.uniform(0.35, 0.65)
    depth = np.clip((yy - horizon) / (h - horizon), 0, None)  # 0 at the horizon, 1 at the bottom
    road_hw = depth * w * rng.uniform(0.35, 0.6)
    walk_w = depth * w * rng.uniform(0.12, 0.25)
    dx = xx - vx
    below = yy >= horizon

    # The two sides of the street: a backdrop of buildings or trees, perspective skyline.
    for side in (-1, 1):
        on_side = np.sign(dx) == side
        backdrop = rng.choice(list(look.backdrop), p=np.array(list(look.backdrop.values())) / sum(look.backdrop.values()))
        edges = np.cumsum(rng.uniform(0.08, 0.3, 8) * w)
        block = np.searchsorted(edges, np.abs(dx))
        rise = rng.uniform(0.25, 1.1, 9)[block]
        lift = rng.uniform(0.0, 0.12, 9)[block] * h
        skyline = horizon - np.abs(dx) * rise - lift
        if backdrop == VEGETATION:
            skyline = skyline + np.sin(xx * rng.uniform(0.3, 0.7)) * 2.5 - 3
        mask = on_side & (yy >= skyline) & ~(below & (np.abs(dx) <= road_hw + walk_w))
        for b in range(9):
            part = mask & (block == b)
            if part.any():
                scene.paint(part, backdrop)
    on_road = below & (np.abs(dx) <= road_hw)
    scene.paint(on_road, ROAD)
    for side in (-1, 1):
        scene.paint(below & ~on_road & (np.abs(dx) <= road_hw + walk_w) & (np.sign(dx) == side), SIDEWALK)

    edge_slope = (road_hw + walk_w)[-1, 0] / (h - horizon)  # sidewalk's outer edge, pixels per row

    def counts(cls):
        return rng.poisson(look.objects.get(cls, 0.0))

    # Walls, fences and grass strips along a side's outer edge.
    for cls in (TERRAIN, WALL, FENCE):
        for _ in range(min(counts(cls), 2)):
            side = rng.choice((-1, 1))
            foot = horizon + np.abs(dx) / edge_slope  # the row where each column meets the edge
            if cls == TERRAIN:
                band = (np.sign(dx) == side) & below & (yy >= foot - depth * h * 0.25) & (yy < foot) \
                    & (scene.label != ROAD) & (scene.label != SIDEWALK)
            else:
                tall = rng.uniform(0.15, 0.35)
                reach = rng.uniform(0.3, 1.0) * w
                band = (np.sign(dx) == side) & (np.abs(dx) < reach) & (yy < foot) \
                    & (yy >= foot - (foot - horizon) * tall) & (yy < h)
            if band.any():
                scene.paint(band, cls)

    # Objects, far ones first so near ones cover them.
    objects = []
    for cls in (CAR, TRUCK, BUS, TRAIN, PERSON, RIDER, POLE):
        objects += [(cls, rng.uniform(0.06, 0.65)) for _ in range(counts(cls))]
    for cls, d in sorted(objects, key=lambda o: o[1]):
        y = horizon + d * (h - horizon)
        s = d * h * 0.75  # pixels per unit of object height at this depth
        hw = d * road_hw[-1, 0]  # the road's half width at this depth
        if cls in (CAR, TRUCK, BUS, TRAIN):
            x = vx + rng.uniform(-0.8, 0.8) * hw
            width = s * {CAR: 1.1, TRUCK: 1.2, BUS: 1.5, TRAIN: 2.4}[cls] * rng.uniform(0.85, 1.15)
            height = width * {CAR: 0.42, TRUCK: 0.85, BUS: 0.7, TRAIN: 0.6}[cls]
            inst = _box(scene, cls, x - width / 2, y - height, x + width / 2, y)
            if cls == CAR:  # cabin
                _box(scene, cls, x - width * 0.32, y - height * 1.6, x + width * 0.32, y - height * 0.9, inst)
        elif cls == RIDER:
            x = vx + rng.choice((-1, 1)) * rng.uniform(0.5, 0.95) * hw
            bike = MOTORCYCLE if rng.random() < 0.4 else BICYCLE
            _box(scene, bike, x - s * 0.3, y - s * 0.3, x + s * 0.3, y)
            body = _box(scene, RIDER, x - s * 0.09, y - s * 0.75, x + s * 0.09, y - s * 0.25)
            _disc(scene, RIDER, x, y - s * 0.82, s * 0.08, body)
        else:  # people and poles stand on a sidewalk
            side = rng.choice((-1, 1))
            walk = d * (h - horizon) * edge_slope
            x = vx + side * (hw + rng.uniform(0.2, 0.9) * (walk - hw))
            if cls == PERSON:
                body = _box(scene, PERSON, x - s * 0.1, y - s * 0.72, x + s * 0.1, y)
                _disc(scene, PERSON, x, y - s * 0.8, s * 0.09, body)
            else:
                top = y - s * rng.uniform(1.2, 1.8)
                _box(scene, POLE, x - max(s * 0.05, 1.5), top, x + max(s * 0.05, 1.5), y)
                kind = rng.choice((SIGN, LIGHT, -1), p=np.array([look.objects[SIGN], look.objects[LIGHT], 1.0]) /
                                  (look.objects[SIGN] + look.objects[LIGHT] + 1.0))
                if kind == SIGN:
                    _disc(scene, SIGN, x, top, max(s * 0.15, 3.0))
                elif kind == LIGHT:
                    _box(scene, LIGHT, x - max(s * 0.08, 1.5), top, x + max(s * 0.08, 1.5), top + max(s * 0.3, 6))
    return scene


def render(scene: Scene, rng: np.random.Generator, look: Look) -> np.ndarray:
    """Colour a scene in a domain's look: uint8 RGB."""
    h, w = scene.label.shape
    colours = np.zeros((len(scene.classes), 3), np.float32)
    for i, cls in enumerate(scene.classes):
        if cls in (CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE):
            base = look.vehicle_colours[rng.integers(len(look.vehicle_colours))]
        else:
            base = look.palette[cls]
        colours[i] = np.asarray(base) + rng.normal(0, look.jitter, 3)
    img = colours[scene.inst]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    if look.textured:
        lab = scene.label
        windows = ((xx.astype(int) % 5) < 2) & ((yy.astype(int) % 6) < 3)
        img[(lab == BUILDING) & windows] *= 0.6
        img[lab == VEGETATION] *= (0.75 + 0.5 * rng.random((int((lab == VEGETATION).sum()), 1)))
        img[(lab == FENCE) & (xx.astype(int) % 3 == 0)] *= 0.5
        sky = lab == SKY
        img[sky] *= (0.85 + 0.25 * (yy[sky] / h))[:, None]
        road_grain = rng.normal(0, 6, (h, w)).astype(np.float32)
        img[lab == ROAD] += road_grain[lab == ROAD][:, None]
    else:  # flat shading, brighter towards the top, as cheap renderers do
        img *= (1.05 - 0.1 * yy / h)[..., None]
    img *= rng.uniform(*look.light) * np.asarray(look.tint, np.float32)
    if look.noise:
        img += rng.normal(0, look.noise, img.shape)
    if look.blur:
        img = cv2.GaussianBlur(img, (0, 0), look.blur)
    if look.ego_bonnet:  # the camera car's bonnet at the bottom edge, as in Cityscapes
        bonnet = yy > h - 1 - h * 0.08 * (1 - ((xx - w / 2) / (w * 0.7)) ** 2)
        img[bonnet] = np.asarray((25, 25, 30)) + rng.normal(0, 3, (int(bonnet.sum()), 3))
        scene.label[bonnet] = IGNORE
    return np.clip(img, 0, 255).astype(np.uint8)


def make_frame(seed: int, look: Look, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One frame of a domain: (RGB uint8, trainIds uint8)."""
    rng = np.random.default_rng([seed, 0 if look is SOURCE else 1, index])
    scene = draw_scene(rng, look)
    image = render(scene, rng, look)
    return image, scene.label


def _labelids(train_ids: np.ndarray) -> np.ndarray:
    ids = TRAINID_TO_LABELID_LUT[train_ids]
    ids[train_ids == IGNORE] = EGO_LABEL_ID
    return ids


def make_demo(out: str | Path, seed: int = 0, n_source: int = 300, n_train: int = 300, n_val: int = 100,
              n_test: int = 100, progress=None) -> dict[str, Path]:
    """Write the demo pair under `out`: `source/` (GTA5 layout) and `target/` (Cityscapes layout,
    splits train, val and test, each labelled: val to choose settings on, test to report)."""
    out = Path(out)
    source, target = out / "source", out / "target"
    jobs = [("source", i) for i in range(n_source)] + [("train", i) for i in range(n_train)] \
        + [("val", n_train + i) for i in range(n_val)] + [("test", n_train + n_val + i) for i in range(n_test)]
    palette = labelid_palette()
    for split, i in (progress(jobs) if progress else jobs):
        if split == "source":
            image, label = make_frame(seed, SOURCE, i)
            save_png(source / "images" / f"{i:05d}.png", image)
            save_png(source / "labels" / f"{i:05d}.png", _labelids(label), palette=palette)
        else:
            image, label = make_frame(seed, TARGET, i)
            stem = f"democity_000000_{i:06d}"
            save_png(target / "leftImg8bit" / split / "democity" / f"{stem}_leftImg8bit.png", image)
            save_png(target / "gtFine" / split / "democity" / f"{stem}_gtFine_labelIds.png", _labelids(label))
    return {"source": source, "target": target}
