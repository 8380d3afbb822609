"""A real `pit train` killed with SIGKILL at random moments, once during a checkpoint write:
every checkpoint left behind loads, `--resume` goes on, and the finished run logged exactly
what an uninterrupted run logs."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import tiny_config
from pit_engine.checkpoint import load_checkpoint

ITERATIONS = 150


def _start(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "pit_engine", "train", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _steps(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["kind"] == "step"]


def _kill_during_write(proc, checkpoints: Path, timeout=60) -> bool:
    """SIGKILL as soon as a checkpoint's temporary file shows up (True if one was caught)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if checkpoints.is_dir() and any(e.name.startswith(".iter_") for e in os.scandir(checkpoints)):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.0005)
    proc.kill()
    proc.wait()
    return False


def test_sigkill_at_random_moments_then_resume(tiny_demo, tmp_path):
    tiny_config(tiny_demo, train={"iterations": ITERATIONS, "checkpoint_every": 1, "keep_checkpoints": 2,
                                        "warmup": 3}).save(tmp_path / "config.toml")
    reference = tmp_path / "reference"
    _, err = (proc := _start(["--config", "config.toml", "--out", str(reference)], tmp_path)).communicate(timeout=300)
    assert proc.returncode == 0, err  # the same thread count as the killed runs: the same float sums

    run, rng = tmp_path / "run", random.Random(7)
    caught = False

    def launch():
        if any((run / "checkpoints").glob("iter_*.pt")):
            return _start(["--resume", str(run)], tmp_path)
        if run.exists():  # killed before its first checkpoint: nothing to resume, start again
            shutil.rmtree(run)
        return _start(["--config", "config.toml", "--out", str(run)], tmp_path)

    for attempt in range(5):
        proc = launch()
        if attempt == 1:
            caught = _kill_during_write(proc, run / "checkpoints")
        else:
            time.sleep(rng.uniform(4.0, 7.0))  # imports take ~3 s; then some steps
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        for ckpt in (run / "checkpoints").glob("iter_*.pt"):
            load_checkpoint(ckpt)  # every checkpoint a crash left behind is whole
    proc = launch()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert caught, "no kill landed inside a checkpoint write"
    assert not list((run / "checkpoints").glob(".iter_*"))  # no temporary file left behind
    got, want = _steps(run), _steps(reference)
    assert [r["iteration"] for r in got] == list(range(1, ITERATIONS + 1))
    for g, w in zip(got, want):
        for term in w:
            if term != "kind":
                assert g[term] == pytest.approx(w[term], rel=1e-5), (g["iteration"], term)
