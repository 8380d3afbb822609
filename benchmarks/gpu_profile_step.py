"""On a CUDA GPU: where the PIT step's time goes, and which precision/layout settings pay.

    python benchmarks/gpu_profile_step.py [cuda|cpu] [--backbone B]

1. the PIT step (paper sizes on a GPU, / 4 on a CPU) under several train settings, alternating
   rounds in one process: median ms and allocator peak per setting;
2. torch.profiler over a few steps of the default fast setting: the top operators by device
   time, and how much of the step's wall time the device was busy.
"""
import argparse
import statistics
import tempfile

import torch

from pit_engine import bench as B
from pit_engine.train import resolve_device

SETTINGS = {
    "bf16+channels_last": {"amp": "bf16", "channels_last": True},
    "bf16": {"amp": "bf16", "channels_last": False},
    "fp32 (tf32 convs)": {"amp": "off", "channels_last": False},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("device", nargs="?", default="cuda")
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device)
    scale = 1 if device.type == "cuda" else B.CPU_SCALE
    source = (B.SOURCE[0] // scale, B.SOURCE[1] // scale)
    target = (B.TARGET[0] // scale, B.TARGET[1] // scale)
    g = torch.Generator().manual_seed(0)
    src, tgt = B.random_batch(source, device, g), B.random_batch(target, device, g, labelled=False)
    scratch = tempfile.mkdtemp(prefix="pit-profile-")
    trainers = {}
    for name, settings in SETTINGS.items():
        t = B.pit_trainer(args.backbone, device, source, target, False, scratch, settings)
        for _ in range(2):  # warm-up: cuDNN's algorithm search
            t.step(src, tgt)
        trainers[name] = t
    times = {name: [] for name in trainers}
    peak = {name: 0.0 for name in trainers}
    for _ in range(args.rounds):
        for name, t in trainers.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            times[name] += [B.timed(lambda: t.step(src, tgt), device) for _ in range(3)]
            if device.type == "cuda":
                peak[name] = max(peak[name], torch.cuda.max_memory_allocated(device) / 2 ** 20)
    print(f"PIT step on {B.describe(device)}, {args.backbone}, source {source}, target {target}")
    for name in trainers:
        print(f"  {name:22} median {statistics.median(times[name]):8.1f} ms  min {min(times[name]):8.1f}"
              f"  peak {peak[name]:8.0f} MiB")

    t = trainers["bf16+channels_last" if device.type == "cuda" else "fp32 (tf32 convs)"]
    print(B.profile_step(lambda: t.step(src, tgt), device, steps=5))


if __name__ == "__main__":
    main()
