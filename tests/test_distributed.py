"""Real multi-process training: torchrun, two gloo processes on the CPU, DistributedDataParallel."""
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import tiny_config

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch built without gloo")


def _run(args, cwd, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _steps(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["kind"] == "step"]


def test_two_processes_match_one_on_the_same_global_batch(tiny_demo, tmp_path):
    # 1 process x batch 2 and 2 processes x batch 1 see the same global batch of draws
    for name, batch in (("one", 2), ("two", 1)):
        tiny_config(tiny_demo, train={"batch_size": batch, "iterations": 4},
                    method={"warmup": 1}).save(tmp_path / f"{name}.toml")
    _run(["-m", "pit_engine", "train", "--config", "one.toml", "--out", "run1"], tmp_path)
    done = _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "pit_engine", "train",
                 "--config", "two.toml", "--out", "run2"], tmp_path)
    assert "(2 processes)" in done.stderr
    one, two = _steps(tmp_path / "run1"), _steps(tmp_path / "run2")
    assert [r["iteration"] for r in two] == [1, 2, 3, 4]  # rank 0 alone logged, once per step
    for term in one[0]:
        if term != "kind":
            assert two[0][term] == pytest.approx(one[0][term], rel=1e-5), term
    # after one optimizer step the models still agree: the gradients were averaged across ranks
    assert two[1]["seg"] == pytest.approx(one[1]["seg"], rel=1e-4)
    run2 = tmp_path / "run2"
    assert sorted(p.name for p in (run2 / "checkpoints").iterdir()) == ["iter_0000004.pt"]
    assert (run2 / "events.log").read_text().count("started at iteration") == 1

    # resume the 2-process run in one process (another world size) and go on
    _run(["-m", "pit_engine", "train", "--resume", "run2", "--set", "train.iterations=6", "--set",
          "train.batch_size=2"], tmp_path)
    assert [r["iteration"] for r in _steps(run2)] == [1, 2, 3, 4, 5, 6]
    assert (run2 / "checkpoints" / "iter_0000006.pt").is_file()
