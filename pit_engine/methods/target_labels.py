"""Training on the target's own labels beside the source's: not an adaptation method but the
ceiling, which says how much of the gap between source-only and a supervised target model there
is to close. It reads the target labels that every UDA method must never see."""
from __future__ import annotations

from pit_engine.methods.base import Method, Nets, Pass, labelled_cross_entropy


class TargetLabels(Method):
    name = "target_labels"
    label = "target labels (ceiling, not UDA)"
    uda = False
    terms = ("seg_tgt",)

    def target_pass(self, nets: Nets, batch: dict, step: int) -> Pass:
        p = super().target_pass(nets, batch, step)
        p.losses["seg_tgt"] = labelled_cross_entropy(p.logits, batch["label"])
        return p
