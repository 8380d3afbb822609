"""The training streams: every sample is a numbered *draw* from an endless stream whose order and
augmentation are seeded by (seed, draw), so a run resumed from a checkpoint sees exactly the
batches the uninterrupted run would have seen, whatever the number of workers or processes.
Ranks take disjoint slices of each global batch (DistributedDataParallel-ready)."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from pit_engine.data.datasets import SegmentationDataset
from pit_engine.errors import UserError


class Draws(Dataset):
    """Draw number -> (sample, augmentation): epoch e is a permutation seeded by (seed, e)."""

    def __init__(self, dataset: SegmentationDataset, seed: int):
        self.dataset, self.seed = dataset, seed
        self._epoch, self._perm = -1, None

    def __len__(self):
        return 2 ** 62

    def __getitem__(self, draw: int) -> dict:
        n = len(self.dataset)
        epoch, pos = divmod(draw, n)
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        generator = torch.Generator().manual_seed((self.seed * 2_654_435_761 + draw) % 2 ** 63)
        try:
            return self.dataset.get(int(self._perm[pos]), generator)
        except UserError as exc:  # handed to the trainer as data: a worker would wrap it in a traceback
            return {"error": exc}


def _collate(items: list[dict]) -> dict:
    for item in items:
        if "error" in item:  # the trainer raises it
            return item
    return default_collate(items)


def next_batch(iterator) -> dict:
    batch = next(iterator)
    if "error" in batch:
        raise batch["error"]
    return batch


class DrawSampler(Sampler):
    """This rank's draws, from a start step on: step s, rank r take draws
    s*B*W + r*B ... s*B*W + r*B + B-1, so the global batch does not depend on the world size."""

    def __init__(self, start_step: int, batch: int, rank: int = 0, world: int = 1):
        self.start_step, self.batch, self.rank, self.world = start_step, batch, rank, world

    def __iter__(self):
        step = self.start_step
        while True:
            first = step * self.batch * self.world + self.rank * self.batch
            yield from range(first, first + self.batch)
            step += 1

    def __len__(self):
        return 2 ** 62


def draw_loader(dataset, seed, start_step, batch, rank, world, workers, pin):
    return iter(DataLoader(Draws(dataset, seed), batch_size=batch, sampler=DrawSampler(start_step, batch, rank, world),
                           collate_fn=_collate, num_workers=workers, pin_memory=pin, persistent_workers=False,
                           prefetch_factor=4 if workers else None))
