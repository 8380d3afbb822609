"""The logged losses of 5 iterations, pinned: a refactor must not change them.

Re-recorded (python tests/test_pinned_losses.py) when PIT's behaviour changed on purpose: D pools
the output map with a support fraction, stage 2 aligns before D and E, the teacher is a mean
teacher by default. Before that the file pinned the flat `[method]` table of earlier versions;
that table's conversion has its own tests in test_config.py."""
import json
import sys
from pathlib import Path

import pytest

from pit_engine.config import Config
from pit_engine.events import Step
from pit_engine.train import Trainer

PINNED_FILE = Path(__file__).parent / "data/pinned_losses.json"
CASES = {
    "source_only": ("source_only", {}),
    "pit": ("pit", {"align_steps": 1}),
    "pit_f_snapshot_per_class": ("pit", {"output_adv": True, "disc_width": 8, "teacher": "snapshot",
                                         "refresh_every": 2, "seed_ratio": 0.2, "gwrp_per_class": True,
                                         "confidence_weighted": True}),
}


def run_case(case: str, demo: Path, run_dir: Path) -> list[dict]:
    name, settings = CASES[case]
    raw = {
        "data": {"source_root": str(demo / "source"), "target_root": str(demo / "target"),
                 "source_size": [64, 36], "target_size": [64, 32], "workers": 0},
        "model": {"backbone": "small"},
        "method": {"name": name, "pit": settings},
        "train": {"iterations": 5, "batch_size": 2, "lr": 0.01, "head_lr_mult": 1.0, "device": "cpu",
                  "log_every": 1, "eval_every": 0, "checkpoint_every": 0, "warmup": 2},
        "eval": {"size": [64, 32]},
    }
    steps = []
    finished = Trainer(Config.from_dict(raw, "test"), run_dir, log=lambda *_: None).run(
        lambda e: steps.append(e.losses) if isinstance(e, Step) else None)
    assert finished.reason == "done", finished.message
    return steps


@pytest.mark.parametrize("case", list(CASES))
def test_five_iterations_log_the_pinned_losses(case, tiny_demo, tmp_path):
    pinned = json.loads(PINNED_FILE.read_text())
    steps = run_case(case, tiny_demo, tmp_path / "run")
    assert len(steps) == 5
    for got, want in zip(steps, pinned[case]):
        assert set(got) == set(want)
        for term in want:  # a refactor that keeps the arithmetic keeps the floats
            assert got[term] == pytest.approx(want[term], rel=1e-5, abs=1e-8), term


if __name__ == "__main__":  # re-record, on the tiny demo pair the tests use
    import tempfile

    from pit_engine.data.demo import make_demo

    with tempfile.TemporaryDirectory() as tmp:
        make_demo(Path(tmp) / "demo", seed=0, n_source=8, n_train=8, n_val=4, n_test=4)
        PINNED_FILE.write_text(json.dumps({c: run_case(c, Path(tmp) / "demo", Path(tmp) / c) for c in CASES}, indent=1))
    print(f"wrote {PINNED_FILE}", file=sys.stderr)
