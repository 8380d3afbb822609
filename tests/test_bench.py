"""`pit bench` runs end to end on the CPU and reports what it promises (timings are not asserted)."""
import json
import math

from conftest import REPO
from pit_engine.bench import table
from pit_engine.cli import main

KEYS = ("device", "reference_step_ms", "pit_step_ms", "speedup", "peak_mem_mb", "gwrp_sort_ms", "gwrp_topk_ms",
        "infer_fps", "overlay_ms")


def test_bench_writes_every_key(tmp_path, capsys):
    out, profile = tmp_path / "bench.json", tmp_path / "profile.txt"
    assert main(["bench", "--device", "cpu", "--backbone", "small", "--rounds", "1", "--steps", "1",
                 "--json", str(out), "--profile", str(profile)]) == 0
    result = json.loads(out.read_text())
    assert all(key in result for key in KEYS)
    assert result["scale"] == 4 and result["source_size"] == [320, 180] and result["target_size"] == [256, 128]
    assert set(result["infer_fps"]) == {"512x256", "256x128"}
    assert result["gwrp_loss_diff"] < 1e-3  # top-k GWRP gives the full sort's loss
    assert result["speedup"] > 0 and result["reference_step_ms"]["n"] == 1
    assert set(result["regions_ms"]) == {"opencv", "torch"} and result["regions_equal"] is True
    assert result["pit_step_ms"]["times"] == [result["pit_step_ms"]["median"]]
    losses = result["pit_losses"]  # the random weights stay put (rate 0): still finite after the timed steps
    assert all(math.isfinite(v) for v in losses.values()) and {"pix", "img_tgt", "align"} <= set(losses)
    assert profile.read_text().startswith("PIT step, 3 steps under the profiler") and "profile" not in result
    assert "aten::convolution_backward" in profile.read_text()
    assert "speedup (reference / PIT)" in capsys.readouterr().out
    assert "infer_fps_fp32" not in result  # the fast settings are fp32 NCHW on a CPU: nothing to compare
    result["infer_fps_fp32"] = result["infer_fps"]  # as on a GPU
    assert "inference 256x128 x8, fp32 NCHW" in table(result) and ", fp32 NCHW 512x256 " in table(result)


def test_bench_refuses_bad_arguments(capsys):
    assert main(["bench", "--backbone", "vgg"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown backbone 'vgg'")


def test_the_tensor_memory_count_sees_views_once_and_frees():
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("step_memory", REPO / "benchmarks" / "step_memory.py")
    step_memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(step_memory)
    mib = 2 ** 20
    kept = torch.ones(mib, dtype=torch.uint8)
    with step_memory.TensorMemory(kept) as memory:
        a = torch.empty(mib, dtype=torch.uint8)
        view = a[10:].view(-1)  # the same storage
        b = torch.zeros(2 * mib, dtype=torch.uint8)
        del b
        c = kept * 2
    assert memory.peak == 4 * mib  # kept + a + b
    assert memory.live == 3 * mib  # kept + a + c: b was freed, the view added nothing
    assert view.numel() == mib - 10 and c.sum() == 2 * mib
