"""`pit predict` and `pit export`: run predictors over frames and write files.

Inputs are image files or folders (searched recursively). A file that is not a readable image
is skipped with a warning and listed. Nothing is overwritten unless asked: every output name
is checked before the first file is written.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pit_engine.classes import CITYSCAPES_CLASSES, colourize
from pit_engine.compare import FolderComparison, compare
from pit_engine.data.io import (IMAGE_SUFFIXES, atomic_write, output_folder, read_rgb, read_truth, save_png,
                                truth_for)
from pit_engine.errors import UserError
from pit_engine.overlay import comparison_image, overlay_image
from pit_engine.pit_ops import ABSENT, PRESENT
from pit_engine.predict import Predictor

@dataclass
class Inputs:
    images: list[Path] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


def gather(paths) -> Inputs:
    found = Inputs()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            # a Cityscapes root: its frames, not the label PNGs under gtFine/
            frames = path / "leftImg8bit" if (path / "leftImg8bit").is_dir() else path
            files = sorted(p for p in frames.rglob("*") if p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise UserError("input not found", path, "give image files or folders of frames")
        for f in files:
            if f.suffix.lower() in IMAGE_SUFFIXES:
                found.images.append(f)
            else:
                _warn(f"skipped {f}: not an image file")
                found.skipped.append({"path": str(f), "reason": "not an image file"})
    if not found.images:
        raise UserError("no image files among the inputs", ", ".join(map(str, paths)), "give frames (.png, .jpg, ...)")
    return found


def _names(images: list[Path]) -> list[str]:
    """Output stems: the file stem, made unique where two inputs share one."""
    seen: dict[str, int] = {}
    out = []
    for p in images:
        stem = p.stem.replace("_leftImg8bit", "")
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        out.append(stem if n == 0 else f"{stem}_{n + 1}")
    return out


def _refuse_overwrite(out: Path, files: list[str], overwrite: bool) -> None:
    if overwrite:
        return
    existing = [f for f in files if (out / f).exists()]
    if existing:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise UserError(f"output exists: {existing[0]}{more}", out, "pass --overwrite or choose another --out")


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def _read(path: Path, skipped: list[dict]):
    try:
        return read_rgb(path)
    except UserError as exc:
        _warn(f"skipped {path}: {exc.what}")
        skipped.append({"path": str(path), "reason": exc.what})
        return None


def _write_json(path: Path, data) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2)))


def predict_files(checkpoint, paths, out, device="cpu", overwrite=False, progress=None) -> dict:
    """Per frame: `<name>_trainIds.png`, `<name>_colour.png` and `<name>.json`."""
    predictor = Predictor.from_checkpoint(checkpoint, device)
    inputs = gather(paths)
    out = output_folder(out)
    names = _names(inputs.images)
    _refuse_overwrite(out, [f"{n}{s}" for n in names for s in ("_trainIds.png", "_colour.png", ".json")], overwrite)
    written = []
    for path, name in (progress(list(zip(inputs.images, names))) if progress else zip(inputs.images, names)):
        image = _read(path, inputs.skipped)
        if image is None:
            continue
        pred = predictor.predict(image)
        save_png(out / f"{name}_trainIds.png", pred.classes)
        save_png(out / f"{name}_colour.png", colourize(pred.classes))
        state = {PRESENT: "present", ABSENT: "absent"}
        share = pred.pixel_share(len(predictor.class_names))
        classes = {c: {"pixel_share": round(float(share[i]), 6)} for i, c in enumerate(predictor.class_names)}
        if pred.has_pivot:  # the method's image-level verdict, beside what the mask says
            for i, c in enumerate(predictor.class_names):
                classes[c].update(q=round(float(pred.q[i]), 6), pooled=round(float(pred.pooled[i]), 6),
                                  pivot=state.get(int(pred.pivot[i]), "unsure"))
        _write_json(out / f"{name}.json", {
            "image": str(path), "checkpoint": str(checkpoint), "method": predictor.method.name,
            "size": list(pred.size),
            **({"tau_lo": pred.tau_lo, "tau_hi": pred.tau_hi, "pivot_reading": pred.pivot_reading} if pred.has_pivot
               else {}),
            "classes": classes})
        written.append(name)
    if not written:  # nothing to show for the run: an error, not "wrote 0 frame(s)"
        raise UserError(f"none of the {len(inputs.images)} image(s) could be read", ", ".join(map(str, paths)),
                        "see the warnings above; give readable frames")
    return {"frames": written, "skipped": inputs.skipped}


def export_overlays(checkpoint, paths, out, compare_checkpoint=None, alpha=0.5, device="cpu", overwrite=False,
                    progress=None) -> dict:
    """Per frame `<name>_overlay.png`; with a second checkpoint also `<name>_compare.png`
    (frame | A | B | ground truth, or the difference map without one); and `index.json`."""
    a = Predictor.from_checkpoint(checkpoint, device)
    b = Predictor.from_checkpoint(compare_checkpoint, device) if compare_checkpoint else None
    inputs = gather(paths)
    out = output_folder(out)
    names = _names(inputs.images)
    files = [f"{n}_overlay.png" for n in names] + ([f"{n}_compare.png" for n in names] if b else []) + ["index.json"]
    _refuse_overwrite(out, files, overwrite)
    index = {"checkpoint": str(checkpoint), "compare": str(compare_checkpoint) if b else None, "alpha": alpha,
             "frames": [], "skipped": inputs.skipped}
    folder = FolderComparison(len(CITYSCAPES_CLASSES)) if b else None
    for path, name in (progress(list(zip(inputs.images, names))) if progress else zip(inputs.images, names)):
        image = _read(path, inputs.skipped)
        if image is None:
            continue
        pa = a.predict(image)
        save_png(out / f"{name}_overlay.png", overlay_image(image, pa.classes, alpha, title=a.name))
        entry = {"image": str(path), "overlay": f"{name}_overlay.png"}
        if b:
            pb = b.predict(image)
            truth_path = truth_for(path)
            truth = read_truth(path, pa.classes.shape)
            cmp = compare(pa.classes, pb.classes, truth)
            entry.update(compare=f"{name}_compare.png", truth=str(truth_path) if truth is not None else None,
                         counts=cmp.counts, miou_a=cmp.miou_a, miou_b=cmp.miou_b)
            save_png(out / f"{name}_compare.png", comparison_image(image, pa.classes, pb.classes, truth, cmp,
                                                                   alpha, a.name, b.name))
            if truth is not None:
                folder.update(pa.classes, pb.classes, truth)
        index["frames"].append(entry)
    if folder is not None and folder.a.matrix.sum():
        index["per_class_iou"] = folder.table(CITYSCAPES_CLASSES)
    _write_json(out / "index.json", index)
    return index
