"""Class-balanced self-training (CBST, Zou et al., ECCV 2018): no pivot.

Target pseudo-labels are the arg-max of a teacher (the network as it was at the start of the
round), kept where the confidence reaches its class's threshold. The threshold of class c keeps
the most confident `portion` of the pixels the teacher gave to c, so rare classes keep labels
that one global threshold would take from them. The portion grows from 20 % by 5 % a round to
50 %. The thresholds of a round come from the confidences counted in the round before (the
first round counts each batch's own); this is the plain self-training that PIT's pixel-level
expansion restricts with the pivot, so beside PIT it isolates what the pivot adds.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from pit_engine.classes import IGNORE
from pit_engine.errors import UserError
from pit_engine.methods.base import Method, Nets, Pass, labelled_cross_entropy, upsample

BINS = 1000  # confidence histogram resolution


@dataclass
class CBSTConfig:
    lambda_st: float = 1.0
    round_every: int = 2000  # iterations a round: a new teacher and new thresholds
    portion_start: float = 0.2
    portion_step: float = 0.05
    portion_max: float = 0.5

    def validate(self, where: str, key: str) -> None:
        if self.round_every < 1:
            raise UserError(f"'{key}.round_every' must be at least 1", where, "fix the value")
        if not 0 < self.portion_start <= self.portion_max <= 1 or self.portion_step < 0:
            raise UserError("CBST portions must satisfy 0 < portion_start <= portion_max <= 1, portion_step >= 0",
                            where, f"got {self.portion_start}, {self.portion_max}, {self.portion_step}")


def confidence_histogram(conf: torch.Tensor, cls: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C x BINS counts of the pixels given to each class, by confidence."""
    bins = (conf.flatten() * BINS).long().clamp_(0, BINS - 1)
    counts = torch.zeros(num_classes * BINS, device=conf.device)
    counts.scatter_add_(0, cls.flatten() * BINS + bins, torch.ones_like(conf.flatten()))
    return counts.view(num_classes, BINS)


def class_thresholds(histogram: torch.Tensor, portion: float) -> torch.Tensor:
    """Per class, the confidence (a bin's lower edge) at or above which lies at least `portion`
    of its pixels: the most confident pixels first. NaN for a class without pixels."""
    from_top = histogram.flip(1).cumsum(1)  # pixels at or above each bin, the highest bin first
    total = from_top[:, -1:]
    reached = from_top >= portion * total
    first = reached.float().argmax(1)  # the highest bin where the share is reached
    edge = (BINS - 1 - first).float() / BINS
    return torch.where(total[:, 0] > 0, edge, torch.full_like(edge, float("nan")))


class CBST(Method):
    name = "cbst"
    label = "CBST (class-balanced self-training)"
    Config = CBSTConfig
    terms = ("st",)

    def __init__(self, config=None, aux_weight: float = 0.1):
        super().__init__(config, aux_weight)
        self.teacher = None
        self.round = -1  # step // round_every of the current round
        self.rounds_done = 0  # rounds finished since adaptation began: the portion grows with them
        self.histogram = None  # this round's counts, for the next round's thresholds
        self.thresholds = None  # this round's, from the last round's counts

    @property
    def portion(self) -> float:
        c = self.config
        return min(c.portion_max, c.portion_start + c.portion_step * self.rounds_done)

    def _new_round(self, round_: int) -> None:
        if self.histogram is not None:
            self.rounds_done += 1
            self.thresholds = class_thresholds(self.histogram, self.portion)
            self.histogram = None
        self.round = round_
        self.teacher = copy.deepcopy(self.model).eval().requires_grad_(False)

    @torch.no_grad()
    def pseudo_labels(self, x: torch.Tensor, count: bool = True, teacher: tuple | None = None) -> torch.Tensor:
        """The teacher's confident labels; `count`: its confidences go into the next round's
        thresholds (not for a diagnosis); `teacher`: its (confidence, class) maps, if at hand."""
        conf, cls = teacher if teacher is not None else self.teacher_view(x)
        counts = confidence_histogram(conf, cls, self.model.num_classes)
        if count:
            self.histogram = counts if self.histogram is None else self.histogram + counts
        own = class_thresholds(counts, self.portion)  # for classes the last round did not count
        thresholds = own if self.thresholds is None else torch.where(self.thresholds.isnan(), own, self.thresholds)
        return torch.where(conf >= thresholds[cls], cls, IGNORE)

    def target_pass(self, nets: Nets, batch: dict, step: int) -> Pass:
        if step // self.config.round_every != self.round:
            self._new_round(step // self.config.round_every)
        p = super().target_pass(nets, batch, step)
        labels = self.pseudo_labels(p.x)
        p.losses["st"] = self.config.lambda_st * labelled_cross_entropy(p.logits, labels)
        return p

    @torch.no_grad()
    def diagnose(self, x: torch.Tensor, out) -> dict[str, torch.Tensor]:
        if self.teacher is None:
            return {}
        conf, cls = self.teacher_view(x)  # one teacher pass: the pseudo-labels and, for the timeline, its arg-max
        return {"pseudo": self.pseudo_labels(x, count=False, teacher=(conf, cls)), "teacher": cls}

    def teacher_view(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's confidence and class per pixel, at the input's size."""
        return upsample(self.teacher(x).logits, x).float().softmax(1).max(1)

    def extra_state(self) -> dict:
        if self.teacher is None:
            return {}
        state = {"teacher": self.teacher.state_dict(), "round": self.round, "rounds_done": self.rounds_done}
        for key in ("histogram", "thresholds"):
            if getattr(self, key) is not None:
                state[key] = getattr(self, key)
        return state

    def load_extra_state(self, state: dict) -> None:
        if "teacher" in state:
            self.teacher = copy.deepcopy(self.model)
            self.teacher.load_state_dict(state["teacher"])
            self.teacher.eval().requires_grad_(False)
            self.round, self.rounds_done = int(state["round"]), int(state["rounds_done"])
            self.histogram, self.thresholds = state.get("histogram"), state.get("thresholds")
