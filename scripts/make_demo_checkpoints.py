"""Regenerate the shipped demo checkpoints and frames in resources/ (CPU minutes):

    python scripts/make_demo_checkpoints.py [--from DEMO_OUT]

Runs `pit demo` (seed 0) into build/demo unless --from names a finished demo folder, then
writes fp16 model-only copies of its source-only and PIT checkpoints, and a few demo target
val frames with their labels in the Cityscapes layout.
"""
import argparse
import shutil
from pathlib import Path

from pit_engine.checkpoint import slim_checkpoint
from pit_engine.demo import run_demo

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
FRAMES = 8


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--from", dest="source", help="a finished `pit demo` output folder")
    args = parser.parse_args()
    demo = Path(args.source) if args.source else Path("build/demo")
    if not args.source:
        run_demo(demo)
    runs = {"source_only": demo / "source_only", "pit": demo / "pit"}
    for row, run in runs.items():
        if not run.is_dir():
            run = demo / f"{row}_seed0"
        slim_checkpoint(run, RESOURCES / f"demo_{row}.pt", name={"source_only": "source-only", "pit": "PIT"}[row])
    frames = RESOURCES / "demo_frames"
    shutil.rmtree(frames, ignore_errors=True)
    for sub, suffix in (("leftImg8bit", "_leftImg8bit.png"), ("gtFine", "_gtFine_labelIds.png")):
        src = sorted((demo / "data/target" / sub / "val/democity").glob(f"*{suffix}"))[:FRAMES]
        for f in src:
            dst = frames / sub / "val/democity" / f.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst)
    print(f"wrote {', '.join(f'demo_{r}.pt' for r in runs)} and {FRAMES} frames to {RESOURCES}")


if __name__ == "__main__":
    main()
