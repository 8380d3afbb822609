"""The training fast path on the CPU: mixed precision and channels_last track the fp32 NCHW
losses. (torch.compile and CUDA are checked by benchmarks/gpu_check.sh on a GPU.)"""
import os
import subprocess
import sys

import pytest
import torch

from conftest import tiny_config
from pit_engine.errors import UserError
from pit_engine.events import Step
from pit_engine.runtime import resolve_amp
from pit_engine.train import Trainer


def _losses(demo, tmp_path, name, iterations=3, **train):
    steps = []
    config = tiny_config(demo, train={"iterations": iterations, "warmup": 1, **train})
    finished = Trainer(config, tmp_path / name, log=lambda *_: None).run(
        lambda e: steps.append(e.losses) if isinstance(e, Step) else None)
    assert finished.reason == "done", finished.message
    return steps


def _worst(a, b, skip=()):
    return max(abs(x[k] - y[k]) / max(abs(x[k]), 1e-3) for x, y in zip(a, b) for k in x if k not in skip)


@pytest.fixture(scope="module")
def fp32(tiny_demo, tmp_path_factory):
    return _losses(tiny_demo, tmp_path_factory.mktemp("fp32"), "run")


def test_channels_last_matches_fp32(fp32, tiny_demo, tmp_path):
    assert _worst(fp32, _losses(tiny_demo, tmp_path, "cl", channels_last=True)) < 1e-4


def test_bf16_tracks_fp32(fp32, tiny_demo, tmp_path):
    bf16 = _losses(tiny_demo, tmp_path, "bf16", amp="bf16", channels_last=True)
    assert _worst(fp32[:1], bf16[:1]) < 2e-2  # the same weights: bf16 rounding only
    # three steps on: still the same run. The pseudo-labels are discrete (top-k seeds, region
    # growing), so bf16 rounding may flip a few of their pixels: `pix` tracks more loosely
    assert _worst(fp32, bf16, skip=("pix",)) < 5e-2
    assert all(abs(x["pix"] - y["pix"]) < 0.25 * abs(x["pix"]) for x, y in zip(fp32, bf16) if "pix" in x)
    assert set(bf16[-1]) == set(fp32[-1])  # every loss term present (adaptation included)


def test_fp16_runs_with_loss_scaling(fp32, tiny_demo, tmp_path):
    fp16 = _losses(tiny_demo, tmp_path, "fp16", iterations=1, amp="fp16")
    assert _worst(fp32[:1], fp16) < 2e-2


def test_unknown_precision_is_refused(tiny_demo):
    with pytest.raises(UserError, match="train.amp"):
        tiny_config(tiny_demo, train={"amp": "fp8"})


def test_auto_precision_is_fp32_on_the_cpu(fp32, tiny_demo, tmp_path):
    assert resolve_amp("auto", torch.device("cpu")) == "off" and resolve_amp("bf16", torch.device("cpu")) == "bf16"
    assert _worst(fp32, _losses(tiny_demo, tmp_path, "auto", amp="auto")) == 0


def test_a_failing_compiler_is_one_line(tiny_demo, tmp_path, monkeypatch):
    def no_compiler(module, **_):
        def forward(*args):
            raise torch._dynamo.exc.TorchDynamoException("\nInvalidCxxCompiler: No working C++ compiler found\nmore")
        return forward

    monkeypatch.setattr(torch, "compile", no_compiler)
    config = tiny_config(tiny_demo, train={"iterations": 2, "compile": True})
    finished = Trainer(config, tmp_path / "run", log=lambda *_: None).run()
    assert finished.reason == "failed" and not finished.traceback  # the environment, not a bug: exit 2
    assert finished.message == ("error: torch.compile failed: InvalidCxxCompiler: No working C++ compiler found "
                                "(train.compile) — set train.compile = false (slower, same results)")
    assert "Traceback" in (tmp_path / "run" / "events.log").read_text()  # the details stay in the run's log


@pytest.mark.parametrize("preset", [None, "chosen"])
def test_the_compile_cache_outlives_tmp_and_a_users_choice_is_kept(tmp_path, preset):
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    if preset:
        env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / preset)
    # importing torch (through torchvision) fills the variable with torch's /tmp default: the engine must come first
    code = ("import pit_engine.train, torch._inductor.runtime.cache_dir_utils as c, pit_engine; "
            "print(c.cache_dir()); print(pit_engine.compile_cache())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    expected = tmp_path / preset if preset else tmp_path / "xdg" / "pit-studio" / "torch-compile"
    assert out.split() == [str(expected)] * 2
