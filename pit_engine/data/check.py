"""`pit data check`: validate a data set folder, summarise it, optionally write trainId PNGs."""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pit_engine.classes import CITYSCAPES_CLASSES, IGNORE, MAX_LABEL_ID, MAX_SYNTHIA_ID, NUM_CLASSES
from pit_engine.data.datasets import Problem, Sample, dataset_class
from pit_engine.data.io import read_rgb, save_png
from pit_engine.errors import UserError


@dataclass
class CheckReport:
    kind: str
    root: Path
    split: str | None
    frames: int = 0
    labelled: int = 0
    sizes: Counter = field(default_factory=Counter)
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))  # pixels per trainId
    resized_labels: int = 0
    unknown_frames: int = 0  # labels holding ids the data set does not define (training reads them as ignore)
    unknown_pixels: int = 0
    unknown_example: Path | None = None
    written: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        where = f"{self.kind} {self.root}" + (f" (split {self.split})" if self.split else "")
        lines = [f"{where}: {self.frames} frame(s), {self.labelled} labelled"]
        sizes = ", ".join(f"{w}x{h} ×{n}" for (w, h), n in self.sizes.most_common(5))
        if len(self.sizes) > 5:
            sizes += f", and {len(self.sizes) - 5} other sizes"
        lines.append(f"image sizes: {sizes or 'none readable'}")
        if self.resized_labels:
            lines.append(f"labels of another size than their image (resized with nearest): {self.resized_labels}")
        if self.unknown_frames:
            top = MAX_SYNTHIA_ID if self.kind == "synthia" else MAX_LABEL_ID
            lines.append(f"labels with ids outside 0..{top} (read as ignore): {self.unknown_frames} frame(s), "
                         f"{self.unknown_pixels:,d} pixel(s), e.g. {self.unknown_example}")
        total = int(self.histogram.sum())
        if total:
            lines.append("class pixels (trainIds):")
            for c, name in enumerate(CITYSCAPES_CLASSES):
                n = int(self.histogram[c])
                lines.append(f"  {c:>3} {name:<14} {100 * n / total:6.2f} %  {n:>12,d}")
            n = int(self.histogram[IGNORE])
            lines.append(f"  255 {'ignore':<14} {100 * n / total:6.2f} %  {n:>12,d}")
            absent = [CITYSCAPES_CLASSES[c] for c in range(NUM_CLASSES) if self.histogram[c] == 0]
            if absent:
                lines.append(f"classes never seen: {', '.join(absent)}")
        if self.written:
            lines.append(f"wrote {len(self.written)} trainId PNG(s)")
        lines.append(f"problems: {len(self.problems) or 'none'}")
        return "\n".join(lines)


def train_id_name(kind: str, label: Path, root: Path) -> Path:
    """Where a label's trainId PNG goes, relative to the export folder: the label's own
    relative path, with Cityscapes' `_gtFine_labelIds` becoming `_gtFine_labelTrainIds`."""
    rel = label.relative_to(root)
    if kind == "cityscapes":
        rel = rel.with_name(rel.name.replace("_gtFine_labelIds.png", "_gtFine_labelTrainIds.png"))
    return rel


def check_dataset(kind: str, root: str | Path, split: str | None = None, export_dir: str | Path | None = None,
                  overwrite: bool = False, progress=None, workers: int = 4) -> CheckReport:
    """Read every frame and label of a data set and collect statistics and all problems."""
    cls = dataset_class(kind)
    root = Path(root)
    if split is not None and not cls.has_splits:
        raise UserError(f"{kind} has no splits", f"--split {split}", "leave --split out")
    split = split or ("train" if cls.has_splits else None)
    report = CheckReport(kind, root, split)
    samples, report.problems = cls.scan(root, split)
    report.frames = len(samples) + sum(p.what == "image without its label" for p in report.problems)
    export_dir = Path(export_dir) if export_dir is not None else None

    def check_one(sample: Sample):
        found: list[Problem] = []
        out = {"size": None, "hist": None, "resized": False, "written": None, "unknown": 0, "label": sample.label}
        try:
            image = read_rgb(sample.image)
            out["size"] = (image.shape[1], image.shape[0])
        except UserError as e:
            found.append(Problem(e.what, Path(e.where), e.todo))
            image = None
        if sample.label is not None:
            try:
                label, out["unknown"] = cls.read_label(sample.label)
            except UserError as e:
                found.append(Problem(e.what, Path(e.where), e.todo))
                return out, found
            out["hist"] = np.bincount(label.ravel(), minlength=256)
            if image is not None and label.shape != image.shape[:2]:
                if kind == "gta5":
                    out["resized"] = True
                else:
                    found.append(Problem(f"label is {label.shape[1]}x{label.shape[0]} but its image is "
                                         f"{image.shape[1]}x{image.shape[0]}", sample.label,
                                         "pair each image with its own label"))
            if export_dir is not None:
                target = export_dir / train_id_name(kind, sample.label, root)
                if target.resolve() == sample.label.resolve():
                    found.append(Problem("export would overwrite the label file itself", target,
                                         "choose another --export-train-ids folder"))
                elif target.exists() and not overwrite:
                    found.append(Problem("file exists", target, "pass --overwrite or choose an empty folder"))
                else:
                    try:
                        save_png(target, label)
                        out["written"] = target
                    except UserError as e:
                        found.append(Problem(e.what, Path(e.where), e.todo))
        return out, found

    with ThreadPoolExecutor(max_workers=workers) as pool:  # decoding PNGs releases the GIL
        results = pool.map(check_one, samples)
        for out, found in (progress(results, total=len(samples)) if progress else results):
            report.problems += found
            if out["size"]:
                report.sizes[out["size"]] += 1
            if out["hist"] is not None:
                report.labelled += 1
                report.histogram += out["hist"]
            report.resized_labels += out["resized"]
            if out["unknown"]:
                report.unknown_frames += 1
                report.unknown_pixels += out["unknown"]
                report.unknown_example = report.unknown_example or out["label"]
            if out["written"]:
                report.written.append(out["written"])
    return report
