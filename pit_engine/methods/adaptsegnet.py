"""AdaptSegNet (Tsai et al., CVPR 2018): multi-level output-space adversarial learning.

A fully convolutional discriminator per head (the main one on layer4, the auxiliary one on
layer3) learns to tell the source's softmax maps from the target's; the segmenter is trained to
make the target's look like the source's. The published weights: 1e-3 (main), 2e-4 (auxiliary),
Adam at 1e-4 with betas (0.9, 0.99) for the discriminators.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pit_engine.methods.base import Method, Nets, Pass, adversarial_loss, upsample
from pit_engine.models import OutputDiscriminator


@dataclass
class AdaptSegNetConfig:
    lambda_adv: float = 1e-3  # main head
    lambda_adv_aux: float = 2e-4  # auxiliary head
    disc_lr: float = 1e-4
    disc_width: int = 64


class AdaptSegNet(Method):
    name = "adaptsegnet"
    label = "AdaptSegNet"
    Config = AdaptSegNetConfig
    terms = ("adv", "adv_aux")

    def create_modules(self, model):
        modules = {"d_out": OutputDiscriminator(model.num_classes, self.config.disc_width)}
        if model.aux_head is not None:
            modules["d_out_aux"] = OutputDiscriminator(model.num_classes, self.config.disc_width)
        return modules

    def view(self, logits: torch.Tensor) -> torch.Tensor:
        """What the discriminators see of a head's upsampled logits: its softmax."""
        return logits.softmax(1)

    def _views(self, p: Pass) -> dict[str, torch.Tensor]:
        views = {"d_out": self.view(p.logits)}
        if "d_out_aux" in self.modules and p.out.aux is not None:
            views["d_out_aux"] = self.view(upsample(p.out.aux, p.x).float())
        return views

    def target_pass(self, nets: Nets, batch: dict, step: int) -> Pass:
        p = super().target_pass(nets, batch, step)
        weights = {"d_out": ("adv", self.config.lambda_adv), "d_out_aux": ("adv_aux", self.config.lambda_adv_aux)}
        for name, view in self._views(p).items():  # fool each discriminator: target judged as source
            term, weight = weights[name]
            p.losses[term] = weight * adversarial_loss(self.modules[name](view), real=True)
        return p

    def discriminator_inputs(self, p: Pass) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self._views(p)
