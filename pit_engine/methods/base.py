"""What a method is: the losses it adds to supervised training on the source, and the modules it
trains for them. A method knows no loop, device policy, precision or run directory; the trainer
(pit_engine/train.py) runs any method the same way.

A step is two passes, target then source. For each pass the trainer calls the method, which
returns a `Pass` (its generator loss terms and the network's outputs); the trainer back-propagates
the terms, then trains every discriminator the method owns on `discriminator_inputs(pass)`:
source = 1, target = 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from pit_engine.classes import IGNORE


@dataclass
class Nets:
    """The segmentation network as the trainer runs it (mixed precision, DDP, compile)."""
    forward: Callable


@dataclass
class Pass:
    """One domain's pass: the generator's loss terms (weighted, ready to sum) and what the network
    gave, for the discriminators' half."""
    losses: dict[str, torch.Tensor]
    out: Any  # models.SegOutput
    x: torch.Tensor
    logits: torch.Tensor  # main logits upsampled to x, float32


@dataclass
class NoSettings:
    """A method without settings of its own."""


class Method:
    name: ClassVar[str]
    label: ClassVar[str]  # how reports and the GUI name it
    Config: ClassVar[type] = NoSettings  # its table, [method.<name>]
    adapts: ClassVar[bool] = True  # trains on target frames
    uda: ClassVar[bool] = True  # False: reads target labels (a ceiling, not an adaptation method)
    has_pivot: ClassVar[bool] = False  # an image-level category vector (Inspect panels, pivot metrics)
    terms: ClassVar[tuple[str, ...]] = ()  # loss terms it logs, beside seg and seg_aux

    def __init__(self, config=None, aux_weight: float = 0.1):
        self.config = config if config is not None else self.Config()
        self.aux_weight = aux_weight
        self.model: nn.Module | None = None
        self.modules: dict[str, nn.Module] = {}

    # set-up ---------------------------------------------------------------------------------
    def attach(self, model: nn.Module) -> dict[str, nn.Module]:
        """Meet the raw network; return the modules this method trains beside it (discriminators),
        by the names the trainer checkpoints them under. The pivot head trains only where the
        method uses it: frozen, DistributedDataParallel expects no gradient for it."""
        self.model = model
        if not self.trains_pivot:
            model.pivot_head.requires_grad_(False)
        self.modules = self.create_modules(model)
        return self.modules

    def create_modules(self, model: nn.Module) -> dict[str, nn.Module]:
        return {}

    @property
    def trains_pivot(self) -> bool:
        return self.has_pivot

    @property
    def disc_lr(self) -> float:
        return getattr(self.config, "disc_lr", 1e-4)

    @property
    def reads_target_labels(self) -> bool:
        return not self.uda

    # the step ----------------------------------------------------------------------------------
    def source_pass(self, nets: Nets, batch: dict) -> Pass:
        """Supervised segmentation on the source: every method keeps it."""
        x, y = batch["image"], batch["label"]
        out = nets.forward(x)
        logits = upsample(out.logits, x).float()
        losses = {"seg": labelled_cross_entropy(logits, y)}
        if out.aux is not None:
            losses["seg_aux"] = self.aux_weight * labelled_cross_entropy(upsample(out.aux, x).float(), y)
        return Pass(losses, out, x, logits)

    def target_pass(self, nets: Nets, batch: dict, step: int) -> Pass:
        """The target's loss terms (after the warm-up; never called when `adapts` is False). `step`:
        adapting steps done before this one (0 right after the warm-up)."""
        x = batch["image"]
        out = nets.forward(x)
        return Pass({}, out, x, upsample(out.logits, x).float())

    def discriminator_inputs(self, p: Pass) -> dict[str, torch.Tensor]:
        """What each discriminator of `modules` sees of a pass, detached."""
        return {}

    # state that is not a trained module (a teacher, running statistics), for checkpoints --------
    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def load_inference_state(self, state: dict) -> None:
        """What evaluation and prediction need of a checkpoint's extra state (no teacher)."""

    # diagnosis ----------------------------------------------------------------------------------
    @torch.no_grad()
    def diagnose(self, x: torch.Tensor, out) -> dict[str, torch.Tensor]:
        """What the run's health curves read of a target batch the network saw in evaluation:
        "pseudo" (the pseudo-labels the method would train on now, B x H x W, 255 elsewhere),
        "pivot_q" and "pivot_refreshed" (B x C pivot states); for the run's timeline, "teacher"
        (the teacher's arg-max, B x H x W), "seeds" (B x H x W bool), "q" and "pooled" (B x C
        scores) and "pivot" (the B x C states the pseudo-labels grew under). A method gives what it has."""
        return {}


def upsample(logits: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(logits, size=like.shape[-2:], mode="bilinear", align_corners=False)


def labelled_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over the labelled pixels; 0 (not NaN) for a batch of crops without
    any, so that one odd frame cannot stop a long run."""
    ce = F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="sum")
    return ce / (labels != IGNORE).sum().clamp_min(1)


def adversarial_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """The GAN loss (BCE with logits) against an all-source (real=True) or all-target label."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))

