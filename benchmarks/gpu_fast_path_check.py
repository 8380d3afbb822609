"""On a CUDA GPU: the fast path's losses over the first iterations against the fp32 NCHW path.

    python benchmarks/gpu_fast_path_check.py [cuda|cpu]

Trains the small backbone for a few iterations on tiny demo frames, once per variant, from the
same seed, and prints each variant's worst relative loss difference to fp32. Exits 1 if a
variant leaves its tolerance (the first iteration: same weights, rounding only; later ones:
the runs may drift apart a little)."""
import sys
import tempfile
from pathlib import Path

import torch

from pit_engine.config import Config
from pit_engine.data.demo import make_demo
from pit_engine.events import Step
from pit_engine.train import Trainer

VARIANTS = {  # name: (train settings, tolerance at iteration 1, tolerance over all)
    "channels_last": ({"channels_last": True}, 1e-3, 2e-2),
    "bf16": ({"amp": "bf16"}, 3e-2, 1e-1),
    "bf16+channels_last": ({"amp": "bf16", "channels_last": True}, 3e-2, 1e-1),
    "fp16": ({"amp": "fp16"}, 3e-2, None),  # loss scaling skips the first steps: only iteration 1 compares
    "bf16+channels_last+compile": ({"amp": "bf16", "channels_last": True, "compile": True}, 3e-2, 1e-1),
}


def losses(root: Path, out: Path, device: str, **train) -> list[dict]:
    raw = Config.load(Path(__file__).resolve().parents[1] / "resources" / "demo.toml").to_dict()
    raw["data"].update(source_root=str(root / "source"), target_root=str(root / "target"), workers=0,
                       source_size=[128, 70], target_size=[128, 64])
    raw["train"].update(warmup=1)
    raw["train"].update(iterations=5, log_every=1, eval_every=0, checkpoint_every=0, device=device, **train)
    steps = []
    finished = Trainer(Config.from_dict(raw), out, log=lambda *_: None).run(
        lambda e: steps.append(e.losses) if isinstance(e, Step) else None)
    if finished.reason != "done":
        raise SystemExit(f"{train}: {finished.message}")
    return steps


def worst(a, b) -> float:
    return max(abs(x[k] - y[k]) / max(abs(x[k]), 1e-3) for x, y in zip(a, b) for k in x)


def main() -> int:
    device = sys.argv[1] if len(sys.argv) > 1 else "cuda"  # "cpu": a dry run of this script
    if device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU (gpu_fast_path_check.py) — run it on a machine with one", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="pit-gpu-check-"))
    make_demo(scratch / "demo", n_source=16, n_train=16, n_val=4)
    fp32 = losses(scratch / "demo", scratch / "fp32", device)
    failed = False
    where = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"fast path vs fp32 NCHW on {where}, 5 iterations, small backbone")
    for name, (train, tol_first, tol_all) in VARIANTS.items():
        got = losses(scratch / "demo", scratch / name.replace("+", "_"), device, **train)
        first, overall = worst(fp32[:1], got[:1]), worst(fp32, got)
        ok = first <= tol_first and (tol_all is None or overall <= tol_all)
        failed |= not ok
        print(f"  {name:28} iteration 1: {first:.1e} (tol {tol_first:.0e})  all: {overall:.1e}"
              + (f" (tol {tol_all:.0e})" if tol_all else " (not compared)") + ("" if ok else "  FAILED"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
