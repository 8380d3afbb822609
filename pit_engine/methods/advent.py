"""ADVENT's AdvEnt (Vu et al., CVPR 2019): adversarial entropy minimisation.

AdaptSegNet's discriminators, shown each head's weighted self-information map
I = -p·log2(p) / log2(C) (C channels) instead of its softmax: the target is pushed towards the
source's low-entropy structure. Published weights as AdaptSegNet's: 1e-3 (main), 2e-4 (aux).
"""
from __future__ import annotations

import math

import torch

from pit_engine.methods.adaptsegnet import AdaptSegNet


def self_information(prob: torch.Tensor) -> torch.Tensor:
    """-p·log2(p) / log2(C) per class: summed over the classes it is the normalised entropy."""
    return -prob * torch.log2(prob + 1e-30) / math.log2(prob.shape[1])


class AdvEnt(AdaptSegNet):
    name = "advent"
    label = "ADVENT (AdvEnt)"

    def view(self, logits: torch.Tensor) -> torch.Tensor:
        return self_information(logits.softmax(1))
