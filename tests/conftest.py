import os
from pathlib import Path

import numpy as np
import pytest

# GUI tests run offscreen; set before any QApplication exists.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("PIT_REALDATA", REPO.parent / "shared" / "realdata"))
FRAME = "frankfurt_000000_000294"


@pytest.fixture(scope="session")
def realdata() -> Path:
    root = REALDATA / "cityscapes"
    if not root.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real Cityscapes test data missing at {root}")
        pytest.skip(f"real Cityscapes test data not found at {root} (set PIT_REALDATA)")
    return root


@pytest.fixture(scope="session")
def real_frame(realdata):
    """(RGB image, labelIds, shipped labelTrainIds) of the real Cityscapes val frame."""
    from PIL import Image

    img = np.asarray(Image.open(realdata / f"leftImg8bit/val/frankfurt/{FRAME}_leftImg8bit.png").convert("RGB"))
    ids = np.asarray(Image.open(realdata / f"gtFine/val/frankfurt/{FRAME}_gtFine_labelIds.png"))
    train_ids = np.asarray(Image.open(realdata / f"gtFine/val/frankfurt/{FRAME}_gtFine_labelTrainIds.png"))
    return img, ids, train_ids
