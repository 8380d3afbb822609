"""SYNTHIA's published convention: a 16-class network, and the target's ground truth of terrain,
truck and train ignored, so that those pixels are neither hits nor misses."""
import numpy as np
import torch
from torch import nn

from pit_engine.checkpoint import restore_model
from pit_engine.classes import ABSENT_CLASSES, TRAINID_TO_SYNTHIA_LUT
from pit_engine.data.datasets import GTA5, Cityscapes
from pit_engine.data.io import save_png, save_png16
from pit_engine.evaluate import evaluate, evaluate_checkpoint
from pit_engine.data.transforms import get_normalization
from pit_engine.models import DeepLabV2, SegOutput
from pit_engine.train import Trainer
from tests.conftest import tiny_config

ROAD, VEGETATION, TERRAIN, CAR = 0, 8, 9, 13


class _Fixed(nn.Module):
    """A SYNTHIA network that predicts road, vegetation, vegetation, car on the four rows."""
    num_classes, absent_classes = 19, ABSENT_CLASSES["synthia"]

    def forward(self, x):
        logits = torch.full((1, 19, 4, 4), -5.0)
        for row, c in enumerate((ROAD, VEGETATION, VEGETATION, CAR)):
            logits[0, c, row] = 5.0
        return SegOutput(logits, None, torch.zeros(1, 1, 1, 1), torch.zeros(1, 19))


def test_the_16_class_means_by_a_hand_computed_confusion_matrix(tmp_path):
    # truth rows: road, vegetation, terrain, car (label ids 7, 21, 22, 26)
    save_png(tmp_path / "leftImg8bit/val/c/f_leftImg8bit.png", np.zeros((4, 4, 3), np.uint8))
    ids = np.repeat(np.array([7, 21, 22, 26], np.uint8)[:, None], 4, 1)
    save_png(tmp_path / "gtFine/val/c/f_gtFine_labelIds.png", ids)
    result = evaluate(_Fixed(), Cityscapes(tmp_path, "val"), {"mIoU16": (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)},
                      (4, 4), get_normalization("imagenet"), "cpu")
    # terrain's 4 pixels are ignored: vegetation 4 hits, 0 false positives. Out of a 19-class
    # matrix they would be 4 false positives: vegetation 4 / 8 = 0.5 and mIoU16 (1 + 0.5 + 1) / 3.
    assert result.per_class["vegetation"] == 1.0 and result.miou["mIoU16"] == 1.0
    assert not {"terrain", "truck", "train"} & set(result.per_class)


def _synthia_from(gta5_root, out):
    """The tiny demo's source frames in SYNTHIA's layout (16-bit ids in the red channel); the
    three classes SYNTHIA lacks become void."""
    data = GTA5(gta5_root)
    for i in range(len(data)):
        image, train_ids = data.load(i)
        train_ids = np.where(np.isin(train_ids, ABSENT_CLASSES["synthia"]), 255, train_ids)
        ids = TRAINID_TO_SYNTHIA_LUT[train_ids].astype(np.uint16)
        save_png(out / f"RGB/{i:07d}.png", image)
        save_png16(out / f"GT/LABELS/{i:07d}.png", np.stack([ids, np.zeros_like(ids), np.zeros_like(ids)], -1))
    return out


def test_a_synthia_run_trains_and_scores_a_16_class_network(tiny_demo, tmp_path):
    synthia = _synthia_from(tiny_demo / "source", tmp_path / "synthia")
    config = tiny_config(tiny_demo, data={"source_kind": "synthia", "source_root": str(synthia)})
    finished = Trainer(config, tmp_path / "run", log=lambda *_: None).run()
    assert finished.reason == "done", finished.message
    model, _ = restore_model(tmp_path / "run")
    assert model.absent_classes == (9, 14, 16)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 64))
    absent = list(model.absent_classes)
    assert float(out.logits.softmax(1)[:, absent].max()) == 0.0 and float(torch.sigmoid(out.pivot)[:, absent].max()) == 0.0
    assert not set(out.logits.max(1).indices.unique().tolist()) & set(absent)
    result = evaluate_checkpoint(tmp_path / "run", "cityscapes", tiny_demo / "target", "val")
    assert set(result.miou) == {"mIoU16", "mIoU13"} and len(result.per_class) == 16


def test_a_published_16_class_synthia_model_imports_into_its_rows(tmp_path):
    from pit_engine.cli import main

    torch.manual_seed(0)
    net = DeepLabV2("resnet50", 19, layout="deeplab")
    state = {k[len("backbone."):]: v for k, v in net.state_dict().items() if k.startswith("backbone.")}
    for layer, cin in (("layer5", 1024), ("layer6", 2048)):
        for i in range(4):
            state[f"{layer}.conv2d_list.{i}.weight"] = torch.randn(16, cin, 3, 3)
            state[f"{layer}.conv2d_list.{i}.bias"] = torch.randn(16)
    torch.save(state, tmp_path / "synthia_advent.pth")
    assert main(["import", str(tmp_path / "synthia_advent.pth"), "--out", str(tmp_path / "run"),
                 "--backbone", "resnet50"]) == 0
    model, ckpt = restore_model(tmp_path / "run")
    assert ckpt["config"]["data"]["source_kind"] == "synthia" and model.absent_classes == (9, 14, 16)
    kept = [c for c in range(19) if c not in model.absent_classes]
    assert torch.equal(model.head.convs[1].weight[kept], state["layer6.conv2d_list.1.weight"])
    assert torch.equal(model.aux_head.convs[1].bias[kept], state["layer5.conv2d_list.1.bias"])
