"""What the command line says (issue 26, item 11): the option to blame, the classes a mean is
over, an error when nothing could be read, and the split a training run is scored on."""
import json

import numpy as np

from conftest import tiny_config
from pit_engine.cli import main
from pit_engine.data.io import save_png
from pit_resources import resource

DEMO_FRAME = resource("demo_frames") / "leftImg8bit/val/democity/democity_000000_000300_leftImg8bit.png"


def test_a_bad_set_names_the_set_option_not_the_config_file(tmp_path, capsys):
    demo = resource("demo.toml")
    for value, error in (("train.iteratons=5", "error: unknown key 'train.iteratons' (--set train.iteratons=5) — "
                                               "did you mean 'train.iterations'?"),
                         ("train.iterations=0", "error: 'train.iterations' must be at least 1 "
                                                "(--set train.iterations=0) — fix the value")):
        assert main(["train", "--config", str(demo), "--set", "train.lr=1e-3", "--set", value]) == 2
        err = capsys.readouterr().err.strip()
        assert err == error and str(demo) not in err
    assert main(["train", "--config", str(demo), "--set", "train.lr=1e-3", "--set", "data.crop=[4, 4]"]) == 2
    assert "(--set data.crop=[4, 4])" in capsys.readouterr().err
    # a mistake in the file itself still names the file
    typo = tmp_path / "typo.toml"
    typo.write_text(demo.read_text().replace("iterations =", "iteratons =", 1))
    assert main(["train", "--config", str(typo), "--set", "train.lr=1e-3"]) == 2
    assert f"'train.iteratons' ({typo})" in capsys.readouterr().err


def test_eval_leaves_out_classes_without_truth_or_prediction_and_says_over_how_many(tmp_path, capsys):
    # "bus IoU nan", and a mean over 18 classes called mIoU19
    from PIL import Image

    root = tmp_path / "cs"
    frame = root / "leftImg8bit/val/c/c_000000_000001_leftImg8bit.png"
    frame.parent.mkdir(parents=True)
    frame.write_bytes(DEMO_FRAME.read_bytes())
    h, w = np.asarray(Image.open(frame)).shape[:2]
    save_png(root / "gtFine/val/c/c_000000_000001_gtFine_labelIds.png", np.full((h, w), 7, np.uint8))  # road only
    assert main(["eval", "--checkpoint", str(resource("demo_pit.pt")), "--data", f"cityscapes:{root}:val",
                 "--workers", "0", "--device", "cpu", "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower()
    result = json.loads((tmp_path / "e.json").read_text())
    defined = [c for c, v in result["per_class"].items() if v is not None]
    left_out = [c for c, v in result["per_class"].items() if v is None]
    assert left_out and defined  # the test means something: some classes have no IoU on this frame
    mean = next(line for line in out.splitlines() if line.startswith("mIoU"))
    assert mean.startswith(f"mIoU {100 * result['miou']['mIoU19']:.2f} over {len(defined)} classes (mIoU19 less ")
    assert all(c in mean for c in left_out)
    for c in left_out:  # no row of its own, unless the pivot said something about it
        assert not any(line.split("IoU")[0].strip() == c and "IoU      –" not in line for line in out.splitlines())


def test_predict_with_only_unreadable_images_is_an_error(tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "garbage.png").write_bytes(b"not a png")
    (frames / "cut.png").write_bytes(DEMO_FRAME.read_bytes()[:100])
    code = main(["predict", "--checkpoint", str(resource("demo_pit.pt")), str(frames), "--out", str(tmp_path / "o"),
                 "--device", "cpu"])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert code == 2 and "wrote 0" not in captured.out and "Traceback" not in captured.err
    assert errors == [f"error: none of the 2 image(s) could be read ({frames}) — see the warnings above; "
                      "give readable frames"]
    # one readable frame among them is no error: it is written, the others are listed as skipped
    (frames / "good.png").write_bytes(DEMO_FRAME.read_bytes())
    assert main(["predict", "--checkpoint", str(resource("demo_pit.pt")), str(frames), "--out",
                 str(tmp_path / "o2"), "--device", "cpu"]) == 0
    assert "wrote 1 frame(s)" in capsys.readouterr().out and (tmp_path / "o2/good.json").is_file()


def test_the_console_names_the_split_a_run_is_scored_on(tiny_demo, tmp_path, capsys):
    # `pit demo` printed "iteration 1000: mIoU19 18.1" (val) beside a table of test scores
    config = tiny_config(tiny_demo, "source_only", train={"iterations": 2})
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml())
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("iteration 2:")]
    assert len(lines) == 1 and lines[0].startswith("iteration 2: mIoU19 ") and lines[0].endswith(" on val (4 frames)")
    # and the run's log says how it ended once: "finished 2 iterations", not "finished: done finished ..."
    log = (tmp_path / "run/events.log").read_text()
    assert "finished 2 iterations" in log and "done finished" not in log and "finished: done" not in log
