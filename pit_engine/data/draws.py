"""The training streams: every sample is a numbered *draw* from an endless stream whose order and
augmentation are seeded by (seed, draw), so a run resumed from a checkpoint sees exactly the
batches the uninterrupted run would have seen, whatever the number of workers or processes.
Ranks take disjoint slices of each global batch (DistributedDataParallel-ready)."""
from __future__ import annotations

import dataclasses

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


def open_training_data(config, method, normalization: str, say):
    """(source, target or None, val or None) as a run of `method` reads them. An unsupervised
    method never reads target labels, not even to discard them; an unreadable val set means no
    evaluation (said), not a failed run."""
    from pit_engine.data.datasets import open_dataset
    from pit_engine.data.transforms import Transform

    d = config.data
    for key, needed in (("source_root", True), ("target_root", method.adapts)):
        if needed and not getattr(d, key):
            raise UserError(f"data.{key} is not set", "config",
                            f"set it in the config or with --set data.{key}=\"DIR\"")
    crop = tuple(d.crop) or None
    source = open_dataset(d.source_kind, d.source_root, None,
                          Transform(tuple(d.source_size), crop, d.flip, normalization))
    if not source.labelled:
        raise UserError("the source data set has no labels", d.source_root, "give a labelled source")
    target = None
    if method.adapts:
        target = open_dataset(d.target_kind, d.target_root, d.target_split if d.target_kind == "cityscapes" else None,
                              Transform(tuple(d.target_size), crop, d.flip, normalization))
        if method.reads_target_labels and not target.labelled:
            raise UserError(f"method '{config.method.name}' as configured needs target labels", d.target_root,
                            "give a labelled target split, or an unsupervised method or setting")
        if not method.reads_target_labels:
            target.samples = [dataclasses.replace(s, label=None) for s in target.samples]
    val = None
    if d.val_root or d.target_root:
        try:
            val = open_dataset(d.val_kind, d.val_root or d.target_root,
                               d.val_split if d.val_kind == "cityscapes" else None)
            val = val if val.labelled else None
        except UserError as exc:
            say(f"no evaluation: {exc.line()}")
    return source, target, val
