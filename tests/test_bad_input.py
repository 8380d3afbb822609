"""Bad data folders and files: one-line errors naming the file, exit code 2, no traceback."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pit_engine.classes import labelid_palette
from pit_engine.cli import main
from pit_engine.data.datasets import GTA5, Cityscapes, Synthia, open_dataset
from pit_engine.data.io import save_png, save_png16
from pit_engine.errors import UserError


def gta5(root, n=2, size=(32, 16)):
    for i in range(n):
        save_png(root / f"images/{i:05d}.png", np.full((size[1], size[0], 3), 90, np.uint8))
        save_png(root / f"labels/{i:05d}.png", np.full((size[1], size[0]), 7, np.uint8), palette=labelid_palette())
    return root


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, [line for line in captured.err.splitlines() if line.startswith("error:")]


def test_missing_root(tmp_path, capsys):
    code, _, errors = run_cli(["data", "check", "gta5", str(tmp_path / "nope")], capsys)
    assert code == 2 and errors == [f"error: folder not found ({tmp_path / 'nope'}) — pass the folder that "
                                    "holds images/ and labels/"]


def test_cityscapes_root_one_level_too_deep(tmp_path):
    save_png(tmp_path / "cs/leftImg8bit/val/bonn/a_leftImg8bit.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(UserError, match="pass .*cs instead"):
        Cityscapes(tmp_path / "cs" / "leftImg8bit", "val")
    with pytest.raises(UserError, match="pass .*cs instead"):  # or one level too shallow
        Cityscapes(tmp_path, "val")


def test_image_without_label_is_named(tmp_path):
    root = gta5(tmp_path)
    (root / "labels/00001.png").unlink()
    with pytest.raises(UserError) as err:
        GTA5(root)
    assert "image without its label" in err.value.line() and "00001.png" in err.value.line()


def test_corrupt_and_truncated_png_are_reported_together(tmp_path, capsys):
    root = gta5(tmp_path, n=3, size=(64, 64))
    (root / "images/00000.png").write_bytes(b"not a png at all")
    data = (root / "labels/00001.png").read_bytes()
    (root / "labels/00001.png").write_bytes(data[: len(data) // 2])
    code, out, errors = run_cli(["data", "check", "gta5", str(root)], capsys)
    assert code == 2 and len(errors) == 2  # check reports every problem, not only the first
    assert "00000.png" in errors[0] and "corrupt" in errors[0]
    assert "00001.png" in errors[1] and "truncated" in errors[1]
    assert "problems: 2" in out
    with pytest.raises(UserError, match="corrupt"):
        GTA5(root).load(0)


def test_ids_outside_the_table_are_ignore_and_counted(tmp_path, capsys):
    # one odd frame must not end a long run: its unknown ids read as ignore, and `pit data check` says so
    root = gta5(tmp_path, n=2)
    label = np.full((16, 32), 7, np.uint8)
    label[:4] = 40
    save_png(root / "labels/00001.png", label, palette=labelid_palette())
    data = GTA5(root)
    _, train_ids, unknown = data.load_counted(1)
    assert unknown == 4 * 32 and (train_ids[:4] == 255).all() and (train_ids[4:] == 0).all()
    assert data.get(0)["unknown_ids"] == 0 and data.get(1)["unknown_ids"] == 128
    code, out, errors = run_cli(["data", "check", "gta5", str(root)], capsys)
    assert code == 0 and not errors
    assert "ids outside 0..33 (read as ignore): 1 frame(s), 128 pixel(s), e.g." in out and "00001.png" in out


def test_rgb_colour_label_where_ids_are_expected(tmp_path):
    root = gta5(tmp_path, n=1)
    save_png(root / "labels/00000.png", np.full((16, 32, 3), (128, 64, 128), np.uint8))
    with pytest.raises(UserError, match="colour image, expected 8-bit label ids"):
        GTA5(root).load(0)


def test_synthia_label_of_the_wrong_depth(tmp_path):
    save_png(tmp_path / "RGB/0000000.png", np.zeros((8, 8, 3), np.uint8))
    save_png(tmp_path / "GT/LABELS/0000000.png", np.full((8, 8, 3), 3, np.uint8))
    with pytest.raises(UserError, match="8-bit, expected SYNTHIA's 16-bit"):
        Synthia(tmp_path).load(0)
    save_png16(tmp_path / "GT/LABELS/0000000.png", np.full((8, 8, 3), 500, np.uint16))
    _, train_ids, unknown = Synthia(tmp_path).load_counted(0)
    assert unknown == 64 and (train_ids == 255).all()


def test_wrong_kind_of_mode_and_split(tmp_path):
    root = gta5(tmp_path, n=1)
    with pytest.raises(UserError, match="gta5 has no splits"):
        open_dataset("gta5", root, "val")
    with pytest.raises(UserError, match="unknown data set kind"):
        open_dataset("kitti", root)
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(root / "images/00000.png")  # 16-bit grey
    with pytest.raises(UserError, match="unsupported image mode"):
        GTA5(root).load(0)


def test_usage_error_is_one_line(capsys):
    code, _, errors = run_cli(["data", "chek"], capsys)
    assert code == 2 and len(errors) == 1 and "invalid choice" in errors[0]


def test_console_script_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pit_engine", "data", "check", "cityscapes", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: no leftImg8bit/ folder")


@pytest.mark.parametrize("device, expected", [
    ("gpu", "error: unknown device 'gpu' (--device) — use auto, cpu, cuda or cuda:N"),
    ("cuda:one", "error: unknown device 'cuda:one' (--device) — use auto, cpu, cuda or cuda:N"),
])
def test_a_wrong_device_flag_names_the_flag(device, expected, capsys):
    code, _, errors = run_cli(["bench", "--device", device], capsys)
    assert code == 2 and errors == [expected]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_names_the_flag(capsys):
    code, _, errors = run_cli(["bench", "--device", "cuda"], capsys)
    assert code == 2 and errors == ["error: device 'cuda' asked for, but no CUDA GPU is available (--device) — "
                                    "use --device cpu (or auto)"]


def test_debug_works_anywhere_on_the_line(tmp_path, capsys):
    missing = tmp_path / "x.toml"
    for args in (["--debug", "train", "--config", str(missing)], ["train", "--config", str(missing), "--debug"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and "unrecognized" not in err
        assert err.strip().splitlines()[-1].startswith(f"error: config file not found ({missing})")
    assert main(["data", "check", "gta5", str(tmp_path / "nope"), "--debug"]) == 2  # a subcommand's too
    assert "Traceback" not in capsys.readouterr().err  # a bad folder is reported, not raised


def test_a_command_without_its_subcommand_prints_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("usage: pit") and "demo" in out.out and "pit demo --quick" in out.out and not out.err
    assert main(["data"]) == 0
    assert capsys.readouterr().out.startswith("usage: pit data")


def test_train_help_describes_the_presets(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    for preset in ("demo.toml", "gta5_to_cityscapes.toml", "synthia_to_cityscapes.toml"):
        assert preset in out
    assert "--debug" in out and "Train a segmenter" in out


def test_a_file_that_is_not_a_checkpoint_is_called_so(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes on the run\n")
    frame = tmp_path / "frame.png"
    save_png(frame, np.zeros((8, 8, 3), np.uint8))
    code, _, errors = run_cli(["predict", "--checkpoint", str(notes), str(frame), "--out", str(tmp_path / "o")],
                              capsys)
    assert code == 2 and errors == [f"error: not a PyTorch checkpoint ({notes}) — give a .pt file written by "
                                    "`pit train`, or its run directory"]
    from pit_engine.torch_files import read_weights
    with pytest.raises(UserError, match="not a PyTorch weights file"):  # model.weights, pit import
        read_weights(notes)


def test_an_output_folder_that_cannot_be_made_is_named(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "demo"  # a folder inside a file: it cannot be made
    for args in (["demo", "--quick", "--out", str(out)], ["data", "make-demo", "--out", str(out)]):
        code, _, errors = run_cli(args, capsys)
        assert code == 2 and errors == [f"error: cannot create the output folder: Not a directory ({out}) — "
                                        "choose a folder you can write to (--out)"]
