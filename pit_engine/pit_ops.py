"""PIT's components (B-E) as plain functions on tensors; the PIT method (methods/pit.py) composes them.

B  source category vectors and the pivot loss;
C  pivot inference: thresholds on q = sigmoid(F(x)), optionally refreshed with pooled predictions;
D  image-level region expansion: GWRP pooling over the output map, with a support stated as a
   fraction of that map, and the expand / suppress loss;
E  pixel-level region expansion: seeded region growing pseudo-labels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pit_engine.classes import IGNORE

EPS = 1e-6
PRESENT, ABSENT, UNSURE = 1, 0, -1  # pivot states


# B ------------------------------------------------------------------------------------------

def category_vector(labels: torch.Tensor, num_classes: int, min_pixels: int = 1) -> torch.Tensor:
    """v[b, c] = 1 where class c covers at least `min_pixels` valid pixels of label map b."""
    b = labels.shape[0]
    flat = labels.reshape(b, -1)
    valid = flat != IGNORE
    idx = torch.where(valid, flat, torch.zeros_like(flat))
    counts = torch.zeros(b, num_classes, device=labels.device).scatter_add_(1, idx, valid.float())
    return (counts >= min_pixels).float()


# C ------------------------------------------------------------------------------------------

def pivot_state(q: torch.Tensor, tau_lo: float, tau_hi: float) -> torch.Tensor:
    """PRESENT where q > tau_hi, ABSENT where q < tau_lo, UNSURE (ignored) in between."""
    state = torch.full_like(q, UNSURE, dtype=torch.long)
    state[q > tau_hi] = PRESENT
    state[q < tau_lo] = ABSENT
    return state


def infer_pivot(pivot_logits: torch.Tensor, pooled: torch.Tensor | None, tau_lo: float, tau_hi: float,
                refresh: bool = True):
    """The target pivot: q = sigmoid(F(x)), refreshed as max(q, pooled) where `refresh` and the
    pooled scores GWRP(p) of the output map are given, thresholded. Returns (q, pooled, state)."""
    q = torch.sigmoid(pivot_logits.detach().float())
    pooled = pooled.detach() if pooled is not None else None
    state = pivot_state(torch.maximum(q, pooled) if refresh and pooled is not None else q, tau_lo, tau_hi)
    return q, pooled, state


# D ------------------------------------------------------------------------------------------

def support_decay(fraction, n: int):
    """The GWRP decay whose weight support, about 1/(1 - d) pixels, is `fraction` of a map of n
    pixels: d = 1 - 1/(fraction * n), 0 (max pooling) where that is a pixel or less. `fraction`
    may be a float or a per-class tensor; the result is of the same kind."""
    if torch.is_tensor(fraction):
        return (1 - 1 / (fraction.double() * n).clamp_min(1.0)).float()
    return max(0.0, 1 - 1 / max(fraction * n, 1.0))


def gwrp_support(decay: float, tol: float = 1e-4) -> int:
    """How many top-ranked pixels carry all but `tol` of the GWRP weight mass."""
    if decay <= 0:
        return 1
    if decay >= 1:
        return 2 ** 62
    return max(1, math.ceil(math.log(tol) / math.log(decay)))


def gwrp(p: torch.Tensor, decay, topk: bool = True, tol: float = 1e-4) -> torch.Tensor:
    """Global weighted rank pooling of B x C x H x W probabilities to B x C scores.

    Sorted in decreasing order, pixel j weighs d^(j-1); `decay` is one float or a tensor of C
    (a decay per class). With a float and `topk`, only the k top pixels that carry all but `tol`
    of the weight are ranked (torch.topk instead of a full sort); the pooled value then differs
    from the full sort by at most `tol` (relative, since p <= 1).
    """
    flat = p.flatten(2)
    n = flat.shape[2]
    per_class = torch.is_tensor(decay)
    k = min(n, gwrp_support(decay, tol)) if topk and not per_class else n
    ranked = flat.topk(k, dim=2).values if k < n else flat.sort(dim=2, descending=True).values
    j = torch.arange(k, device=p.device, dtype=torch.float64)
    d = decay.to(p.device, torch.float64).clamp_min(1e-12)[:, None] if per_class \
        else torch.tensor(max(decay, 1e-12), dtype=torch.float64, device=p.device)
    weights = torch.exp(j * d.log())
    weights = (weights / weights.sum(-1, keepdim=True)).float()
    return (ranked.float() * weights).sum(2)


def image_level_loss(p: torch.Tensor, v: torch.Tensor, decay, topk: bool = True,
                     pooled: torch.Tensor | None = None) -> torch.Tensor:
    """L_img: expand present classes (GWRP pooled high) and suppress absent ones (max low).

    p: probabilities on the network's output map (not upsampled: GWRP's support is a fraction of
    that map); v holds 1 (present), 0 (absent) or -1 (unsure: skipped).
    """
    pooled = gwrp(p, decay, topk) if pooled is None else pooled
    peak = p.flatten(2).amax(2).float()
    present, absent = v == 1, v == 0
    expand = -(pooled.clamp_min(EPS).log() * present).sum() / present.sum().clamp_min(1)
    suppress = -((1 - peak).clamp_min(EPS).log() * absent).sum() / absent.sum().clamp_min(1)
    return expand + suppress


def class_shares(labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, over the frames of a batch that hold it: (how many frames hold it, the sum of
    its share of each such frame's valid pixels). Their ratio is the class's mean pixel share."""
    b = labels.shape[0]
    flat = labels.reshape(b, -1)
    valid = flat != IGNORE
    idx = torch.where(valid, flat, torch.zeros_like(flat))
    counts = torch.zeros(b, num_classes, device=labels.device).scatter_add_(1, idx, valid.float())
    share = counts / valid.sum(1, keepdim=True).clamp_min(1)
    return (counts > 0).float().sum(0), share.sum(0)


# E ------------------------------------------------------------------------------------------

def expand_regions(prob: torch.Tensor, state: torch.Tensor, seed_threshold: float = 0.9,
                   grow_threshold: float = 0.7, seed_ratio: float = 0.0, backend: str = "auto"):
    """Seeded region growing restricted by the pivot, for a batch.

    prob: B x C x H x W probabilities; state: B x C pivot states.
    1. absent classes are zeroed and the rest renormalised;
    2. seeds: arg-max class present and confidence > seed_threshold (or, with seed_ratio > 0,
       the class-balanced top `seed_ratio` of each present class's arg-max pixels);
    3. seeds grow into 8-connected pixels of the same arg-max with confidence > grow_threshold.
    `backend`: "opencv" (on the host), "torch" (on prob's device, no host round trip) or "auto"
    (torch on a GPU, OpenCV on the CPU); both give the same labels.
    Returns (pseudo-labels B x H x W long with 255 elsewhere, seeds B x H x W bool).
    """
    prob = prob.float() * (state != ABSENT).unsqueeze(-1).unsqueeze(-1)
    prob = prob / prob.sum(1, keepdim=True).clamp_min(EPS)
    conf, cls = prob.max(1)
    present = torch.gather(state == PRESENT, 1, cls.flatten(1)).view_as(cls)
    if seed_ratio > 0:
        seeds = torch.zeros_like(present)
        for c in range(prob.shape[1]):
            mask = present & (cls == c)
            for b in range(prob.shape[0]):
                n = int(mask[b].sum())
                if n:
                    k = max(1, int(n * seed_ratio))
                    cut = conf[b][mask[b]].topk(k).values[-1]
                    seeds[b] |= mask[b] & (conf[b] >= cut)
    else:
        seeds = present & (conf > seed_threshold)
    grow = (conf > grow_threshold) | seeds
    if backend == "auto":
        backend = "opencv" if prob.device.type == "cpu" else "torch"
    grown = grow_seeds_torch(cls, grow, seeds) if backend == "torch" else grow_seeds_opencv(cls, grow, seeds)
    return torch.where(grown, cls, IGNORE), seeds


@dataclass
class PivotTargets:
    """What PIT trains a target frame towards under a pivot (B x C states): D expands the present
    classes (their GWRP pool pushed high) and suppresses the absent ones (their peak pushed low);
    E trains on the pseudo-labels grown from the seeds (None where E is off)."""
    state: torch.Tensor  # B x C: 1 present, 0 absent, -1 unsure (D skips it)
    pseudo: torch.Tensor | None = None  # B x H x W long, IGNORE where nothing grew
    seeds: torch.Tensor | None = None  # B x H x W bool

    @property
    def expand(self) -> torch.Tensor:
        return self.state == PRESENT

    @property
    def suppress(self) -> torch.Tensor:
        return self.state == ABSENT


def pivot_targets(prob: torch.Tensor | None, state: torch.Tensor, seed_threshold: float = 0.9,
                  grow_threshold: float = 0.7, seed_ratio: float = 0.0, backend: str = "auto") -> PivotTargets:
    """D's and E's targets from probabilities (B x C x H x W; None: D's alone) under a pivot: the
    one computation a training step and a what-if on an edited pivot share."""
    if prob is None:
        return PivotTargets(state)
    pseudo, seeds = expand_regions(prob, state, seed_threshold, grow_threshold, seed_ratio, backend)
    return PivotTargets(state, pseudo, seeds)


def grow_seeds_opencv(cls: torch.Tensor, grow: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """Pixels of `grow` joined to a seed through 8-connected pixels of the same class (B x H x W
    bool), by OpenCV's connected components per seeded class, on the host."""
    reached = np.zeros(cls.shape, bool)
    cls_np, grow_np, seeds_np = cls.cpu().numpy(), grow.cpu().numpy(), seeds.cpu().numpy()
    for b in range(cls_np.shape[0]):
        for c in np.unique(cls_np[b][seeds_np[b]]):
            region = (grow_np[b] & (cls_np[b] == c)).astype(np.uint8)
            count, comp = cv2.connectedComponents(region, connectivity=8)
            seeded = np.zeros(count, bool)  # a lookup per component: np.isin would sort the frame
            seeded[comp[seeds_np[b] & (cls_np[b] == c)]] = True
            seeded[0] = False  # background
            reached[b] |= seeded[comp]
    return torch.from_numpy(reached).to(cls.device)


def grow_seeds_torch(cls: torch.Tensor, grow: torch.Tensor, seeds: torch.Tensor,
                     check_every: int = 4) -> torch.Tensor:
    """The same as `grow_seeds_opencv`, on cls's device: connected-component labelling by label
    equivalence (every pixel takes its neighbours' smallest label, hooks its root to it, then
    follows pointers). That takes a few rounds, not one per pixel of the longest path: at most 8
    on street maps and 12 on a 1-pixel serpentine through a 501 x 501 square. A host sync every
    `check_every` rounds tests for the fixed point, where each component holds one label."""
    b, h, w = cls.shape
    n = b * h * w  # index n: "no pixel" (outside `grow`, beyond the border); its label stays n
    index = torch.arange(n, device=cls.device).view(b, h, w)
    padded_index = F.pad(index, (1, 1, 1, 1), value=n)
    padded_cls = F.pad(cls, (1, 1, 1, 1), value=-1)
    padded_grow = F.pad(grow, (1, 1, 1, 1), value=False)
    neighbours = []  # 8 x n: each pixel's neighbours of its class in `grow`, else n
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                window = (slice(None), slice(1 + dy, 1 + dy + h), slice(1 + dx, 1 + dx + w))
                joined = grow & padded_grow[window] & (padded_cls[window] == cls)
                neighbours.append(torch.where(joined, padded_index[window], n).flatten())
    neighbours = torch.stack(neighbours)
    labels = torch.cat([torch.where(grow, index, n).flatten(), torch.tensor([n], device=cls.device)])
    rounds = 0
    while True:
        before = labels if rounds % check_every == check_every - 1 else None
        smallest = labels[:n]
        for seen in labels[neighbours]:  # (a chain of minimum: amin over int64 is slow on CPUs)
            smallest = torch.minimum(smallest, seen)
        labels = labels.scatter_reduce(0, labels[:n], smallest, "amin")  # hook roots to the smallest labels seen
        labels[:n] = torch.minimum(labels[:n], smallest)
        labels = labels[labels[labels]]  # pointer jumping, twice
        rounds += 1
        if before is not None and torch.equal(labels, before):
            break
    has_seed = torch.zeros(n + 1, dtype=torch.bool, device=cls.device)
    has_seed[torch.where(seeds.flatten(), labels[:n], n)] = True  # no boolean indexing: no host sync
    has_seed[n] = False
    return has_seed[labels[:n]].view(b, h, w) & grow
