"""scripts/pivot_probe.py: the diagnosis the README's pivot findings cite."""
import importlib.util
import math
import subprocess
import sys

import torch

from conftest import REPO, tiny_config
from pit_engine.classes import CITYSCAPES_CLASSES
from pit_engine.train import Trainer

SCRIPT = REPO / "scripts" / "pivot_probe.py"


def _probe():
    spec = importlib.util.spec_from_file_location("pivot_probe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_auc_is_half_for_a_constant_score_and_follows_the_ranking():
    mean_auc = _probe().mean_auc
    present = torch.tensor([[1, 1, 0], [1, 0, 1], [0, 1, 1], [0, 0, 1]]).float()  # every class varies
    ranked = torch.tensor([[4.0, 1.0, 0.0], [3.0, 2.0, 0.0], [2.0, 3.0, 0.0], [1.0, 4.0, 0.0]])
    # class 0 ranked right (1); class 1 right in 1 of its 4 (present, absent) pairs; class 2 constant
    assert abs(mean_auc(ranked, present) - (1 + 0.25 + 0.5) / 3) < 1e-6
    assert mean_auc(torch.zeros(4, 3), present) == 0.5
    assert mean_auc(-ranked[:, :1], present[:, :1]) == 0.0
    assert math.isnan(mean_auc(ranked, torch.ones(4, 3)))  # no class varies: nothing to rank
    # per class, None where a class is in every frame or in none
    assert _probe().class_aucs(ranked, torch.cat([present[:, :2], torch.ones(4, 1)], 1)) == [1.0, 0.25, None]


def test_the_probe_reads_a_pit_checkpoint_and_prints_its_table(tiny_demo, tmp_path):
    Trainer(tiny_config(tiny_demo), tmp_path / "run", log=lambda *_: None).run()
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "run"), "--frames", "6"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    table, per_class = result.stdout.split("The checkpoint's pivot q per class, on the target val frames")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    names = [r.split(" | ")[0][2:] for r in rows[1:]]
    assert names[:8] == ["class priors", "the checkpoint's pivot, q (read from the head)",
                     "segmenter, max-pooled probabilities", "segmenter, max-pooled, calibrated per class on source",
                     "segmenter, GWRP-pooled (15 % support)", "logistic head on the segmenter's pooled output",
                     "linear head fitted, average pooling", "linear head fitted, max pooling"]
    assert [n.split(" (")[0] for n in names[8:]] == [  # fitted again with the target's train frames
        "linear head fitted, average pooling, + target pseudo-presence",
        "linear head fitted, max pooling, + target pseudo-presence"]
    assert rows[1].split(" | ")[1:3] == ["0.500", "0.500"]  # the priors: a constant score
    for row in rows[1:]:
        assert all(0 <= float(x) <= 1 for x in row.strip(" |").split(" | ")[1:3])
        assert all(x == "nan" or 0 <= float(x) <= 100 for x in row.strip(" |").split(" | ")[5:7])  # precision, recall
    assert "6 source frames (4 fitted, 2 held out), 4 target val frames" in result.stdout
    # then which classes the checkpoint's pivot reads: a row per class, "–" where nothing to rank
    class_rows = [line.strip(" |").split(" | ") for line in per_class.splitlines()
                  if line.startswith("| ") and "---" not in line]
    assert class_rows[0] == ["class", "frames holding it (of 4)", "AUC", "precision (%)", "recall (%)"]
    assert [r[0] for r in class_rows[1:]] == list(CITYSCAPES_CLASSES)
    for name, count, auc, precision, recall in class_rows[1:]:
        assert 0 <= int(count) <= 4
        assert (auc == "–") == (count in ("0", "4")) and (auc == "–" or 0 <= float(auc) <= 1)
        assert (recall == "–") == (count == "0")


def test_a_missing_checkpoint_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nope")], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: checkpoint not found ({tmp_path / 'nope'}) — "
                                                  "give a .pt file or a run directory"]


def test_too_few_frames_is_one_line_not_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--frames", "2"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("error: --frames must be 6 or more (4 to fit, 2 held out "
                                                           "at least)")
