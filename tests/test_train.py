"""The trainer on tiny demo frames: events, run directory, checkpoints, stop / resume, bad input."""
import json
import math
import threading
import time

import numpy as np
import pytest
import torch

from pit_engine.checkpoint import load_checkpoint, restore_model
from pit_engine.cli import main
from pit_engine.errors import UserError
from pit_engine.events import CheckpointSaved, Evaluated, Finished, Started, Step
from pit_engine.train import Trainer
from tests.conftest import tiny_config

SOURCE_ONLY = "source_only"


def run(config, run_dir, **kwargs):
    events = []
    finished = Trainer(config, run_dir, **kwargs).run(events.append)
    return finished, events


def step_losses(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["iteration"], {k: v for k, v in r.items() if k not in ("kind", "iteration", "time")})
            for r in lines if r["kind"] == "step"]


def test_pit_run_reports_every_loss_term_and_writes_the_run_dir(tiny_demo, tmp_path):
    config = tiny_config(tiny_demo, pit={"output_adv": True, "disc_width": 8})
    finished, events = run(config, tmp_path / "run")
    assert finished.reason == "done", finished.message
    assert isinstance(events[0], Started) and events[0].total_iterations == 6
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.iteration for s in steps] == [1, 2, 3, 4, 5, 6]
    assert set(steps[0].losses) == {"seg", "seg_aux", "cls", "img_src"}  # warm-up: source only
    assert {"img_tgt", "align", "adv", "adv_aux", "disc"} <= set(steps[-1].losses)
    assert steps[0].lr > steps[-1].lr  # poly schedule
    evaluated = [e for e in events if isinstance(e, Evaluated)]
    assert len(evaluated) == 1 and 0 <= evaluated[0].miou <= 1 and "mIoU19" in evaluated[0].subsets
    assert any(isinstance(e, CheckpointSaved) for e in events) and isinstance(events[-1], Finished)
    run_dir = tmp_path / "run"
    assert {p.name for p in run_dir.iterdir()} == {"config.toml", "metrics.jsonl", "checkpoints", "events.log"}
    # every record and event carries its wall-clock time (the curves' elapsed-time axis), the same in both
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["time"] for r in records if r["kind"] == "step"] == [s.time for s in steps]
    assert [r["time"] for r in records if r["kind"] == "eval"] == [e.time for e in evaluated]
    assert all(abs(r["time"] - time.time()) < 600 for r in records)
    state = load_checkpoint(run_dir)  # weights_only under the hood
    assert state["iteration"] == 6 and state["normalization"] == "imagenet" and len(state["classes"]) == 19
    assert {"model", "optimizer", "rng", "config", "d_out", "d_img", "d_optimizer"} <= set(state)


def test_pixel_level_loss_appears_once_seeds_exist(tiny_demo, tmp_path):
    # thresholds at 0 make every arg-max pixel a seed, so the pseudo-label term must show up
    config = tiny_config(tiny_demo, pit={"seed_threshold": 0.0, "grow_threshold": 0.0, "tau_hi": 0.0,
                                         "tau_lo": 0.0}, train={"warmup": 0})
    finished, events = run(config, tmp_path / "run")
    assert finished.reason == "done"
    assert all("pix" in e.losses for e in events if isinstance(e, Step))


def test_source_only_is_the_same_loop_with_components_off(tiny_demo, tmp_path):
    finished, events = run(tiny_config(tiny_demo, SOURCE_ONLY), tmp_path / "run")
    assert finished.reason == "done"
    assert all(set(e.losses) == {"seg", "seg_aux"} for e in events if isinstance(e, Step))


@pytest.mark.parametrize("teacher", [{"teacher": "snapshot", "refresh_every": 3},
                                     {"teacher": "mean", "gwrp_per_class": True}])
def test_stop_then_resume_matches_an_uninterrupted_run(teacher, tiny_demo, tmp_path):
    config = tiny_config(tiny_demo, pit={"align_steps": 1, **teacher}, train={"iterations": 8})
    done, _ = run(config, tmp_path / "whole")
    assert done.reason == "done"

    trainer = Trainer(config, tmp_path / "split")
    stopped = trainer.run(lambda e: isinstance(e, Step) and e.iteration == 4 and trainer.stop())
    assert stopped.reason == "stopped" and stopped.iteration == 4  # stops after that optimizer step
    assert load_checkpoint(tmp_path / "split")["iteration"] == 4
    resumed, events = run(config, tmp_path / "split", resume=True)
    assert resumed.reason == "done" and events[0].start_iteration == 4
    whole, split = step_losses(tmp_path / "whole"), step_losses(tmp_path / "split")
    assert [i for i, _ in split] == list(range(1, 9))
    for (_, a), (_, b) in zip(whole, split):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-7), k


def test_pause_holds_the_loop_until_resume(tiny_demo, tmp_path):
    trainer = Trainer(tiny_config(tiny_demo, SOURCE_ONLY, train={"iterations": 40}), tmp_path / "run")
    seen = []
    thread = threading.Thread(target=lambda: trainer.run(seen.append))
    trainer.pause()
    thread.start()
    time.sleep(1.0)
    assert not any(isinstance(e, Step) for e in seen)  # paused before the first step
    trainer.resume()
    deadline = time.time() + 30
    while not any(isinstance(e, Step) for e in seen) and time.time() < deadline:
        time.sleep(0.02)
    trainer.stop()
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(seen[-1], Finished) and seen[-1].reason == "stopped"


def test_bad_inputs_fail_with_one_line(tiny_demo, tmp_path):
    config = tiny_config(tiny_demo, data={"source_root": str(tmp_path / "nowhere")})
    finished, _ = run(config, tmp_path / "run")
    assert finished.reason == "failed" and not finished.traceback
    assert finished.message.startswith("error: folder not found")
    # a run directory that already holds checkpoints is never overwritten
    good = tiny_config(tiny_demo, SOURCE_ONLY, train={"iterations": 2})
    assert run(good, tmp_path / "r2")[0].reason == "done"
    finished, _ = run(good, tmp_path / "r2")
    assert finished.reason == "failed" and "already holds checkpoints" in finished.message


def test_checkpoint_with_another_class_count_is_refused(tiny_demo, tmp_path):
    good = tiny_config(tiny_demo, SOURCE_ONLY, train={"iterations": 1})
    run(good, tmp_path / "run")
    path = next((tmp_path / "run" / "checkpoints").glob("*.pt"))
    state = torch.load(path, weights_only=True)
    state["classes"] = state["classes"][:16]
    torch.save(state, tmp_path / "sixteen.pt")
    with pytest.raises(Exception, match="checkpoint has 16 classes, this build expects 19"):
        restore_model(tmp_path / "sixteen.pt")


def test_cli_train_eval_and_config_typo(tiny_demo, tmp_path, capsys):
    config = tiny_config(tiny_demo, SOURCE_ONLY, train={"iterations": 2})
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml())
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 0
    assert main(["eval", "--checkpoint", str(tmp_path / "run"), "--data", f"cityscapes:{tiny_demo / 'target'}:val",
                 "--json", str(tmp_path / "e.json")]) == 0
    assert "mIoU19" in json.loads((tmp_path / "e.json").read_text())["miou"]
    capsys.readouterr()
    path.write_text(config.to_toml().replace("iterations = 2", "iteration = 2"))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown key 'train.iteration'" in err and "Traceback" not in err
    assert main(["eval", "--checkpoint", str(tmp_path / "run"), "--data", "kitti:/x"]) == 2
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 truncated")
    assert main(["eval", "--checkpoint", str(tmp_path / "broken.pt"), "--data",
                 f"cityscapes:{tiny_demo / 'target'}:val"]) == 2
    assert "cannot load checkpoint" in capsys.readouterr().err


def test_a_corrupt_frame_in_a_loader_worker_is_one_line(tiny_demo, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_demo / "source", data / "source")
    for png in (data / "source/images").glob("*.png"):
        png.write_bytes(b"garbage")
    config = tiny_config(tiny_demo, SOURCE_ONLY, data={"source_root": str(data / "source"), "workers": 1})
    finished, _ = run(config, tmp_path / "run")
    assert finished.reason == "failed" and not finished.traceback
    assert finished.message.startswith("error: cannot read image") and "\n" not in finished.message


def test_no_network_output_is_read_after_the_next_forward_pass(tiny_demo, tmp_path, monkeypatch):
    # What CUDA-graph replays allow: once the network runs again, the memory of its last outputs
    # may be reused. Poison them at every forward pass; the losses must not change.
    config = tiny_config(tiny_demo, train={"iterations": 3, "warmup": 1}, pit={"output_adv": True})

    def losses(run):
        steps = []
        finished = Trainer(config, tmp_path / run, log=lambda *_: None).run(
            lambda e: steps.append(e.losses) if isinstance(e, Step) else None)
        assert finished.reason == "done", finished.message
        return steps

    clean = losses("clean")
    import pit_engine.train

    build = pit_engine.train.build_model

    def poisoning_build(*args, **kwargs):
        model, normalization = build(*args, **kwargs)
        last = []

        def poison(module, inputs):
            if module is not model:  # a teacher (a deep copy, hooks included) is another network
                return
            with torch.no_grad():
                for tensor in last:
                    tensor.fill_(float("nan"))

        def keep(module, inputs, out):
            if module is not model:
                return
            last[:] = [t for t in (out.logits, out.aux, out.features, out.pivot) if t is not None]
        model.register_forward_pre_hook(poison)
        model.register_forward_hook(keep)
        return model, normalization

    monkeypatch.setattr(pit_engine.train, "build_model", poisoning_build)
    assert losses("poisoned") == clean
    assert {"adv", "adv_aux", "align", "disc", "pix"} <= set(clean[-1])  # every reader of the outputs ran


def test_an_unreadable_val_frame_is_skipped_and_the_checkpoint_kept(tiny_demo, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_demo / "target", data / "target")
    broken = sorted((data / "target/leftImg8bit/val").rglob("*.png"))[1]
    broken.write_bytes(broken.read_bytes()[:200])
    config = tiny_config(tiny_demo, SOURCE_ONLY, train={"iterations": 2, "checkpoint_every": 2},
                         data={"target_root": str(data / "target"), "workers": 1})
    said = []
    finished, events = run(config, tmp_path / "run", log=said.append)
    assert finished.reason == "done", finished.message
    assert (tmp_path / "run/checkpoints/iter_0000002.pt").is_file()
    assert said.count(f"warning: skipped {broken}: cannot read image: image file is truncated") == 1
    record = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()][-1]
    assert record["kind"] == "eval" and record["frames"] == 3 and record["skipped"] == 1
    assert "on 3 frames, 1 unreadable skipped" in (tmp_path / "run/events.log").read_text()
    # `pit eval` skips it too, with the same warning, and says so
    assert main(["eval", "--checkpoint", str(tmp_path / "run"), "--data", f"cityscapes:{data / 'target'}:val"]) == 0
    out, err = capsys.readouterr()
    assert "4 frame(s)" not in out and "3 frame(s)" in out and "skipped 1 unreadable" in out
    assert f"warning: skipped {broken}: cannot read image: image file is truncated" in err


def test_evaluation_reads_frames_in_workers_with_the_same_result(tiny_demo):
    from pit_engine.classes import EVAL_SUBSETS
    from pit_engine.data.datasets import open_dataset
    from pit_engine.data.transforms import get_normalization
    from pit_engine.evaluate import evaluate
    from pit_engine.models import build_model

    torch.manual_seed(0)
    model, _ = build_model("small", 19, (6, 12, 18, 24), True, "", log=lambda *_: None)
    val = open_dataset("cityscapes", tiny_demo / "target", "val")
    results = [evaluate(model, val, EVAL_SUBSETS["gta5"], (64, 32), get_normalization("imagenet"), "cpu",
                        workers=workers).to_dict() for workers in (0, 2)]
    assert results[0] == results[1] and results[0]["frames"] == 4


def test_the_poly_horizon_is_separate_from_the_stop(tiny_demo, tmp_path):
    # published runs decay over 250k iterations and stop at 120k: the rate never reaches 0
    config = tiny_config(tiny_demo, SOURCE_ONLY, train={"iterations": 4, "poly_iterations": 8, "poly_power": 1.0,
                                                        "lr": 0.01})
    finished, events = run(config, tmp_path / "run")
    assert finished.reason == "done"
    assert [e.lr for e in events if isinstance(e, Step)] == pytest.approx([0.01 * (1 - k / 8) for k in range(4)])
    with pytest.raises(UserError, match="poly_iterations"):
        tiny_config(tiny_demo, SOURCE_ONLY, train={"iterations": 4, "poly_iterations": 3})


def test_odd_source_labels_run_through_as_ignore(tiny_demo, tmp_path):
    # every source label unlabelled (id 0) but for a band of an unknown id (40): before, the first
    # read stopped the run, and a batch without any labelled pixel gave a NaN loss
    import shutil

    from PIL import Image

    from pit_engine.classes import labelid_palette
    from pit_engine.data.io import save_png

    root = tmp_path / "demo"
    shutil.copytree(tiny_demo, root)
    for path in sorted((root / "source/labels").glob("*.png")):
        label = np.zeros_like(np.asarray(Image.open(path)))
        label[:10] = 40
        save_png(path, label, palette=labelid_palette())
    config = tiny_config(root, train={"batch_size": 1})
    finished, events = run(config, tmp_path / "run")
    assert finished.reason == "done", finished.message
    steps = [e for e in events if isinstance(e, Step)]
    assert all(e.losses["seg"] == 0 and e.losses["cls"] == 0 and math.isfinite(sum(e.losses.values()))
               for e in steps)
    log = (tmp_path / "run/events.log").read_text()
    assert "holds ids the data set does not define" in log
    width = label.shape[1]
    assert f"6 frame draw(s) of this process held label ids the data set does not define ({60 * width:,d} pixels)" in log


def test_a_run_can_also_write_tensorboard_event_files(tiny_demo, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config(tiny_demo, train={"tensorboard": True, "health_every": 3, "health_frames": 2})
    finished, _ = run(config, tmp_path / "run")
    assert finished.reason == "done", finished.message
    board = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    board.Reload()
    tags = set(board.Tags()["scalars"])
    assert {"loss/seg", "loss/cls", "lr", "eval/mIoU19", "health/mean_iou"} <= tags
    seg = [e.value for e in board.Scalars("loss/seg")]
    assert seg == pytest.approx([losses["seg"] for _, losses in step_losses(tmp_path / "run")])


def test_tensorboard_without_the_package_is_one_line(tiny_demo, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("TensorBoard logging requires TensorBoard")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    finished, _ = run(tiny_config(tiny_demo, train={"tensorboard": True}), tmp_path / "run")
    assert finished.reason == "failed"
    assert finished.message == ("error: train.tensorboard needs the tensorboard package (train.tensorboard) — "
                                "pip install 'pit-studio[tensorboard]', or set train.tensorboard = false")
