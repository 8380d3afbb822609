"""Source only: supervised training on the source, no target frame seen. The baseline every
adaptation is measured against."""
from __future__ import annotations

from pit_engine.methods.base import Method


class SourceOnly(Method):
    name = "source_only"
    label = "source only"
    adapts = False
