"""`pit bench`: our PIT training step against the reference step users would otherwise run, and
inference, overlay and GWRP costs, measured side by side in one process.

The reference is an AdaptSegNet/ADVENT-style step written here on purpose: DeepLabV2 in fp32 and
NCHW, segmentation loss on the source (main + auxiliary head), output-space adversarial losses on
the target at both levels, then the two discriminators on detached outputs. Our step is the
Trainer's own `step` in its default fast configuration for the device, with all PIT components.
Both run alternately on the same backbone and frame sizes: the paper's on a GPU, scaled down by
CPU_SCALE on a CPU (where the same networks at full size would take minutes per step).

Both learn at rate 0: the optimizers do all their arithmetic but the random weights stay put, so
every timed step does the same work. At the paper's rate the random networks diverge within
two steps, and NaN probabilities would leave region growing nothing to grow.
"""
from __future__ import annotations

import contextlib
import math
import platform
import resource
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pit_engine import pit_ops as M
from pit_engine import overlay
from pit_engine.classes import IGNORE, LABELID_TO_TRAINID_LUT, NUM_CLASSES
from pit_engine.config import Config
from pit_engine.models import DeepLabV2, OutputDiscriminator
from pit_engine.runtime import resolve_amp, resolve_device
from pit_engine.train import Trainer
from pit_resources import resource as shipped

CPU_SCALE = 4
SOURCE, TARGET = (1280, 720), (1024, 512)  # (width, height), the paper's training sizes
INFER = ((2048, 1024, 1), (1024, 512, 8))  # (width, height, batch)
OVERLAY = (2048, 1024)


@dataclass
class Timing:
    times_ms: list

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    def summary(self) -> dict:
        return {"median": round(self.median, 2), "min": round(min(self.times_ms), 2),
                "max": round(max(self.times_ms), 2), "n": len(self.times_ms),
                "times": [round(t, 2) for t in self.times_ms]}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return 1000 * (time.perf_counter() - start)


def _up(x, like):
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class ReferenceStep:
    """The AdaptSegNet-style step in fp32 NCHW, as the public code bases run it."""

    def __init__(self, backbone: str, device, lr: float = 0.0):
        self.model = DeepLabV2(backbone, NUM_CLASSES, (6, 12, 18, 24), aux=True).to(device).train()
        self.d_main = OutputDiscriminator(NUM_CLASSES).to(device)
        self.d_aux = OutputDiscriminator(NUM_CLASSES).to(device)
        self.optimizer = torch.optim.SGD(self.model.param_groups(lr, 10.0), lr=lr, momentum=0.9, weight_decay=5e-4)
        self.d_optimizer = torch.optim.Adam([*self.d_main.parameters(), *self.d_aux.parameters()], lr=lr,
                                            betas=(0.9, 0.99))

    def __call__(self, xs, ys, xt):
        bce = F.binary_cross_entropy_with_logits
        discs = (self.d_main, self.d_aux)
        for d in discs:
            d.requires_grad_(False)
        out_s = self.model(xs)
        loss = F.cross_entropy(_up(out_s.logits, xs), ys, ignore_index=IGNORE) \
            + 0.1 * F.cross_entropy(_up(out_s.aux, xs), ys, ignore_index=IGNORE)
        out_t = self.model(xt)
        pt = [_up(out_t.logits, xt).softmax(1), _up(out_t.aux, xt).softmax(1)]
        for d, p, w in zip(discs, pt, (1e-3, 2e-4)):
            out = d(p)
            loss = loss + w * bce(out, torch.ones_like(out))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        for d in discs:
            d.requires_grad_(True)
        ps = [_up(out_s.logits, xs).detach().softmax(1), _up(out_s.aux, xs).detach().softmax(1)]
        d_loss = 0.0
        for d, s, t in zip(discs, ps, pt):
            o_s, o_t = d(s), d(t.detach())
            d_loss = d_loss + bce(o_s, torch.ones_like(o_s)) + bce(o_t, torch.zeros_like(o_t))
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optimizer.step()


def fast_settings(device) -> dict:
    """Our default fast configuration for a device."""
    return {"amp": resolve_amp("auto", device), "channels_last": device.type == "cuda"}


def pit_trainer(backbone: str, device, source, target, compile_: bool, run_dir,
                settings: dict | None = None) -> Trainer:
    raw = Config().to_dict()
    raw["model"].update(backbone=backbone, weights="")
    raw["data"].update(source_size=list(source), target_size=list(target))
    raw["method"]["pit"].update(disc_lr=0.0)
    raw["train"].update(device=str(device), compile=compile_, iterations=10 ** 6, lr=0.0, warmup=0,
                        **(fast_settings(device) if settings is None else settings))
    trainer = Trainer(Config.from_dict(raw, "pit bench"), run_dir, log=lambda *_: None)
    with warnings.catch_warnings():  # random weights are fine for timing: no "from scratch" warning
        warnings.simplefilter("ignore", UserWarning)
        trainer.setup_model()
    return trainer


def random_batch(size, device, generator, labelled=True):
    w, h = size
    image = torch.randn(1, 3, h, w, generator=generator).to(device)
    label = torch.randint(0, NUM_CLASSES, (1, h, w), generator=generator)
    label[:, : h // 8] = IGNORE  # an ignored band, as real labels have
    return {"image": image, "label": label.to(device) if labelled else None}


def run_bench(device_name: str = "auto", backbone: str = "resnet101", rounds: int = 3, steps: int = 2,
              compile_: bool = False, say=print, profile: bool = False, compile_mode: str = "default") -> dict:
    device = resolve_device(device_name, "--device")
    scale = 1 if device.type == "cuda" else CPU_SCALE
    source = (SOURCE[0] // scale, SOURCE[1] // scale)
    target = (TARGET[0] // scale, TARGET[1] // scale)
    g = torch.Generator().manual_seed(0)
    src, tgt = random_batch(source, device, g), random_batch(target, device, g, labelled=False)
    xs, ys, xt = src["image"], src["label"], tgt["image"]

    torch.manual_seed(0)
    reference = ReferenceStep(backbone, device)
    scratch = tempfile.TemporaryDirectory(prefix="pit-bench-")
    pit = pit_trainer(backbone, device, source, target, compile_ and compile_mode == "default", scratch.name)
    graphs = compile_ and compile_mode != "default"  # an experiment: "reduce-overhead" replays CUDA graphs
    if graphs:
        pit.nets.forward = torch.compile(pit.nets.forward, mode=compile_mode, dynamic=False)

    def pit_step():
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()  # a new step: the last step's graph outputs are free
        return pit.step(src, tgt)
    variants = {"reference": lambda: reference(xs, ys, xt), "pit": pit_step}
    settings = fast_settings(device)
    if device.type != "cpu":  # the same step with region growing on the host (OpenCV), for comparison
        variants["pit_host_regions"] = lambda: _with_regions_backend(pit, pit_step, "opencv")

    say(f"pit bench on {describe(device)}: {backbone}, source {source[0]}x{source[1]}, target {target[0]}x{target[1]}"
        + (f" (the paper's sizes / {scale})" if scale > 1 else "") + f", PIT {settings}"
        + (f", compiled ({compile_mode})" if compile_ else ""))
    first = {name: timed(fn, device) for name, fn in variants.items()}  # warm-up (and compilation)
    times = {name: [] for name in variants}
    peak = {name: 0.0 for name in variants}
    for r in range(rounds):  # alternate, so drifts of a shared machine hit both alike
        for name, fn in variants.items():
            fn()  # untimed: the first step after another variant pays for its allocator and cache state
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            times[name] += [timed(fn, device) for _ in range(steps)]
            if device.type == "cuda":
                peak[name] = max(peak[name], torch.cuda.max_memory_allocated(device) / 2 ** 20)
        say(f"  round {r + 1}/{rounds}: " + ", ".join(f"{name} {statistics.median(t):.0f} ms"
                                                     for name, t in times.items()))
    ref_t, pit_t = Timing(times["reference"]), Timing(times["pit"])
    pit_losses = {k: float(v.detach()) for k, v in pit_step().items()}  # finite: the step did all its work
    profile_table = profile_step(pit_step, device) if profile else None

    # inference: the adapted network at frame size, batched, in the trainer's fast settings; on a
    # GPU also in fp32 NCHW, as Predictor (the GUI, pit predict / eval) runs it
    model = pit.model.eval()
    infer = _inference(model, device, scale, rounds, g, pit.runtime.autocast, pit.runtime.layout)
    infer_fp32 = None
    if device.type == "cuda":
        model.to(memory_format=torch.contiguous_format)
        infer_fp32 = _inference(model, device, scale, rounds, g, contextlib.nullcontext, torch.contiguous_format)

    # overlay rendering (CPU, numpy + OpenCV), full size on every device
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (OVERLAY[1], OVERLAY[0], 3), np.uint8)
    classes = np.repeat(np.repeat(rng.integers(0, NUM_CLASSES, (OVERLAY[1] // 32, OVERLAY[0] // 32), np.uint8), 32, 0),
                        32, 1)
    overlay_t = Timing([timed(lambda: overlay.blend(image, classes, 0.5, True), torch.device("cpu"))
                        for _ in range(10)])

    # GWRP over the target's output map (stride 8) at the default support: full sort against top-k
    h, w = target[1] // 8, target[0] // 8
    decay = M.support_decay(Config().method.pit.gwrp_support, h * w)
    p = torch.randn(1, NUM_CLASSES, h, w, generator=g).to(device).softmax(1)
    v = (torch.rand(1, NUM_CLASSES, generator=g) > 0.5).float().to(device)
    gwrp = {}
    for name, topk in (("sort", False), ("topk", True)):
        M.gwrp(p, decay, topk)
        gwrp[name] = Timing([timed(lambda: M.gwrp(p, decay, topk), device) for _ in range(5)])
    loss_diff = abs(float(M.image_level_loss(p, v, decay, True)) - float(M.image_level_loss(p, v, decay, False)))

    regions, regions_equal = _region_growing(device, target, max(5, rounds))

    if device.type == "cuda":
        peak_mem = {k: round(v, 1) for k, v in peak.items()}
    else:  # the process's peak resident memory (Linux reports KiB); not separable per variant in one process
        peak_mem = {"process_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    scratch.cleanup()
    return {
        "device": describe(device),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "backbone": backbone, "scale": scale, "source_size": list(source), "target_size": list(target),
        "pit_settings": {**settings, "compile": compile_, **({"compile_mode": compile_mode} if compile_ else {})},
        "reference_step_ms": ref_t.summary(), "pit_step_ms": pit_t.summary(),
        **({"pit_step_host_regions_ms": Timing(times["pit_host_regions"]).summary()} if "pit_host_regions" in times
           else {}),
        "first_step_ms": {k: round(v, 1) for k, v in first.items()},
        "pit_losses": pit_losses,
        "speedup": round(ref_t.median / pit_t.median, 3),
        "peak_mem_mb": peak_mem,
        "gwrp_sort_ms": gwrp["sort"].summary(), "gwrp_topk_ms": gwrp["topk"].summary(),
        "gwrp_speedup": round(gwrp["sort"].median / gwrp["topk"].median, 2), "gwrp_loss_diff": loss_diff,
        "infer_fps": infer, **({"infer_fps_fp32": infer_fp32} if infer_fp32 else {}),
        "overlay_ms": overlay_t.summary(),
        "regions_ms": regions, "regions_equal": regions_equal,
        **({"profile": profile_table} if profile else {}),
    }


def _inference(model, device, scale: int, rounds: int, g, autocast, layout) -> dict:
    infer = {}
    for w, h, batch in INFER:
        w, h = w // scale, h // scale
        x = torch.randn(batch, 3, h, w, generator=g).to(device).contiguous(memory_format=layout)

        @torch.no_grad()
        def forward():
            with autocast():
                return _up(model(x).logits, x).argmax(1)
        forward()
        ms = Timing([timed(forward, device) for _ in range(max(3, rounds))])
        infer[f"{w}x{h}"] = {"batch": batch, "fps": round(1000 * batch / ms.median, 2), "ms_per_batch": ms.summary()}
    return infer


def profile_step(step, device, steps: int = 3) -> str:
    """torch.profiler over a few steps: the operators by device time (CPU time on a CPU), and
    how busy the device was over the steps' wall time."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        wall = sum(timed(step, device) for _ in range(steps)) / steps
    events = prof.key_averages()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    # kernels are attributed to the CPU-side operators that launched them: sum those alone
    busy = sum(getattr(e, key) for e in events if e.device_type == torch.autograd.DeviceType.CPU) / 1000 / steps
    return (f"PIT step, {steps} steps under the profiler: wall {wall:.1f} ms/step, "
            f"{'device' if cuda else 'CPU'} busy {busy:.1f} ms/step\n"
            + events.table(sort_by=key, row_limit=40, max_name_column_width=70))


def _with_regions_backend(trainer: Trainer, step, backend: str):
    trainer.method.regions_backend = backend
    try:
        return step()
    finally:
        trainer.method.regions_backend = "auto"


def street_probabilities(size, device) -> torch.Tensor:
    """1 x C x H x W probabilities shaped like a trained segmenter's on a street scene: the shipped
    demo frame's labels at `size` as the arg-max, confident inside regions, unsure at borders."""
    path = sorted((shipped("demo_frames") / "gtFine").rglob("*_labelIds.png"))[0]
    train_ids = LABELID_TO_TRAINID_LUT[np.asarray(Image.open(path))]
    cls = torch.from_numpy(train_ids.astype(np.int64))[None, None].float()
    cls = F.interpolate(cls, size=(size[1], size[0]), mode="nearest")[0].long().to(device)
    one_hot = F.one_hot(torch.where(cls == IGNORE, 0, cls), NUM_CLASSES).permute(0, 3, 1, 2).float()
    g = torch.Generator().manual_seed(0)
    p = F.avg_pool2d(one_hot, 9, 1, 4, count_include_pad=False) \
        + 0.004 * torch.rand(one_hot.shape, generator=g).to(device)
    return p / p.sum(1, keepdim=True)


def _region_growing(device, size, repeats: int):
    """Region growing (METHOD E) on a street-like map at the target size, by each backend that
    runs on this device; the labels must be equal."""
    p = street_probabilities(size, device)
    state = torch.where(M.category_vector(p.argmax(1), NUM_CLASSES) > 0, M.PRESENT, M.ABSENT)
    backends = ("opencv", "torch")
    labels = {b: M.expand_regions(p, state, backend=b)[0] for b in backends}  # warm-up, and the check
    timings = {b: Timing([timed(lambda: M.expand_regions(p, state, backend=b), device) for _ in range(repeats)])
               .summary() for b in backends}
    return timings, bool(torch.equal(labels["opencv"], labels["torch"]))


def describe(device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def table(r: dict) -> str:
    rows = [("reference step (fp32 NCHW)", r["reference_step_ms"]), ("PIT step (fast settings)", r["pit_step_ms"])]
    if "pit_step_host_regions_ms" in r:
        rows.append(("PIT step, regions on the host", r["pit_step_host_regions_ms"]))
    rows += [(f"region growing, {b}", t) for b, t in r["regions_ms"].items()]
    rows += [("GWRP full sort", r["gwrp_sort_ms"]), ("GWRP top-k", r["gwrp_topk_ms"]),
             ("overlay 2048x1024", r["overlay_ms"])]
    rows += [(f"inference {size} x{v['batch']}", v["ms_per_batch"]) for size, v in r["infer_fps"].items()]
    rows += [(f"inference {size} x{v['batch']}, fp32 NCHW", v["ms_per_batch"])
             for size, v in r.get("infer_fps_fp32", {}).items()]
    lines = [f"{'measure':34} {'median ms':>10} {'min':>9} {'max':>9} {'n':>4}"]
    lines += [f"{name:34} {t['median']:>10.1f} {t['min']:>9.1f} {t['max']:>9.1f} {t['n']:>4}" for name, t in rows]
    lines.append(f"speedup (reference / PIT): {r['speedup']:.2f}x   PIT / reference: {1 / r['speedup']:.2f}x")
    lines.append(f"region growing: OpenCV and torch labels {'equal' if r['regions_equal'] else 'DIFFER'}")
    finite = all(math.isfinite(v) for v in r["pit_losses"].values())
    lines.append("PIT losses after the timed steps: " + ("finite" if finite else "NOT FINITE") + ", "
                 + ", ".join(f"{k} {v:.4g}" for k, v in r["pit_losses"].items()))
    lines.append(f"GWRP top-k: {r['gwrp_speedup']:.1f}x faster than the full sort, loss difference "
                 f"{r['gwrp_loss_diff']:.1e}")
    lines.append("inference: " + ", ".join(f"{s} {v['fps']:.1f} frames/s" for s, v in r["infer_fps"].items())
                 + "".join(f", fp32 NCHW {s} {v['fps']:.1f} frames/s" for s, v in r.get("infer_fps_fp32", {}).items()))
    lines.append(f"peak memory (MiB): {r['peak_mem_mb']}")
    lines.append(f"first steps (warm-up{', compilation' if r['pit_settings']['compile'] else ''}, ms): "
                 f"{r['first_step_ms']}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run_bench(*sys.argv[1:2])))
