"""ADVENT's MinEnt (Vu et al., CVPR 2019): direct entropy minimisation on the target.

The loss is the mean over pixels of the normalised entropy -Σ_c p·log2(p) / log2(C), on each
head; published weights 1e-3 (main) and 2e-4 (auxiliary).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pit_engine.methods.advent import self_information
from pit_engine.methods.base import Method, Nets, Pass, upsample


@dataclass
class MinEntConfig:
    lambda_ent: float = 1e-3  # main head
    lambda_ent_aux: float = 2e-4  # auxiliary head


def entropy_map(logits: torch.Tensor) -> torch.Tensor:
    """B x H x W normalised entropy (0: certain, 1: uniform) of logits B x C x H x W."""
    return self_information(logits.softmax(1)).sum(1)


class MinEnt(Method):
    name = "minent"
    label = "ADVENT (MinEnt)"
    Config = MinEntConfig
    terms = ("ent", "ent_aux")

    def target_pass(self, nets: Nets, batch: dict, step: int) -> Pass:
        p = super().target_pass(nets, batch, step)
        p.losses["ent"] = self.config.lambda_ent * entropy_map(p.logits).mean()
        if p.out.aux is not None:
            p.losses["ent_aux"] = self.config.lambda_ent_aux * entropy_map(upsample(p.out.aux, p.x).float()).mean()
        return p
