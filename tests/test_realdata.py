"""The loaders on a real Cityscapes frame, and the GTA5 / SYNTHIA formats written from its labels."""
import numpy as np
from PIL import Image

from pit_engine.classes import TRAINID_TO_LABELID_LUT, TRAINID_TO_SYNTHIA_LUT, labelid_palette
from pit_engine.cli import main
from pit_engine.data.datasets import GTA5, Cityscapes, Synthia
from pit_engine.data.io import save_png, save_png16

FRAME = "frankfurt_000000_000294"


def agreement(a, b):
    return float((a == b).mean())


def test_cityscapes_loader_matches_shipped_train_ids(realdata, real_frame):
    ds = Cityscapes(realdata, "val")
    assert len(ds) == 1 and ds.labelled and ds.samples[0].name == FRAME
    image, label = ds.load(0)
    assert image.shape == (128, 256, 3) and label.dtype == np.uint8
    # the two shipped label files were downscaled independently; 99.77 % agree (see realdata/README.md)
    assert agreement(label, real_frame[2]) >= 0.997
    item = ds[0]
    assert item["image"].shape == (3, 128, 256) and item["label"].shape == (128, 256)


def test_wrong_table_would_fail_the_agreement_check(real_frame):
    _, ids, shipped = real_frame
    assert agreement(ids.astype(np.uint8), shipped) < 0.5  # raw ids are not trainIds


def test_check_exports_the_same_train_ids(realdata, real_frame, tmp_path, capsys):
    assert main(["data", "check", "cityscapes", str(realdata), "--split", "val",
                 "--export-train-ids", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 frame(s), 1 labelled" in out and "problems: none" in out
    written = tmp_path / f"gtFine/val/frankfurt/{FRAME}_gtFine_labelTrainIds.png"
    exported = np.asarray(Image.open(written))
    assert Image.open(written).mode == "L"
    assert np.array_equal(exported, Cityscapes(realdata, "val").load(0)[1])
    assert agreement(exported, real_frame[2]) >= 0.997
    # a second run refuses to overwrite, and says so in one line per file
    assert main(["data", "check", "cityscapes", str(realdata), "--split", "val",
                 "--export-train-ids", str(tmp_path)]) == 2
    assert "file exists" in capsys.readouterr().err


def test_cityscapes_without_gtfine_is_unlabelled(tmp_path, real_frame):
    save_png(tmp_path / f"leftImg8bit/test/bonn/{FRAME}_leftImg8bit.png", real_frame[0])
    ds = Cityscapes(tmp_path, "test")
    assert not ds.labelled and "label" not in ds[0]


def test_gta5_palette_labels_round_trip(tmp_path, real_frame):
    image, _, train_ids = real_frame
    save_png(tmp_path / "images/00001.png", image)
    save_png(tmp_path / "labels/00001.png", TRAINID_TO_LABELID_LUT[train_ids], palette=labelid_palette())
    assert Image.open(tmp_path / "labels/00001.png").mode == "P"
    ds = GTA5(tmp_path)
    assert np.array_equal(ds.load(0)[1], train_ids)


def test_gta5_label_of_another_size_is_resized_with_nearest(tmp_path, real_frame):
    image, _, train_ids = real_frame
    save_png(tmp_path / "images/00001.png", image)
    big = np.repeat(np.repeat(TRAINID_TO_LABELID_LUT[train_ids], 2, 0), 2, 1)
    save_png(tmp_path / "labels/00001.png", big, palette=labelid_palette())
    label = GTA5(tmp_path).load(0)[1]
    assert label.shape == image.shape[:2]
    assert set(np.unique(label)) <= set(np.unique(train_ids))  # nearest: no blended ids
    assert agreement(label, train_ids) > 0.99


def test_synthia_16bit_labels_round_trip(tmp_path, real_frame):
    image, _, train_ids = real_frame
    ids = TRAINID_TO_SYNTHIA_LUT[train_ids].astype(np.uint16)
    # SYNTHIA keeps the class in the first channel; fill the others with instance-like noise so
    # that reading the wrong channel, or reading through 8 bits, cannot pass
    rng = np.random.default_rng(0)
    label = np.stack([ids, rng.integers(0, 60000, ids.shape), rng.integers(0, 60000, ids.shape)], -1)
    save_png(tmp_path / "RGB/0000001.png", image)
    save_png16(tmp_path / "GT/LABELS/0000001.png", label.astype(np.uint16))
    loaded = Synthia(tmp_path).load(0)[1]
    assert np.array_equal(loaded, train_ids)
