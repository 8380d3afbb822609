"""A run's optimizers and their learning-rate schedule: SGD for the segmentation network (its
heads at a multiple of the backbone's rate), Adam for the method's discriminators, both on the
poly schedule."""
from __future__ import annotations

import torch


def build_optimizers(model, modules: dict, train, disc_lr: float):
    """The network's SGD (train.lr, momentum, weight decay; param groups from the model) and, where
    the method has modules of its own, their Adam at `disc_lr` (else None)."""
    optimizer = torch.optim.SGD(model.param_groups(train.lr, train.head_lr_mult), lr=train.lr,
                                momentum=train.momentum, weight_decay=train.weight_decay)
    d_optimizer = torch.optim.Adam([p for d in modules.values() for p in d.parameters()],
                                   lr=disc_lr, betas=(0.9, 0.99)) if modules else None
    return optimizer, d_optimizer


def set_poly_lr(optimizer, d_optimizer, train, disc_lr: float, iteration: int) -> float:
    """Both optimizers' rates at `iteration` on the poly schedule, (1 - i / horizon) ** power;
    returns the network's base rate."""
    horizon = train.poly_iterations or train.iterations  # published runs stop before the rate reaches 0
    scale = (1 - iteration / horizon) ** train.poly_power
    for group in optimizer.param_groups:
        group["lr"] = train.lr * group.get("lr_mult", 1.0) * scale
    for group in d_optimizer.param_groups if d_optimizer is not None else ():
        group["lr"] = disc_lr * scale
    return train.lr * scale
