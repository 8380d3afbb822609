import os
from pathlib import Path

import numpy as np
import pytest

# GUI tests run offscreen; set before any QApplication exists.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The GUI tests run in this process: its OpenMP threads must sleep while they wait, as the app's do
# (pit_gui/__init__.py), which only takes effect before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """A few frames of the demo pair, made once per test session."""
    from pit_engine.data.demo import make_demo

    root = tmp_path_factory.mktemp("demo")
    make_demo(root, seed=0, n_source=8, n_train=8, n_val=4, n_test=4)
    return root


def tiny_config(demo: Path, name: str = "pit", pit: dict | None = None, **sections):
    """A config that trains the small backbone on tiny frames for a few iterations, with the
    method named (PIT by default; `pit` updates [method.pit]). Other keyword arguments update
    sections, tables within them too: tiny_config(demo, "cbst", method={"cbst": {"round_every": 2}})."""
    from pit_engine.config import Config

    raw = {
        "data": {"source_root": str(demo / "source"), "target_root": str(demo / "target"),
                 "source_size": [64, 36], "target_size": [64, 32], "workers": 0},
        "model": {"backbone": "small"},
        "method": {"name": name, "pit": dict(pit or {})},
        "train": {"iterations": 6, "batch_size": 2, "lr": 0.01, "head_lr_mult": 1.0, "device": "cpu",
                  "log_every": 1, "eval_every": 0, "checkpoint_every": 0, "warmup": 2},
        "eval": {"size": [64, 32]},
    }
    for section, values in sections.items():
        for key, value in values.items():
            if isinstance(value, dict):
                raw[section].setdefault(key, {}).update(value)
            else:
                raw.setdefault(section, {})[key] = value
    return Config.from_dict(raw, "test")
