"""Real multi-process training: torchrun, two gloo processes on the CPU, DistributedDataParallel."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from pit_engine.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch built without gloo")


def _env(cwd) -> dict:
    """One thread per process, and a temporary folder of the test's own: torchrun leaves its
    torchelastic_* folders there, not in the machine's /tmp."""
    tmp = cwd / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp)}


def _run(args, cwd, timeout=300):
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=_env(cwd), capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _records(run, kind):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["kind"] == kind]


def _steps(run):
    return _records(run, "step")


def test_two_processes_match_one_on_the_same_global_batch(tiny_demo, tmp_path):
    # 1 process x batch 2 and 2 processes x batch 1 see the same global batch of draws; GWRP's
    # per-class supports come from the source shares of the whole global batch on every rank
    for name, batch in (("one", 2), ("two", 1)):
        tiny_config(tiny_demo, pit={"gwrp_per_class": True},
                    train={"batch_size": batch, "iterations": 4, "warmup": 1}).save(
            tmp_path / f"{name}.toml")
    _run(["-m", "pit_engine", "train", "--config", "one.toml", "--out", "run1"], tmp_path)
    before = set(Path(tempfile.gettempdir()).glob("torchelastic_*"))
    done = _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "pit_engine", "train",
                 "--config", "two.toml", "--out", "run2"], tmp_path)
    assert "(2 processes)" in done.stderr
    # torchrun's scratch folders stay in the test's own temporary folder
    assert list((tmp_path / "tmp").glob("torchelastic_*"))
    assert set(Path(tempfile.gettempdir()).glob("torchelastic_*")) == before
    one, two = _steps(tmp_path / "run1"), _steps(tmp_path / "run2")
    assert [r["iteration"] for r in two] == [1, 2, 3, 4]  # rank 0 alone logged, once per step
    for term in one[0]:
        if term not in ("kind", "time"):  # the wall clock differs, the numbers agree
            assert two[0][term] == pytest.approx(one[0][term], rel=1e-5), term
    # after one optimizer step the models still agree: the gradients were averaged across ranks
    assert two[1]["seg"] == pytest.approx(one[1]["seg"], rel=1e-4)
    # the final evaluation: each rank took half of the 4 val frames, and the counts were summed
    one_eval, two_eval = (_records(tmp_path / run, "eval")[-1] for run in ("run1", "run2"))
    assert one_eval["frames"] == two_eval["frames"] == 4
    assert two_eval["miou"]["mIoU19"] == pytest.approx(one_eval["miou"]["mIoU19"], abs=1e-3)
    run2 = tmp_path / "run2"
    assert sorted(p.name for p in (run2 / "checkpoints").iterdir()) == ["iter_0000004.pt"]
    shares_one, shares_two = (load_checkpoint(tmp_path / run)["source_shares"] for run in ("run1", "run2"))
    assert torch.allclose(shares_two, shares_one) and shares_one[0].sum() > 0
    assert (run2 / "events.log").read_text().count("started at iteration") == 1

    # resume the 2-process run in one process (another world size) and go on
    _run(["-m", "pit_engine", "train", "--resume", "run2", "--set", "train.iterations=6", "--set",
          "train.batch_size=2"], tmp_path)
    assert [r["iteration"] for r in _steps(run2)] == [1, 2, 3, 4, 5, 6]
    assert (run2 / "checkpoints" / "iter_0000006.pt").is_file()


def test_a_failing_rank_stops_the_run_with_one_line_each(tiny_demo, tmp_path):
    demo = tmp_path / "demo"
    shutil.copytree(tiny_demo, demo)
    broken = sorted((demo / "source" / "images").iterdir())[1]
    broken.write_bytes(broken.read_bytes()[:300])  # one rank draws it first and fails
    tiny_config(demo, train={"batch_size": 1, "iterations": 30, "warmup": 1}).save(tmp_path / "two.toml")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "--monitor-interval", "5", "-m", "pit_engine", "train", "--config", "two.toml",
                           "--out", "run"], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and time.monotonic() - start < 120  # no rank waits for the lost one
    ours = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert ours[0] == (f"error: cannot read image: image file is truncated ({broken}) — the file is corrupt or "
                       "truncated; restore it or remove it")
    assert ours[1].startswith("error: another process of this run stopped (seen by rank ")  # not "internal error"
    assert len(ours) == 2


def test_no_rank_evaluates_when_one_cannot_read_the_val_data(tiny_demo, tmp_path):
    # rank 1 cannot open the val split (a node without that disk, say): the ranks agree at the
    # start to skip the evaluation, whose final all-reduce would otherwise wait for rank 1 forever
    (tmp_path / "rank1_without_val.py").write_text(
        "import os, sys\n"
        "import pit_engine.data.datasets as datasets\n"
        "from pit_engine.cli import main\n"
        "from pit_engine.errors import UserError\n"
        "real = datasets.open_dataset\n"
        "def open_dataset(kind, root, split=None, *args):\n"
        "    if split == 'val' and os.environ['RANK'] == '1':\n"
        "        raise UserError('folder not found', root, 'mount it')\n"
        "    return real(kind, root, split, *args)\n"
        "datasets.open_dataset = open_dataset\n"
        "sys.exit(main(sys.argv[1:]))\n")
    tiny_config(tiny_demo, train={"batch_size": 1, "iterations": 2, "warmup": 1}).save(tmp_path / "two.toml")
    done = _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "rank1_without_val.py",
                 "train", "--config", "two.toml", "--out", "run"], tmp_path, timeout=120)
    assert "no evaluation: the val data is not readable by every process of this run" in done.stdout + done.stderr
    assert _records(tmp_path / "run", "eval") == [] and len(_records(tmp_path / "run", "step")) == 2
