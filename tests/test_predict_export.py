"""Predictor, comparison, overlays, `pit predict` and `pit export`."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from pit_engine import overlay
from pit_engine.checkpoint import save_checkpoint
from pit_engine.classes import CITYSCAPES_CLASSES, CITYSCAPES_COLOURS
from pit_engine.cli import main
from pit_engine.compare import BOTH_RIGHT, BOTH_WRONG, ONLY_A, ONLY_B, compare
from pit_engine.config import Config
from pit_engine.data.datasets import Cityscapes
from pit_engine.errors import UserError
from pit_engine.models import DeepLabV2
from pit_engine.predict import Predictor


def known_checkpoint(path, favour: int = 13):
    """A small model whose output is the constant class `favour`: all weights zero but one bias."""
    torch.manual_seed(0)
    model = DeepLabV2("small", 19)
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    for conv in model.head.convs:
        conv.bias.data[favour] = 1.0
    model.pivot_head.fc.bias.data[:] = -5.0
    model.pivot_head.fc.bias.data[favour] = 5.0
    config = Config.from_dict({"model": {"backbone": "small"}, "eval": {"size": [64, 32]}})
    save_checkpoint(path, {"model": model.state_dict(), "config": config.to_dict(), "classes": list(CITYSCAPES_CLASSES),
                           "normalization": "imagenet", "iteration": 0})
    return path


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (50, 90, 3), dtype=np.uint8)


def test_predictor_on_a_known_model(tmp_path, frame):
    p = Predictor.from_checkpoint(known_checkpoint(tmp_path / "car.pt"), "cpu").predict(frame)
    assert p.classes.shape == (50, 90) and (p.classes == 13).all()  # full resolution, the known class
    assert p.confidence.shape == (50, 90) and np.allclose(p.confidence, np.exp(4) / (np.exp(4) + 18), atol=1e-5)  # 4 summed biases
    assert p.q[13] > 0.99 and p.q[0] < 0.01 and p.pivot[13] == 1 and p.pivot[0] == 0
    assert p.cams.shape[0] == 19 and p.cam(13).shape == (50, 90)
    assert p.pooled.shape == (19,) and p.pixel_share()[13] == 1.0
    assert p.seeds.shape == (50, 90) and p.regions.shape == (50, 90)


def test_predictor_refuses_another_class_count(tmp_path):
    path = known_checkpoint(tmp_path / "c.pt")
    state = torch.load(path, weights_only=True)
    state["classes"] = state["classes"][:16]
    torch.save(state, tmp_path / "c16.pt")
    with pytest.raises(UserError, match="checkpoint has 16 classes"):
        Predictor.from_checkpoint(tmp_path / "c16.pt")


def test_overlay_alpha_zero_is_the_frame_and_ignore_is_untouched(frame):
    classes = np.full(frame.shape[:2], 255, np.uint8)
    classes[10:30, 20:60] = 0
    assert np.array_equal(overlay.blend(frame, classes, 0.0), frame)
    out = overlay.blend(frame, classes, 0.6, show_boundaries=True)
    assert np.array_equal(out[classes == 255], frame[classes == 255])
    assert np.array_equal(overlay.blend(frame, classes, 1.0)[15, 30], CITYSCAPES_COLOURS[0])
    visible = np.ones(19, bool)
    visible[0] = False  # a class switched off keeps the frame too
    assert np.array_equal(overlay.blend(frame, classes, 0.6, visible=visible), frame)


def test_comparison_counts_add_up():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, (20, 30)).astype(np.uint8)
    truth[0] = 255
    a, b = rng.integers(0, 4, (2, 20, 30)).astype(np.uint8)
    cmp = compare(a, b, truth)
    assert sum(cmp.counts.values()) == (truth != 255).sum()
    valid = truth != 255
    assert cmp.counts["both right"] == ((a == truth) & (b == truth) & valid).sum()
    assert set(np.unique(cmp.outcome)) <= {BOTH_RIGHT, ONLY_A, ONLY_B, BOTH_WRONG, 255}
    perfect = compare(truth, a, truth)
    assert perfect.miou_a == 1.0 and perfect.miou_b < 1.0
    no_truth = compare(a, b)
    assert no_truth.counts["same"] + no_truth.counts["differ"] == a.size
    # confusion matrices counted before (the GUI counts each model's once a frame) give the same scores
    from pit_engine.evaluate import ConfusionMatrix
    counted = []
    for pred in (a, b):
        cm = ConfusionMatrix(19)
        cm.update(pred.astype(np.int64), truth)
        counted.append(cm.matrix)
    again = compare(a, b, truth, matrices=tuple(counted))
    assert (again.miou_a, again.miou_b) == (cmp.miou_a, cmp.miou_b)
    assert np.array_equal(again.iou_b, cmp.iou_b, equal_nan=True) and again.counts == cmp.counts


def test_pit_export_compare_on_the_real_frame(tmp_path, realdata, capsys):
    a, b = known_checkpoint(tmp_path / "a.pt", 0), known_checkpoint(tmp_path / "b.pt", 2)
    folder = realdata / "leftImg8bit/val/frankfurt"
    out = tmp_path / "out"
    assert main(["export", "--checkpoint", str(a), "--compare", str(b), str(folder), "--out", str(out),
                 "--device", "cpu"]) == 0
    index = json.loads((out / "index.json").read_text())
    (entry,) = index["frames"]
    assert entry["truth"].endswith("_gtFine_labelIds.png")  # found through the Cityscapes layout
    composite = np.asarray(Image.open(out / entry["compare"]))
    # frame | A | B | truth | outcome; a 256-wide frame is drawn twice as large, to be read as it is
    assert composite.shape[1] > 5 * 512
    overlay_png = np.asarray(Image.open(out / entry["overlay"]))
    assert overlay_png.shape[1] == 512 and overlay_png.shape[0] > 256  # title above, legend below
    truth = Cityscapes(realdata, "val").load(0)[1]
    assert sum(entry["counts"].values()) == (truth != 255).sum()
    assert entry["counts"]["only A right"] == (truth == 0).sum()  # A says road everywhere, B building
    assert entry["counts"]["only B right"] == (truth == 2).sum()
    assert {row["class"] for row in index["per_class_iou"]} == set(CITYSCAPES_CLASSES)
    # a second export into the same folder refuses to overwrite, in one line
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(a), str(folder), "--out", str(out), "--device", "cpu"]) == 2
    assert "output exists" in capsys.readouterr().err


def test_non_images_and_corrupt_frames_are_skipped_and_listed(tmp_path, frame, capsys):
    ckpt = known_checkpoint(tmp_path / "a.pt")
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(frame).save(frames / "good.png")
    (frames / "notes.txt").write_text("not a frame")
    (frames / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["export", "--checkpoint", str(ckpt), str(frames), "--out", str(tmp_path / "o"), "--device", "cpu"]) == 0
    index = json.loads((tmp_path / "o/index.json").read_text())
    assert [f["overlay"] for f in index["frames"]] == ["good_overlay.png"]
    assert {s["path"].split("/")[-1] for s in index["skipped"]} == {"notes.txt", "broken.png"}
    assert "warning: skipped" in capsys.readouterr().err


def test_pit_predict_writes_maps_and_the_category_vector(tmp_path, frame):
    ckpt = known_checkpoint(tmp_path / "a.pt")
    Image.fromarray(frame).save(tmp_path / "f.png")
    assert main(["predict", "--checkpoint", str(ckpt), str(tmp_path / "f.png"), "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 0
    assert (np.asarray(Image.open(tmp_path / "o/f_trainIds.png")) == 13).all()
    info = json.loads((tmp_path / "o/f.json").read_text())
    assert info["classes"]["car"]["pivot"] == "present" and info["classes"]["road"]["pivot"] == "absent"
    assert info["classes"]["car"]["pixel_share"] == 1.0


def test_unreadable_checkpoint_is_one_line(tmp_path, frame, capsys):
    Image.fromarray(frame).save(tmp_path / "f.png")
    (tmp_path / "bad.pt").write_text("nope")
    assert main(["export", "--checkpoint", str(tmp_path / "bad.pt"), str(tmp_path / "f.png"), "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: not a PyTorch checkpoint") and "\n" not in err
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 60)  # a zip's start, then nothing
    assert main(["export", "--checkpoint", str(tmp_path / "cut.pt"), str(tmp_path / "f.png"), "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot load checkpoint") and "\n" not in err


def test_shipped_demo_checkpoints_load_and_compare(tmp_path):
    from pit_resources import resource

    frames = resource("demo_frames/leftImg8bit/val/democity")
    paths = {name: resource(f"demo_{name}.pt") for name in ("source_only", "pit")}
    for path in paths.values():
        assert path.stat().st_size <= 8 * 1024 * 1024
    index = __import__("pit_engine.export", fromlist=["x"]).export_overlays(
        paths["source_only"], [frames], tmp_path, paths["pit"], device="cpu")
    assert len(index["frames"]) == 8 and all(f["truth"] for f in index["frames"])
    rows = index["per_class_iou"]
    mean = lambda key: np.nanmean([r[key] if r[key] is not None else np.nan for r in rows])  # noqa: E731
    assert mean("b") > mean("a")  # the shipped PIT model beats source-only on the shipped frames


def test_saved_pictures_enlarge_small_frames_and_name_their_model():
    from pit_engine.overlay import comparison_image, enlargement, overlay_image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 128, 3), dtype=np.uint8)
    a, b = rng.integers(0, 19, (64, 128), dtype=np.uint8), rng.integers(0, 19, (64, 128), dtype=np.uint8)
    assert enlargement(128) == 4 and enlargement(512) == 1 and enlargement(2048) == 1 and enlargement(300) == 2
    plain = overlay_image(image, a, 0.5, show_boundaries=False)
    named = overlay_image(image, a, 0.5, show_boundaries=False, title="g11 · PIT @ 6")
    assert plain.shape[1] == named.shape[1] == 512 and named.shape[0] > plain.shape[0]  # the title's strip
    # nearest neighbour: each frame pixel is a 4 x 4 block of one colour, the class map's own
    blocks = plain[:256].reshape(64, 4, 128, 4, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()
    composite = comparison_image(image, a, b, a, compare(a, b, a), 0.5, "A", "B")
    assert composite.shape[1] >= 5 * 512  # five panels a reader can see without zooming
    big = rng.integers(0, 255, (512, 1024, 3), dtype=np.uint8)
    assert overlay_image(big, np.zeros((512, 1024), np.uint8)).shape[1] == 1024  # large frames as they are


def test_the_composites_legend_names_every_class_of_any_panel(monkeypatch):
    # issue 26: only the classes A or B predict were named, so a bus of the ground truth went unnamed
    # beside "train", almost its teal; and "both wrong" was a red beside person's near-identical red
    from pit_engine.compare import OUTCOME_COLOURS, OUTCOMES

    keys = []
    real_legend = overlay.legend
    monkeypatch.setattr(overlay, "legend", lambda items, *args: (keys.append(items), real_legend(items, *args))[1])
    names = {name: c for c, name in enumerate(CITYSCAPES_CLASSES)}
    image = np.full((8, 16, 3), 100, np.uint8)
    a = np.full((8, 16), names["road"], np.uint8)
    b = a.copy()
    b[:, 8:] = names["train"]
    truth = a.copy()
    truth[:4, 8:] = names["bus"]
    truth[4:, 8:] = names["bicycle"]
    truth[0, 0] = names["rider"]
    truth[7, 0] = 255  # ignored: no class
    overlay.comparison_image(image, a, b, truth, compare(a, b, truth))
    named = [name for name, _ in keys[-1]]
    assert named == [*OUTCOMES, "road", "rider", "bus", "train", "bicycle"]  # the truth's bus, rider, bicycle too
    # a class switched off (drawn nowhere) is not named; without ground truth, the two predictions' classes
    visible = np.ones(19, bool)
    visible[names["bus"]] = False
    overlay.comparison_image(image, a, b, truth, compare(a, b, truth), visible=visible)
    assert "bus" not in [name for name, _ in keys[-1]] and "bicycle" in [name for name, _ in keys[-1]]
    overlay.comparison_image(image, a, b, None, compare(a, b, None))
    assert [name for name, _ in keys[-1]] == ["road", "train"]
    overlay.overlay_image(image, truth)
    assert [name for name, _ in keys[-1]] == ["road", "rider", "bus", "bicycle"]

    # "both wrong" in a colour no class uses, far from person's and rider's reds
    wrong = OUTCOME_COLOURS[BOTH_WRONG].astype(float)
    distance = np.sqrt(((CITYSCAPES_COLOURS.astype(float) - wrong) ** 2).sum(1))
    assert distance.min() >= 80
    assert distance[names["person"]] >= 150 and distance[names["rider"]] >= 150
