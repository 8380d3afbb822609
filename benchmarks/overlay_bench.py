"""Overlay render time at 2048x1024 (run by hand: `python benchmarks/overlay_bench.py`).

Times the class-colour blend (with and without boundaries), the legend and the heat map on a
random full-size Cityscapes-shaped frame; prints the median and spread of repeated runs.
"""
import statistics
import time

import numpy as np

from pit_engine import overlay


def timed(fn, repeats=30):
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), min(samples), max(samples)


def reference_blend(image, classes, alpha):
    """The straightforward numpy float blend, kept as the baseline the ratio is against."""
    from pit_engine.classes import CITYSCAPES_COLOURS

    out = image.copy()
    mask = classes < 19
    out[mask] = (image[mask] * (1 - alpha) + CITYSCAPES_COLOURS[classes[mask]] * alpha).round().astype(np.uint8)
    return out


def main():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (1024, 2048, 3), dtype=np.uint8)
    classes = rng.integers(0, 19, (64, 128), dtype=np.uint8).repeat(16, 0).repeat(16, 1)  # blocky, like a class map
    classes[:40] = 255
    cam = rng.random((1024, 2048), dtype=np.float32)
    cases = {
        "reference float blend": lambda: reference_blend(image, classes, 0.5),
        "blend alpha 0.5": lambda: overlay.blend(image, classes, 0.5),
        "blend + boundaries": lambda: overlay.blend(image, classes, 0.5, True),
        "blend + boundaries + legend": lambda: overlay.with_legend(overlay.blend(image, classes, 0.5, True), classes),
        "heat map": lambda: overlay.heat(image, cam, 0.5),
    }
    print("overlay at 2048x1024, ms: median (min..max) over 30 runs")
    for name, fn in cases.items():
        med, lo, hi = timed(fn)
        print(f"  {name:<30} {med:7.1f}  ({lo:.1f}..{hi:.1f})")


if __name__ == "__main__":
    main()
