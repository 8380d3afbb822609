"""The methods, by name: what `[method] name = "..."` chooses. Each module holds one method."""
from __future__ import annotations

from pit_engine.methods.adaptsegnet import AdaptSegNet
from pit_engine.methods.advent import AdvEnt
from pit_engine.methods.base import Method, Nets, Pass, adversarial_loss
from pit_engine.methods.cbst import CBST
from pit_engine.methods.minent import MinEnt
from pit_engine.methods.pit import PIT
from pit_engine.methods.source_only import SourceOnly
from pit_engine.methods.target_labels import TargetLabels

METHODS: dict[str, type[Method]] = {m.name: m for m in (SourceOnly, AdaptSegNet, MinEnt, AdvEnt, CBST, PIT,
                                                         TargetLabels)}


def build_method(method_config, aux_weight: float = 0.1) -> Method:
    """The method a config's [method] table names, with its own table's settings."""
    cls = METHODS[method_config.name]
    return cls(getattr(method_config, cls.name), aux_weight)


def loss_terms() -> list[str]:
    """Every loss term any method logs, in a stable order (the GUI's plots follow it)."""
    order = ["seg", "seg_aux"]
    for method in METHODS.values():
        order += [t for t in method.terms if t not in order]
    return order + ["disc"]


__all__ = ["METHODS", "Method", "Nets", "Pass", "adversarial_loss", "build_method", "loss_terms"]
