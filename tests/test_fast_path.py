"""The training fast path on the CPU: mixed precision and channels_last track the fp32 NCHW
losses. (torch.compile and CUDA are checked by benchmarks/gpu_check.sh on a GPU.)"""
import pytest

from conftest import tiny_config
from pit_engine.errors import UserError
from pit_engine.events import Step
from pit_engine.train import Trainer


def _losses(demo, tmp_path, name, iterations=3, **train):
    steps = []
    config = tiny_config(demo, train={"iterations": iterations, **train}, method={"warmup": 1})
    finished = Trainer(config, tmp_path / name, log=lambda *_: None).run(
        lambda e: steps.append(e.losses) if isinstance(e, Step) else None)
    assert finished.reason == "done", finished.message
    return steps


def _worst(a, b):
    return max(abs(x[k] - y[k]) / max(abs(x[k]), 1e-3) for x, y in zip(a, b) for k in x)


@pytest.fixture(scope="module")
def fp32(tiny_demo, tmp_path_factory):
    return _losses(tiny_demo, tmp_path_factory.mktemp("fp32"), "run")


def test_channels_last_matches_fp32(fp32, tiny_demo, tmp_path):
    assert _worst(fp32, _losses(tiny_demo, tmp_path, "cl", channels_last=True)) < 1e-4


def test_bf16_tracks_fp32(fp32, tiny_demo, tmp_path):
    bf16 = _losses(tiny_demo, tmp_path, "bf16", amp="bf16", channels_last=True)
    assert _worst(fp32[:1], bf16[:1]) < 2e-2  # the same weights: bf16 rounding only
    assert _worst(fp32, bf16) < 5e-2  # three steps on: still the same run
    assert set(bf16[-1]) == set(fp32[-1])  # every loss term present (adaptation included)


def test_fp16_runs_with_loss_scaling(fp32, tiny_demo, tmp_path):
    fp16 = _losses(tiny_demo, tmp_path, "fp16", iterations=1, amp="fp16")
    assert _worst(fp32[:1], fp16) < 2e-2


def test_unknown_precision_is_refused(tiny_demo):
    with pytest.raises(UserError, match="train.amp"):
        tiny_config(tiny_demo, train={"amp": "fp8"})
