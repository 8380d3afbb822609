"""Injected faults: a full disk, a refused write, CUDA out of memory, a NaN loss, a checkpoint
that would run code. Each ends in one line, and nothing written before is lost."""
import errno
import pickle
import subprocess
import sys

import pytest
import torch

from conftest import tiny_config
from pit_engine import pit_ops as M
from pit_engine.checkpoint import load_checkpoint
from pit_engine.cli import main
from pit_engine.errors import UserError
from pit_gui.main_window import demo_inputs
from pit_engine.train import Trainer


def _run(demo, run_dir, **train):
    config = tiny_config(demo, train={"iterations": 6, "checkpoint_every": 1, **train})
    return Trainer(config, run_dir, log=lambda *_: None).run()


def _fail_after(monkeypatch, target, name, calls_ok, exc):
    real = getattr(target, name)
    count = {"n": 0}

    def flaky(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls_ok:
            raise exc
        return real(*args, **kwargs)
    monkeypatch.setattr(target, name, flaky)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_checkpoint_write_fails_keeps_the_previous(tiny_demo, tmp_path, monkeypatch, code):
    # torch.save is the checkpoint's writer: the disk fills up (or refuses) at the third checkpoint
    _fail_after(monkeypatch, torch, "save", 2, OSError(code, "simulated"))
    finished = _run(tiny_demo, tmp_path / "run")
    assert finished.reason == "failed" and finished.message.startswith("error: cannot write file")
    assert "\n" not in finished.message and not finished.traceback
    ckpts = sorted((tmp_path / "run" / "checkpoints").iterdir())
    assert [p.name for p in ckpts] == ["iter_0000001.pt", "iter_0000002.pt"]  # no temporary file left
    assert load_checkpoint(ckpts[-1])["iteration"] == 2


def test_export_write_fails_with_one_line(tmp_path, monkeypatch, capsys):
    from PIL import Image
    _fail_after(monkeypatch, Image.Image, "save", 1, OSError(errno.ENOSPC, "No space left on device"))
    a, b, frames = demo_inputs()
    assert main(["export", "--checkpoint", str(a), str(frames), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot write file: No space left on device")
    assert len(list((tmp_path / "out").glob("*.png"))) == 1  # what was written before stays, whole
    assert not list((tmp_path / "out").glob(".*"))


def test_cuda_out_of_memory_is_one_line_with_the_options(tiny_demo, tmp_path, monkeypatch):
    def oom(self, source, target=None):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB. GPU 0 has 79 GiB ...")
    monkeypatch.setattr(Trainer, "step", oom)
    finished = _run(tiny_demo, tmp_path / "run")
    assert finished.reason == "failed" and not finished.traceback
    assert finished.message == ("error: out of GPU memory allocating 1.50 GiB (iteration 1) — use a smaller data.crop "
                                "or data.*_size, train.amp = \"bf16\", or a smaller train.batch_size")


def test_nan_loss_stops_naming_term_and_iteration(tiny_demo, tmp_path, monkeypatch):
    real = M.image_level_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        value = real(*args, **kwargs)
        return value * float("nan") if calls["n"] >= 3 else value  # from the third step on
    monkeypatch.setattr(M, "image_level_loss", poisoned)
    finished = _run(tiny_demo, tmp_path / "run", log_every=1)
    assert finished.reason == "failed"
    assert finished.message.startswith("error: loss 'img_src' is not finite at iteration 3")
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("iter_*.pt"))
    assert ckpts[-1].name == "iter_0000002.pt"  # the last good step's checkpoint; nothing after it
    assert all(torch.isfinite(v.float()).all() for v in load_checkpoint(ckpts[-1])["model"].values())


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (subprocess.call, ([sys.executable, "-c", f"open({str(marker)!r}, 'w')"],))
    evil = tmp_path / "evil.pt"
    torch.save({"format": 1, "model": Payload()}, evil, pickle_protocol=2)
    with pytest.raises(UserError, match="refused by the weights-only loader"):
        load_checkpoint(evil)
    assert main(["eval", "--checkpoint", str(evil), "--data", f"cityscapes:{tmp_path}"]) == 2
    assert not marker.exists()
    with open(tmp_path / "plain.pkl", "wb") as f:  # a plain pickle under a .pt name
        pickle.dump(Payload(), f)
    with pytest.raises(UserError):
        load_checkpoint(tmp_path / "plain.pkl")
    assert not marker.exists()


def test_export_stays_inside_its_folder_and_never_overwrites(tmp_path, capsys):
    a, b, frames = demo_inputs()
    out = tmp_path / "out"
    # two inputs with one stem in different folders, and a folder that looks like a path trick
    for sub in ("x", "..y"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        src = next((frames / "democity").iterdir())
        (tmp_path / "in" / sub / "frame.png").write_bytes(src.read_bytes())
    assert main(["export", "--checkpoint", str(a), str(tmp_path / "in"), "--out", str(out)]) == 0
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file() and "in" not in p.parts}
    assert all(p.parts[0] == "out" for p in written)
    before = {p: p.read_bytes() for p in out.iterdir()}
    assert main(["export", "--checkpoint", str(b), str(tmp_path / "in"), "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.iterdir()} == before
