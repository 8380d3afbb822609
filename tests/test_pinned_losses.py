"""The logged losses of 5 iterations, pinned: moving a method between modules must not change them.

The configs are written in the flat `[method]` table of before the method registry, which still
loads (with a note), so this file did not change when the methods moved."""
import json
from pathlib import Path

import pytest

from pit_engine.config import Config
from pit_engine.events import Step
from pit_engine.train import Trainer

PINNED = json.loads((Path(__file__).parent / "data/pinned_losses.json").read_text())
CASES = {
    "source_only": {"pivot": False, "align": False, "image_level": False, "pixel_level": False},
    "pit": {"warmup": 2},
    "pit_f_teacher": {"warmup": 2, "output_adv": True, "disc_width": 8, "refresh_every": 2, "seed_ratio": 0.2},
}


@pytest.mark.parametrize("case", list(CASES))
def test_five_iterations_log_the_pinned_losses(case, tiny_demo, tmp_path):
    raw = {
        "data": {"source_root": str(tiny_demo / "source"), "target_root": str(tiny_demo / "target"),
                 "source_size": [64, 36], "target_size": [64, 32], "workers": 0},
        "model": {"backbone": "small"},
        "method": {"gwrp_decay": 0.99, "warmup": 2, **CASES[case]},
        "train": {"iterations": 5, "batch_size": 2, "lr": 0.01, "head_lr_mult": 1.0, "device": "cpu",
                  "log_every": 1, "eval_every": 0, "checkpoint_every": 0},
        "eval": {"size": [64, 32]},
    }
    steps = []
    finished = Trainer(Config.from_dict(raw, "test"), tmp_path / "run", log=lambda *_: None).run(
        lambda e: steps.append(e.losses) if isinstance(e, Step) else None)
    assert finished.reason == "done", finished.message
    assert len(steps) == 5
    for got, want in zip(steps, PINNED[case]):
        assert set(got) == set(want)
        for term in want:  # a refactor that keeps the arithmetic keeps the floats
            assert got[term] == pytest.approx(want[term], rel=1e-5, abs=1e-8), term
