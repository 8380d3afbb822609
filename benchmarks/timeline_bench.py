"""The run timeline's cost (pit_engine/timeline.py): its size on disk for a paper-preset run, and
what recording adds to a demo training step, measured side by side.

    python benchmarks/timeline_bench.py size       [--realdata ../shared/realdata/cityscapes]
    python benchmarks/timeline_bench.py overhead   [--rounds 20]

size: a step of the GTA5 -> Cityscapes preset (16 health frames at its 1024x512 target size)
built from the real Cityscapes frame, 16 shifted and mirrored copies: its label as the student
and, moved a few pixels, as the teacher; the pseudo-labels that label minus a band around every
boundary and minus two classes the pivot calls absent, seeds its eroded core; and, as a worse
case, the demo PIT model's own maps of the frame at 1024x512 (a weak network's noisy maps
compress worse). The run: 120k iterations at health_every 2000, 61 steps (the last counts).

overhead: the demo preset's network and PIT on its batch of 4 + 4 demo-sized frames; each round
one training step and, beside it, one recording of the 16 health frames (the student's arg-max,
the snapshot, the compressed atomic write), alternated in one process so that the machine's load
falls on both alike. Reported per health step and per training step (the demo records every 50).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pit_engine.classes import IGNORE, labelids_to_trainids
from pit_engine.timeline import TimelineWriter, snapshot, step_files


def paper_frames(realdata: Path) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    label_path = next(realdata.rglob("*_gtFine_labelIds.png"))
    image_path = next(realdata.rglob(label_path.name.replace("gtFine_labelIds", "leftImg8bit")))
    label = labelids_to_trainids(np.asarray(Image.open(label_path).resize((1024, 512), Image.NEAREST)))
    image = np.asarray(Image.open(image_path).convert("RGB").resize((1024, 512), Image.BILINEAR))
    images, labels = [], []
    for i in range(16):  # 16 different frames as far as the compressor is concerned
        flip = (lambda a: a[:, ::-1]) if i % 2 else (lambda a: a)
        images.append(np.roll(flip(image), 37 * i, axis=1))
        labels.append(np.roll(flip(label), 37 * i, axis=1))
    return np.stack(images), np.stack(labels)


def label_like_step(labels: np.ndarray) -> dict:
    import cv2

    f, c = labels.shape[0], 19
    teacher = np.roll(labels, 3, axis=2)
    pseudo, seeds = labels.copy(), np.zeros(labels.shape, bool)
    for i in range(f):
        edges = cv2.dilate(cv2.Canny(labels[i], 0, 1), np.ones((9, 9), np.uint8)) > 0
        pseudo[i][edges] = IGNORE
        pseudo[i][np.isin(pseudo[i], (5, 12))] = IGNORE  # two classes the pivot calls absent
        seeds[i] = cv2.erode((pseudo[i] != IGNORE).astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    pivot = np.ones((f, c), np.int64)
    seen = {"teacher": torch.from_numpy(teacher), "pseudo": torch.from_numpy(pseudo.astype(np.int64)),
            "seeds": torch.from_numpy(seeds), "q": torch.rand(f, c), "pooled": torch.rand(f, c),
            "pivot": torch.from_numpy(pivot)}
    return snapshot(labels, seen, labels, c)


def model_step(images: np.ndarray, labels: np.ndarray) -> dict:
    """The demo PIT model's maps at 1024x512: its own prediction, teacher and pseudo-labels."""
    import torch.nn.functional as F

    from pit_engine.predict import Predictor
    from pit_resources import resource

    predictor = Predictor.from_checkpoint(resource("demo_pit.pt"))
    x = torch.stack([predictor.normalization.apply(im) for im in images])
    with torch.no_grad():
        out = predictor.model(x)
        seen = predictor.method.diagnose(x, out)
        student = F.interpolate(out.logits, size=x.shape[-2:], mode="bilinear").max(1).indices
    return snapshot(student.numpy(), seen, labels, 19)


def size(args) -> None:
    images, labels = paper_frames(Path(args.realdata))
    steps = 120000 // 2000 + 1
    with tempfile.TemporaryDirectory() as tmp:
        writer = TimelineWriter(tmp)
        writer.write_frames(images, labels, [f"frame{i}" for i in range(16)], [str(i) for i in range(19)])
        frames_bytes = (Path(tmp) / "timeline/frames.npz").stat().st_size
        for name, make in (("label-like maps", lambda: label_like_step(labels)),
                           ("the demo PIT model's maps", lambda: model_step(images, labels))):
            path = writer.write_step(1, make(), wait=True)
            step_bytes = path.stat().st_size
            total = frames_bytes + steps * step_bytes
            print(f"{name}: a step {step_bytes / 2**20:.2f} MiB, the frames {frames_bytes / 2**20:.2f} MiB; "
                  f"{steps} steps: {total / 2**20:.1f} MiB ({total / 1e6:.1f} MB); at the cap of "
                  f"{writer.max_steps} steps: {(frames_bytes + writer.max_steps * step_bytes) / 1e6:.1f} MB")
            path.unlink()
        assert not step_files(tmp)


def overhead(args) -> None:
    from pit_engine.config import Config
    from pit_engine.data.demo import make_demo
    from pit_engine.health import open_health_probe
    from pit_engine.train import Trainer
    from pit_resources import resource

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_demo(tmp / "demo", seed=0, n_source=8, n_train=16, n_val=2, n_test=2)
        config = Config.load(resource("demo.toml"))
        raw = config.to_dict()
        raw["data"].update(source_root=str(tmp / "demo/source"), target_root=str(tmp / "demo/target"), workers=0)
        raw["train"].update(device="cpu")
        config = Config.from_dict(raw, "bench")
        trainer = Trainer(config, tmp / "run", log=lambda *_: None)
        trainer.setup_model()
        trainer.iteration = config.train.warmup + config.method.pit.align_steps + 1  # D and E on
        probe = open_health_probe(config, trainer.normalization, "cpu", 19, print)
        writer = TimelineWriter(tmp / "run")
        g = torch.Generator().manual_seed(0)
        b = config.train.batch_size
        (sw, sh), (tw, th) = config.data.source_size, config.data.target_size
        source = {"image": torch.randn(b, 3, sh, sw, generator=g), "label": torch.randint(0, 19, (b, sh, sw), generator=g)}
        target = {"image": torch.randn(b, 3, th, tw, generator=g), "label": torch.randint(0, 19, (b, th, tw), generator=g)}
        steps, records, totals = [], [], []
        for r in range(args.rounds + 1):
            start = time.perf_counter()
            trainer.step(source, target)
            step_ms = 1000 * (time.perf_counter() - start)
            probe.measure(trainer.model, trainer.method)  # the health probe's own work, there without a timeline
            start = time.perf_counter()
            writer.write_step(r + 1, probe.mechanism())  # the training thread's part: the write is handed off
            record_ms = 1000 * (time.perf_counter() - start)
            writer.flush()  # the writer thread's part, timed on its own: on 2 loaded cores it competes too
            total_ms = 1000 * (time.perf_counter() - start)
            if r:  # the first round warms up
                steps.append(step_ms)
                records.append(record_ms)
                totals.append(total_ms)
        step, record, total = statistics.median(steps), statistics.median(records), statistics.median(totals)
        every = config.train.health_every
        print(f"demo step median {step:.1f} ms over {args.rounds} rounds ({probe.x.shape[0]} health frames); "
              f"recording on the training thread: median {record:.2f} ms = {record / step:.3f} of a step at a "
              f"health step, {record / step / every:.5f} of a step at health_every {every}; with the write "
              f"waited for: {total:.2f} ms = {total / step:.3f} of a step, {total / step / every:.5f} amortised")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("size", "overhead"))
    parser.add_argument("--realdata", default=str(Path(__file__).resolve().parents[1].parent / "shared/realdata"))
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    size(args) if args.what == "size" else overhead(args)
