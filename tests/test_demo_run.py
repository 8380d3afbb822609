"""`pit demo` end to end, shrunk to a few frames and iterations."""
import json

import pytest

from pit_engine import demo
from pit_engine.cli import main


@pytest.fixture
def tiny_quick(monkeypatch):
    monkeypatch.setattr(demo, "QUICK", {"frames": (6, 6, 3, 3), "iterations": 4, "warmup": 2})
    original = demo.demo_config

    def small(*args, **kwargs):
        config = original(*args, **kwargs)
        config.data.source_size, config.data.target_size, config.eval.size = [64, 36], [64, 32], [64, 32]
        config.data.workers = 0
        return config

    monkeypatch.setattr(demo, "demo_config", small)


def test_demo_writes_the_report(tiny_quick, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert len(report["classes"]) == 19 and report["device"] == "cpu" and report["wall_s"] > 0
    for row in ("source_only", "pit"):
        assert 0 <= report[row]["miou"] <= 1 and set(report[row]["per_class"]) == set(report["classes"])
    assert report["gain"] == pytest.approx(report["pit"]["miou"] - report["source_only"]["miou"])
    assert (out / "data/source/images").is_dir() and (out / "source_only/checkpoints").is_dir()
    index = json.loads((out / "overlays/index.json").read_text())
    assert len(index["frames"]) == 3 and all((out / "overlays" / f["compare"]).is_file() for f in index["frames"])
    assert "| PIT: + D + E |" in (out / "report.md").read_text()
    assert "Gain of PIT over source only" in capsys.readouterr().out
    # scored on the held-out test split; the pivot's quality is that of q, and of the refreshed vector
    assert report["split"] == "test" and report["data_seed"] == 0
    assert report["pit"]["mean_pivot_recall"] is not None and report["pit"]["refreshed_recall"]
    assert report["source_only"]["mean_pivot_recall"] is None
    assert "Pivot quality" in (out / "report.md").read_text()


def test_the_report_says_what_was_run_and_agrees_with_itself(tiny_quick, tmp_path):
    import re

    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--device", "cpu"]) == 0
    text = (out / "report.md").read_text()
    # what was run: the frames and their sizes, the backbone, the iterations, where the runs and overlays are
    assert "source (GTA5 layout) 6 frames at 160×88" in text and "test 3 frames at 128×64" in text
    assert "the `small` backbone, 4 iterations (the first 2 on the source alone)" in text
    assert f"`{out / 'source_only'}`" in text and f"`{out / 'pit'}`" in text and f"`{out / 'overlays'}`" in text
    # each row explained
    assert "- **source only**: trained on the labelled source alone" in text
    assert "- **PIT: + D + E**: PIT as built: the pivot with both expansions" in text
    # one seed: no spread, no std
    assert "±" not in text and "std" not in text
    # the gain is the difference of the numbers the table prints
    printed = {m[1]: float(m[2]) for m in re.finditer(r"^\| (source only|PIT: \+ D \+ E) \| ([\d.]+) \|",
                                                   text.split("## Results")[1].split("## Pivot")[0], re.M)}
    gain = float(re.search(r"Gain of PIT over source only: ([+-][\d.]+)", text)[1])
    assert gain == pytest.approx(printed["PIT: + D + E"] - printed["source only"], abs=1e-9)
    assert "| PIT: + D + E | " in text.split("## Pivot quality")[1]  # precision and recall in report.md too


def test_another_generator_seed_draws_another_pair(tiny_quick, tmp_path):
    said = []
    demo.ensure_data(tmp_path / "data", True, said.append, 0)
    first = (tmp_path / "data/source/images/00000.png").read_bytes()
    demo.ensure_data(tmp_path / "data", True, said.append, 0)
    assert "using the demo pair" in said[-1]  # the same draw is kept
    demo.ensure_data(tmp_path / "data", True, said.append, 11)
    assert "generating" in said[-1] and (tmp_path / "data/generator_seed.txt").read_text().strip() == "11"
    assert (tmp_path / "data/source/images/00000.png").read_bytes() != first


def test_ablation_and_seeds_give_every_row_a_mean_and_spread(tiny_quick, tmp_path):
    report = demo.run_demo(tmp_path / "abl", quick=True, device="cpu", seeds=(0, 1), ablation=True,
                           say=lambda text: None)
    assert set(demo.ABLATION_ROWS) <= set(report)
    for row in demo.ABLATION_ROWS:
        assert len(report[row]["miou_per_seed"]) == 2 and report[row]["miou_std"] >= 0
    assert len(report["gain_per_seed"]) == 2
    text = demo.report_markdown(report)
    assert "mIoU (mean ± std over seeds)" in text and "std over seeds" in text  # two seeds: a spread
    assert "- **PIT: + D (image-level expansion)**: PIT with the pivot" in text
