"""Reading and writing the image and label files of the supported data sets.

Every failure caused by a file becomes a one-line UserError naming the file.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pit_engine.classes import labelids_to_trainids
from pit_engine.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

cv2.setNumThreads(1)  # the data loaders run in worker processes; one thread each is enough
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # bad files get our one line, not its log
_UMASK = os.umask(0o022)  # read once at import: os.umask is process-wide and racy under threads
os.umask(_UMASK)


def _reason(exc: Exception, path) -> str:
    """The library's message without the path in it: the one line says the path once."""
    return str(exc).replace(f" '{path}'", "").replace(str(path), "the file")


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()  # decode now, so truncation is caught here and not later
        return img
    except FileNotFoundError:
        raise UserError("file not found", path, "check the path") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError("image is implausibly large", path, "check the file; it is not a frame") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"cannot read image: {_reason(exc, path)}", path,
                        "the file is corrupt or truncated; restore it or remove it") from None


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image file as an H x W x 3 uint8 RGB array."""
    img = _open(Path(path))
    if img.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        raise UserError(f"unsupported image mode {img.mode}", path, "save the frame as 8-bit RGB")
    return np.asarray(img.convert("RGB"))


def read_id_label(path: str | os.PathLike) -> np.ndarray:
    """An 8-bit label-id PNG (GTA5 palette or Cityscapes labelIds) as an H x W uint8 array.

    Palette PNGs are read as their indices, which is what GTA5 stores; reading their
    colours instead (as OpenCV does) silently breaks training.
    """
    img = _open(Path(path))
    if img.mode in ("RGB", "RGBA"):
        raise UserError("label is a colour image, expected 8-bit label ids", path,
                        "use the labelIds / palette label files, not the colour visualisation")
    if img.mode not in ("P", "L"):
        raise UserError(f"label has mode {img.mode}, expected 8-bit label ids", path,
                        "use the data set's original 8-bit label files")
    return np.asarray(img)  # ids above MAX_LABEL_ID are the caller's to count; they map to ignore


def read_synthia_label(path: str | os.PathLike) -> np.ndarray:
    """A SYNTHIA 16-bit multi-channel label PNG as an H x W uint16 array of class ids.

    The class id is in the first (red) channel. PIL cannot read 16-bit multi-channel PNGs, so
    OpenCV does, which returns channels in BGR order: red is index 2.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("file not found", path, "check the path")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        except cv2.error as exc:  # OpenCV refuses some headers by raising, not by returning None
            if "MAX_IMAGE_PIXELS" in str(exc):
                raise UserError("image is implausibly large", path, "check the file; it is not a label") from None
            raise UserError("cannot read label", path, "the file is corrupt or not a PNG; restore it or remove it") \
                from None
    if raw is None:
        raise UserError("cannot read label", path, "the file is corrupt or not a PNG; restore it or remove it")
    if raw.dtype != np.uint16:
        raise UserError(f"label is {raw.dtype.itemsize * 8}-bit, expected SYNTHIA's 16-bit labels", path,
                        "use the GT/LABELS files of SYNTHIA-RAND-CITYSCAPES")
    return raw if raw.ndim == 2 else raw[:, :, 2]  # ids above MAX_SYNTHIA_ID: the caller counts them


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file, read from its header only."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"cannot read image: {_reason(exc, path)}", path,
                        "the file is corrupt; restore it or remove it") from None


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def output_folder(path: str | os.PathLike, flag: str = "--out") -> Path:
    """The folder a command writes into, made now: if it cannot be, the error names the folder
    (not a file deep inside it)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise UserError(f"cannot create the output folder: {exc.strerror or exc}", path,
                        f"choose a folder you can write to ({flag})") from None
    return path


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename, so a crash never
    leaves a half-written file under the final name."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
        os.close(fd)
    except OSError as exc:  # the folder cannot be made or written to: the same one line as a failed write
        raise UserError(f"cannot write file: {exc.strerror or exc}", path,
                        "check free space and permissions of the output folder") from None
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write file: {exc.strerror or exc}", path,
                        "check free space and permissions of the output folder") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_png(path: Path, array: np.ndarray, palette: list[int] | None = None) -> None:
    """Save an 8-bit array (H x W or H x W x 3) as PNG, atomically; with a palette, as a P-mode PNG."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if palette is None:
        img = Image.fromarray(array)
    else:
        img = Image.frombytes("P", (array.shape[1], array.shape[0]), array.tobytes())
        img.putpalette(palette)
    atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def save_png16(path: Path, array: np.ndarray) -> None:
    """Save a uint16 array (H x W x 3, RGB order) as a 16-bit PNG, atomically."""
    bgr = np.ascontiguousarray(array[:, :, ::-1])

    def write(tmp):
        if not cv2.imwrite(tmp, bgr):
            raise OSError(f"OpenCV could not write {tmp}")

    atomic_write(path, write)


def truth_for(image: Path) -> Path | None:
    """A Cityscapes frame's labelIds file, found through the data set's layout, if it is there."""
    if not image.name.endswith("_leftImg8bit.png") or "leftImg8bit" not in image.parts[:-1]:
        return None
    parts = list(image.parts)
    i = len(parts) - 1 - parts[::-1].index("leftImg8bit")
    parts[i] = "gtFine"
    parts[-1] = image.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png")
    label = Path(*parts)
    return label if label.is_file() else None


def read_truth(image: Path, shape) -> np.ndarray | None:
    """The frame's ground truth as trainIds, or None without a label (or one of another size,
    which is not this frame's)."""
    label = truth_for(Path(image))
    if label is None:
        return None
    truth = labelids_to_trainids(read_id_label(label))
    return truth if truth.shape == tuple(shape) else None
