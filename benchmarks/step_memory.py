"""Peak tensor memory of one training step at the paper's sizes, counted on the CPU as a GPU holds it.

A dispatch mode sees every tensor storage the steps create, and a finalizer sees it freed. Run
on the CPU in the GPU's settings (bf16 autocast, channels_last, region growing in torch), its
peak approximates what the CUDA caching allocator's max_memory_allocated reports, less the cuDNN
workspaces (which a GPU also takes from that allocator) and the allocator's 512-byte rounding.
The reference step is the same code that was measured on an H100 (6,286 MiB there), so its
row says how close the count comes. Minutes per step on 2 cores.

    python benchmarks/step_memory.py [--backbone resnet101] [--scale 1] [--steps 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from pit_engine.bench import SOURCE, TARGET, ReferenceStep, random_batch, pit_trainer


class TensorMemory(TorchDispatchMode):
    """Bytes of live tensor storages (each counted once, however many views share it), and their peak."""

    def __init__(self, *tensors):
        super().__init__()
        self.live, self.peak, self._seen = 0, 0, weakref.WeakSet()
        for t in tensors:
            self._add(t)

    def _add(self, t) -> None:
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            storage = t.untyped_storage()
            if storage not in self._seen:
                self._seen.add(storage)
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._free, storage.nbytes())

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            self._add(t)
        return out


def state_tensors(*modules_and_optimizers):
    for m in modules_and_optimizers:
        if isinstance(m, torch.nn.Module):
            yield from m.parameters()
            yield from m.buffers()
        else:
            for state in m.state.values():
                yield from (v for v in state.values() if isinstance(v, torch.Tensor))


def peak_mib(step, steps: int, *parts_and_inputs) -> tuple[float, float]:
    """The peak over `steps` steps (the first creates the optimizers' state), and seconds per step."""
    tracked = [t for t in parts_and_inputs if isinstance(t, torch.Tensor)]
    tracked += state_tensors(*(p for p in parts_and_inputs if not isinstance(p, torch.Tensor)))
    memory = TensorMemory(*tracked)
    start = time.perf_counter()
    with memory:
        for _ in range(steps):
            step()
    return round(memory.peak / 2 ** 20, 1), (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--scale", type=int, default=1, help="divide the paper's frame sizes by this")
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    device = torch.device("cpu")
    source = (SOURCE[0] // args.scale, SOURCE[1] // args.scale)
    target = (TARGET[0] // args.scale, TARGET[1] // args.scale)
    g = torch.Generator().manual_seed(0)
    src, tgt = random_batch(source, device, g), random_batch(target, device, g, labelled=False)
    torch.manual_seed(0)
    print(f"{args.backbone}, source {source[0]}x{source[1]}, target {target[0]}x{target[1]}, {args.steps} steps each",
          flush=True)

    reference = ReferenceStep(args.backbone, device)
    peak, seconds = peak_mib(lambda: reference(src["image"], src["label"], tgt["image"]), args.steps,
                                    reference.model, reference.d_main, reference.d_aux, reference.optimizer,
                                    reference.d_optimizer, src["image"], src["label"], tgt["image"])
    print(f"reference step, fp32 NCHW:      peak {peak:8.1f} MiB  ({seconds:.0f} s/step)", flush=True)
    del reference

    with tempfile.TemporaryDirectory() as scratch:
        pit = pit_trainer(args.backbone, device, source, target, False, scratch,
                          {"amp": "bf16", "channels_last": True})
        pit.method.regions_backend = "torch"  # as on a GPU
        parts = [m for m in (pit.model, *pit.modules.values(), pit.optimizer, pit.d_optimizer) if m is not None]
        peak, seconds = peak_mib(lambda: pit.step(src, tgt), args.steps,
                                        *parts, src["image"], src["label"], tgt["image"])
        losses = {k: round(float(v.detach()), 4) for k, v in pit.step(src, tgt).items()}
    print(f"PIT step, bf16 + channels_last: peak {peak:8.1f} MiB  ({seconds:.0f} s/step)")
    print(f"PIT losses (all terms ran): {losses}")


if __name__ == "__main__":
    main()
