"""Label spaces: the one place that knows class names, colours and id tables.

Everything else (loaders, evaluation, overlays, the GUI) imports from here.
"""
from __future__ import annotations

import numpy as np

IGNORE = 255

# The 19 Cityscapes evaluation classes in trainId order, with their standard colours.
CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
    "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
    "truck", "bus", "train", "motorcycle", "bicycle",
)
NUM_CLASSES = len(CITYSCAPES_CLASSES)

CITYSCAPES_COLOURS = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70),
    (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
], dtype=np.uint8)

# Cityscapes label ids run 0..33 in the labelIds PNGs (GTA5 palette indices use the same ids).
MAX_LABEL_ID = 33
CITYSCAPES_ID_TO_TRAINID: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}

# SYNTHIA-RAND-CITYSCAPES class ids 0..22 (first channel of the 16-bit label PNG).
MAX_SYNTHIA_ID = 22
SYNTHIA_ID_TO_TRAINID: dict[int, int] = {
    3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9,
    1: 10, 10: 11, 17: 12, 8: 13, 18: 14, 19: 15, 20: 16, 12: 17, 11: 18,
}

# Evaluation subsets for SYNTHIA -> Cityscapes: terrain, truck and train never occur in
# SYNTHIA, and the 13-class protocol also drops wall, fence and pole.
SYNTHIA_16 = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)
SYNTHIA_13 = (0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)
ALL_19 = tuple(range(NUM_CLASSES))

# Classes a source never shows, by source kind. A SYNTHIA-trained network is a 16-class network
# (these three logits held at a floor, so its softmax spans the other 16), and the target's ground
# truth of these classes is ignored in evaluation: the published SYNTHIA convention.
ABSENT_CLASSES: dict[str, tuple[int, ...]] = {"synthia": tuple(c for c in range(NUM_CLASSES) if c not in SYNTHIA_16)}

# Which class means a protocol reports. A SYNTHIA source never gets a 19-class mean.
EVAL_SUBSETS: dict[str, dict[str, tuple[int, ...]]] = {
    "gta5": {"mIoU19": ALL_19},
    "synthia": {"mIoU16": SYNTHIA_16, "mIoU13": SYNTHIA_13},
    "cityscapes": {"mIoU19": ALL_19},
}


def _lut(mapping: dict[int, int], size: int) -> np.ndarray:
    lut = np.full(size, IGNORE, dtype=np.uint8)
    for src, dst in mapping.items():
        lut[src] = dst
    return lut


# Lookup tables indexed by raw id; every id not in a table maps to IGNORE.
LABELID_TO_TRAINID_LUT = _lut(CITYSCAPES_ID_TO_TRAINID, 256)
SYNTHIA_TO_TRAINID_LUT = _lut(SYNTHIA_ID_TO_TRAINID, 65536)
TRAINID_TO_LABELID_LUT = _lut({t: i for i, t in CITYSCAPES_ID_TO_TRAINID.items()}, 256)
TRAINID_TO_SYNTHIA_LUT = _lut({t: i for i, t in SYNTHIA_ID_TO_TRAINID.items()}, 256)
TRAINID_TO_LABELID_LUT[IGNORE] = 0  # "unlabeled"
TRAINID_TO_SYNTHIA_LUT[IGNORE] = 0  # "void"


def labelids_to_trainids(ids: np.ndarray) -> np.ndarray:
    """Cityscapes / GTA5 label ids (any integer array) to trainIds (uint8, 255 = ignore)."""
    return LABELID_TO_TRAINID_LUT[ids]


def synthia_to_trainids(ids: np.ndarray) -> np.ndarray:
    """SYNTHIA class ids (uint16) to trainIds (uint8, 255 = ignore)."""
    return SYNTHIA_TO_TRAINID_LUT[ids]


def colourize(train_ids: np.ndarray, ignore_colour=(0, 0, 0)) -> np.ndarray:
    """trainId map (H x W) to an RGB uint8 image in the standard Cityscapes colours."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:NUM_CLASSES] = CITYSCAPES_COLOURS
    palette[IGNORE] = ignore_colour
    return palette[train_ids]


# Colours of the 34 Cityscapes label ids; GTA5 label PNGs carry this palette (index = label id).
LABELID_COLOURS = np.array([
    (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (111, 74, 0), (81, 0, 81),
    (128, 64, 128), (244, 35, 232), (250, 170, 160), (230, 150, 140), (70, 70, 70),
    (102, 102, 156), (190, 153, 153), (180, 165, 180), (150, 100, 100), (150, 120, 90),
    (153, 153, 153), (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35),
    (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70),
    (0, 60, 100), (0, 0, 90), (0, 0, 110), (0, 80, 100), (0, 0, 230), (119, 11, 32),
], dtype=np.uint8)


def labelid_palette() -> list[int]:
    """A 768-entry PIL palette for label-id PNGs (the palette GTA5 labels ship with)."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    pal[: MAX_LABEL_ID + 1] = LABELID_COLOURS
    return pal.flatten().tolist()
