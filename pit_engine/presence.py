"""Which classes a frame holds, read from the segmenter's own output map: PIT's pivot reading
`pivot_reading = "segmenter"`.

The pivot head (B) reads globally averaged features, and on the demo it learns little but the
class priors (README, "The pivot, measured"). The segmenter's probabilities rank presence better
on the target, but they are overconfident there. This reading is a logistic layer on each
frame's per-class maximum and mean probability (2C inputs, C outputs), fitted to the source
frames' category vectors as training goes: plain gradient steps on detached inputs, so it moves
nothing else, and its state is its weights alone (checkpoints keep it; a resumed run continues
exactly).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pit_engine.distributed import sum_over_ranks


def frame_summary(prob: torch.Tensor) -> torch.Tensor:
    """B x 2C: the per-class maximum and mean of B x C x h x w probabilities."""
    return torch.cat([prob.amax((2, 3)), prob.mean((2, 3))], 1)


class SegmenterPresence:
    def __init__(self, num_classes: int, lr: float = 1.0):
        self.weight = torch.zeros(num_classes, 2 * num_classes)
        self.bias = torch.zeros(num_classes)
        self.lr = lr

    def to(self, device) -> "SegmenterPresence":
        self.weight, self.bias = self.weight.to(device), self.bias.to(device)
        return self

    def logits(self, prob: torch.Tensor) -> torch.Tensor:
        """B x C presence logits of B x C x h x w probabilities."""
        x = frame_summary(prob.detach().float())
        return F.linear(x, self.weight.to(x.device), self.bias.to(x.device))

    @torch.no_grad()
    def fit_step(self, prob: torch.Tensor, present: torch.Tensor, weight: torch.Tensor) -> None:
        """One gradient step of the mean BCE against `present` (B x C, 0/1), frames weighted by
        `weight` (B x C: 0 skips a frame without labelled pixels), averaged over the ranks."""
        x = frame_summary(prob.float())
        self.to(x.device)
        q = torch.sigmoid(F.linear(x, self.weight, self.bias))
        err = (q - present) * weight  # dBCE/dlogit, per frame and class
        grads = torch.cat([(err.T @ x).flatten(), err.sum(0), weight.sum(0)])
        grads = sum_over_ranks(grads)
        c = self.bias.numel()
        count = grads[-c:].clamp_min(1)
        self.weight -= self.lr * grads[:c * 2 * c].view(c, 2 * c) / count[:, None]
        self.bias -= self.lr * grads[c * 2 * c:-c] / count

    def state(self) -> torch.Tensor:
        return torch.cat([self.weight, self.bias[:, None]], 1)

    def load(self, state: torch.Tensor) -> None:
        self.weight, self.bias = state[:, :-1].float().clone(), state[:, -1].float().clone()
