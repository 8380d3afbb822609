"""The data sets: Cityscapes, GTA5, SYNTHIA and plain image folders, in their real layouts.

Each is a torch Dataset of dicts: `image` (normalised 3 x H x W float tensor), `label`
(H x W long tensor of trainIds, 255 = ignore; absent for unlabelled data), `name` and `index`.
`scan()` finds the frames and every problem with the folder without raising, so that
`pit data check` can report all problems; the constructor refuses a folder with problems.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from pit_engine.classes import EVAL_SUBSETS, MAX_LABEL_ID, MAX_SYNTHIA_ID, labelids_to_trainids, synthia_to_trainids
from pit_engine.data.io import list_images, read_id_label, read_rgb, read_synthia_label
from pit_engine.data.transforms import Transform, resize
from pit_engine.errors import UserError


@dataclass(frozen=True)
class Sample:
    image: Path
    label: Path | None
    name: str


@dataclass(frozen=True)
class Problem:
    what: str
    where: Path
    todo: str

    def error(self) -> UserError:
        return UserError(self.what, self.where, self.todo)


class SegmentationDataset(Dataset):
    kind = ""
    has_splits = False

    def __init__(self, root: str | Path, split: str | None = None, transform: Transform | None = None):
        self.root, self.split = Path(root), split
        self.transform = transform or Transform()
        self.samples, problems = self.scan(self.root, split)
        if problems:
            first = problems[0]
            more = f"; {len(problems) - 1} more problem(s): run `pit data check {self.kind} {self.root}`" \
                if len(problems) > 1 else ""
            raise UserError(first.what, first.where, first.todo + more)

    @property
    def labelled(self) -> bool:
        return any(s.label is not None for s in self.samples)

    @property
    def eval_subsets(self) -> dict[str, tuple[int, ...]]:
        return EVAL_SUBSETS[self.kind]

    @classmethod
    def scan(cls, root: Path, split: str | None) -> tuple[list[Sample], list[Problem]]:
        raise NotImplementedError

    @staticmethod
    def read_label(path: Path) -> tuple[np.ndarray, int]:
        """A label file as an H x W uint8 array of trainIds, and how many of its pixels held an id
        the data set does not define (read as ignore: one odd frame must not end a long run)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The raw frame (H x W x 3 uint8) and its trainIds at the frame's size (or None)."""
        return self.load_counted(index)[:2]

    def load_counted(self, index: int) -> tuple[np.ndarray, np.ndarray | None, int]:
        """`load`, and how many label pixels held an unknown id (read as ignore)."""
        sample = self.samples[index]
        image = read_rgb(sample.image)
        if sample.label is None:
            return image, None, 0
        label, unknown = self.read_label(sample.label)
        if label.shape != image.shape[:2]:  # GTA5 ships a few labels of another size
            _, label = resize(image, label, (image.shape[1], image.shape[0]))
        return image, label, unknown

    def __getitem__(self, index: int) -> dict:
        return self.get(index)

    def get(self, index: int, generator=None) -> dict:
        image, label, unknown = self.load_counted(index)
        x, y = self.transform(image, label, generator)
        item = {"image": x, "name": self.samples[index].name, "index": index}
        if y is not None:
            item["label"], item["unknown_ids"] = y, unknown
        return item


def _missing_root(root: Path, expect: str) -> list[Problem]:
    if not root.exists():
        return [Problem("folder not found", root, f"pass the folder that holds {expect}")]
    if not root.is_dir():
        return [Problem("not a folder", root, f"pass the folder that holds {expect}")]
    return []


def _wrong_level(root: Path, marker: str, expect: str) -> Problem:
    """Explain a root given one level too deep or too shallow, when we can tell which."""
    for parent in list(root.resolve().parents)[:3]:
        if (parent / marker).is_dir():
            return Problem(f"no {marker}/ here; this looks like a folder inside the data set", root,
                           f"pass {parent} instead")
    below = sorted(p for p in root.glob(f"*/{marker}") if p.is_dir())
    if below:
        return Problem(f"no {marker}/ here, but {below[0].parent.name}/ holds one", root,
                       f"pass {below[0].parent} instead")
    return Problem(f"no {marker}/ folder", root, f"pass the folder that holds {expect}")


def _pair(images: list[Path], label_for) -> tuple[list[Sample], list[Problem]]:
    samples, problems = [], []
    for image in images:
        label, name = label_for(image)
        if label is not None and not label.is_file():
            problems.append(Problem("image without its label", image, f"restore {label} or remove the image"))
        else:
            samples.append(Sample(image, label, name))
    return samples, problems


class Cityscapes(SegmentationDataset):
    """`leftImg8bit/<split>/<city>/*_leftImg8bit.png` with `gtFine/.../*_gtFine_labelIds.png`.

    Label ids map to trainIds on the fly. Without `gtFine/<split>` the split is unlabelled.
    """

    kind = "cityscapes"
    has_splits = True
    expect = "leftImg8bit/ (and gtFine/)"

    @classmethod
    def scan(cls, root, split):
        split = split or "train"
        if problems := _missing_root(root, cls.expect):
            return [], problems
        images_dir = root / "leftImg8bit"
        if not images_dir.is_dir():
            return [], [_wrong_level(root, "leftImg8bit", cls.expect)]
        if not (images_dir / split).is_dir():
            have = ", ".join(sorted(p.name for p in images_dir.iterdir() if p.is_dir())) or "none"
            return [], [Problem(f"no split '{split}'", images_dir, f"use one of the splits present: {have}")]
        images = sorted((images_dir / split).glob("*/*_leftImg8bit.png"))
        if not images:
            return [], [Problem("no *_leftImg8bit.png frames in <city>/ folders", images_dir / split,
                                "check that the frames sit in one folder per city")]
        labels_dir = root / "gtFine" / split

        def label_for(image: Path):
            stem = image.name[: -len("_leftImg8bit.png")]
            label = labels_dir / image.parent.name / f"{stem}_gtFine_labelIds.png"
            return (label if labels_dir.is_dir() else None), stem

        return _pair(images, label_for)

    @staticmethod
    def read_label(path):
        ids = read_id_label(path)
        return labelids_to_trainids(ids), int(np.count_nonzero(ids > MAX_LABEL_ID))


def _scan_flat(root: Path, images: str, labels: str, expect: str):
    """The flat source layouts: every frame in `images/`, its label of the same stem in `labels/`."""
    if problems := _missing_root(root, expect):
        return [], problems
    for folder in (images, labels):
        if not (root / folder).is_dir():
            return [], [_wrong_level(root, folder.split("/")[0], expect)]
    frames = list_images(root / images, recursive=False)
    if not frames:
        return [], [Problem("no frames", root / images, f"copy the data set's {images}/ frames here")]
    return _pair(frames, lambda im: (root / labels / f"{im.stem}.png", im.stem))


class GTA5(SegmentationDataset):
    """`images/NNNNN.png` with `labels/NNNNN.png`, 8-bit palette PNGs whose index is the label id."""

    kind = "gta5"

    @classmethod
    def scan(cls, root, split):
        return _scan_flat(root, "images", "labels", "images/ and labels/")

    @staticmethod
    def read_label(path):
        ids = read_id_label(path)
        return labelids_to_trainids(ids), int(np.count_nonzero(ids > MAX_LABEL_ID))


class Synthia(SegmentationDataset):
    """SYNTHIA-RAND-CITYSCAPES: `RGB/NNNNNNN.png` with 16-bit `GT/LABELS/NNNNNNN.png`."""

    kind = "synthia"

    @classmethod
    def scan(cls, root, split):
        return _scan_flat(root, "RGB", "GT/LABELS", "RGB/ and GT/LABELS/")

    @staticmethod
    def read_label(path):
        ids = read_synthia_label(path)
        return synthia_to_trainids(ids), int(np.count_nonzero(ids > MAX_SYNTHIA_ID))


class ImageFolder(SegmentationDataset):
    """Any folder of frames (searched recursively), unlabelled."""

    kind = "folder"
    expect = "image files"

    @classmethod
    def scan(cls, root, split):
        if problems := _missing_root(root, cls.expect):
            return [], problems
        images = list_images(root)
        if not images:
            return [], [Problem("no image files (.png, .jpg, ...)", root, "pass a folder of frames")]
        return [Sample(p, None, str(p.relative_to(root).with_suffix(""))) for p in images], []


DATASETS: dict[str, type[SegmentationDataset]] = {
    cls.kind: cls for cls in (Cityscapes, GTA5, Synthia, ImageFolder)
}


def dataset_class(kind: str) -> type[SegmentationDataset]:
    try:
        return DATASETS[kind]
    except KeyError:
        raise UserError(f"unknown data set kind '{kind}'", "kind", f"use one of: {', '.join(DATASETS)}") from None


def open_dataset(kind: str, root: str | Path, split: str | None = None,
                 transform: Transform | None = None) -> SegmentationDataset:
    cls = dataset_class(kind)
    if split is not None and not cls.has_splits:
        raise UserError(f"{kind} has no splits", split, "leave the split out")
    return cls(root, split, transform)

