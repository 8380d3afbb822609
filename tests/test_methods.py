"""The method registry and the baselines: each trains, its loss falls, its defining computation
matches a hand-computed value, and checkpoints, resume, evaluation and prediction work for it."""
import json
import math

import pytest
import torch

from pit_engine.checkpoint import load_checkpoint
from pit_engine.cli import main
from pit_engine.events import Step
from pit_engine.methods import METHODS, loss_terms
from pit_engine.methods.advent import self_information
from pit_engine.methods.cbst import class_thresholds, confidence_histogram
from pit_engine.methods.minent import entropy_map
from pit_engine.predict import Predictor
from pit_engine.train import Trainer
from tests.conftest import tiny_config

BASELINES = {"adaptsegnet": {"adv", "adv_aux", "disc"}, "minent": {"ent", "ent_aux"}, "advent": {"adv", "adv_aux", "disc"},
             "cbst": {"st"}, "target_labels": {"seg_tgt"}}


def test_the_registry_names_every_method_and_its_terms():
    assert set(METHODS) == {"source_only", "adaptsegnet", "minent", "advent", "cbst", "pit", "target_labels"}
    assert all(METHODS[n].uda for n in METHODS if n != "target_labels") and not METHODS["target_labels"].uda
    assert [n for n, m in METHODS.items() if m.has_pivot] == ["pit"]
    assert loss_terms()[:2] == ["seg", "seg_aux"] and {"ent", "st", "img_tgt", "disc"} <= set(loss_terms())


@pytest.mark.parametrize("name", list(BASELINES))
def test_each_baseline_trains_and_its_loss_falls(name, tiny_demo, tmp_path):
    config = tiny_config(tiny_demo, name, train={"iterations": 20, "warmup": 1},
                         method={"cbst": {"round_every": 4}, "adaptsegnet": {"disc_width": 8},
                                 "advent": {"disc_width": 8}})
    steps = []
    finished = Trainer(config, tmp_path / "run", log=lambda *_: None).run(
        lambda e: steps.append(e.losses) if isinstance(e, Step) else None)
    assert finished.reason == "done", finished.message
    assert BASELINES[name] <= set(steps[-1]) and not set(steps[0]) & BASELINES[name]  # target terms after warm-up
    total = [sum(v for k, v in s.items() if k != "disc") for s in steps]  # the segmenter's objective
    assert sum(total[-4:]) < 0.8 * sum(total[:4])
    state = load_checkpoint(tmp_path / "run")
    assert state["method"] == name and state["config"]["method"]["name"] == name
    if "disc" in BASELINES[name]:
        assert {"d_out", "d_out_aux", "d_optimizer"} <= set(state)


def test_entropy_and_self_information_maps_by_hand():
    p = torch.tensor([0.25, 0.75]).view(1, 2, 1, 1)
    h = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))  # over log2(2) = 1
    assert float(entropy_map(p.log())) == pytest.approx(h, abs=1e-6)
    assert float(entropy_map(torch.zeros(1, 19, 1, 1))) == pytest.approx(1.0, abs=1e-6)  # uniform: the maximum
    four = torch.tensor([0.5, 0.25, 0.25, 0.0]).view(1, 4, 1, 1)
    # -p log2 p / log2 4: 0.5 * 1 / 2, 0.25 * 2 / 2, 0.25 * 2 / 2, and 0 for p = 0 (no NaN)
    assert self_information(four).flatten().tolist() == pytest.approx([0.25, 0.25, 0.25, 0.0], abs=1e-6)


def test_class_balanced_thresholds_by_hand():
    conf = torch.tensor([0.9505, 0.8505, 0.7505, 0.6505, 0.6005, 0.6005, 0.6005])
    cls = torch.tensor([0, 0, 0, 0, 2, 2, 2])
    hist = confidence_histogram(conf, cls, 3)
    assert hist.sum().item() == 7 and hist[0].sum().item() == 4
    thresholds = class_thresholds(hist, 0.5)
    # class 0: the top half of its 4 pixels is 0.9505 and 0.8505, so the threshold is 0.85's bin;
    # class 1 has no pixels; class 2 keeps all three (they tie)
    assert thresholds[0].item() == pytest.approx(0.850) and math.isnan(thresholds[1].item())
    assert thresholds[2].item() == pytest.approx(0.600)
    assert class_thresholds(hist, 0.25)[0].item() == pytest.approx(0.950)  # one pixel of four
    assert class_thresholds(hist, 1.0)[0].item() == pytest.approx(0.650)


@pytest.mark.parametrize("name", ["cbst", "adaptsegnet"])
def test_stop_and_resume_match_an_uninterrupted_run(name, tiny_demo, tmp_path):
    config = tiny_config(tiny_demo, name, train={"iterations": 8, "warmup": 1},
                         method={"cbst": {"round_every": 3}, "adaptsegnet": {"disc_width": 8}})
    whole = []
    assert Trainer(config, tmp_path / "whole", log=lambda *_: None).run(
        lambda e: whole.append(e.losses) if isinstance(e, Step) else None).reason == "done"
    trainer, split = Trainer(config, tmp_path / "split", log=lambda *_: None), []

    def on_event(e):
        if isinstance(e, Step):
            split.append(e.losses)
            if e.iteration == 4:
                trainer.stop()
    assert trainer.run(on_event).reason == "stopped"
    assert Trainer(config, tmp_path / "split", resume=True, log=lambda *_: None).run(
        lambda e: split.append(e.losses) if isinstance(e, Step) else None).reason == "done"
    assert len(split) == len(whole) == 8
    for a, b in zip(whole, split):
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-7) for k in a)


def test_a_method_without_a_pivot_predicts_evaluates_and_exports(tiny_demo, tmp_path, capsys):
    config = tiny_config(tiny_demo, "minent", train={"iterations": 2, "warmup": 1})
    assert Trainer(config, tmp_path / "run", log=lambda *_: None).run().reason == "done"
    predictor = Predictor.from_checkpoint(tmp_path / "run")
    frame = next((tiny_demo / "target/leftImg8bit/val").rglob("*.png"))
    from pit_engine.data.io import read_rgb
    pred = predictor.predict(read_rgb(frame))
    assert not predictor.has_pivot and not pred.has_pivot and pred.q is None and pred.classes.shape == (64, 128)  # the frame's size
    assert main(["eval", "--checkpoint", str(tmp_path / "run"), "--data", f"cityscapes:{tiny_demo / 'target'}:val",
                 "--json", str(tmp_path / "e.json")]) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["pivot_precision"] == {} and "mIoU19" in result["miou"]
    assert main(["predict", "--checkpoint", str(tmp_path / "run"), str(frame), "--out", str(tmp_path / "p")]) == 0
    written = json.loads(next((tmp_path / "p").glob("*.json")).read_text())
    assert written["method"] == "minent" and set(written["classes"]["road"]) == {"pixel_share"}


def test_the_target_label_ceiling_refuses_an_unlabelled_target(tiny_demo, tmp_path):
    import shutil

    shutil.copytree(tiny_demo / "target", tmp_path / "target")
    shutil.rmtree(tmp_path / "target/gtFine/train")
    config = tiny_config(tiny_demo, "target_labels", data={"target_root": str(tmp_path / "target")})
    finished = Trainer(config, tmp_path / "run", log=lambda *_: None).run()
    assert finished.reason == "failed" and "needs target labels" in finished.message and not finished.traceback


def test_pit_demo_offers_every_row_and_refuses_an_unknown_one(capsys):
    from pit_engine import demo

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(row in help_text for row in demo.ROWS)
    assert {demo.ROWS[row][1] for row in demo.ROWS} == set(METHODS)  # every method has a row
    assert main(["demo", "--methods", "pit,dann", "--out", "/nonexistent/x"]) == 2
    assert "unknown method 'dann' (--methods)" in capsys.readouterr().err
