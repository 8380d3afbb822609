"""Reading files that torch.save wrote: the quick check of a file's first bytes, the weights-only
load (which never runs code from a file) and torch's failure reasons shortened to one line.

Below both models.py (weights files) and checkpoint.py (checkpoints): it imports neither.
"""
from __future__ import annotations

from pathlib import Path

import torch

from pit_engine.errors import UserError


def is_torch_file(path: Path) -> bool:
    """Whether a file starts as torch.save writes: a zip archive, or (the legacy format) a pickle."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def load_failure(exc: Exception) -> str:
    """torch's reason, shortened to what a user can act on."""
    text = str(exc).strip()
    if "Weights only load failed" in text:
        detail = next((line.strip() for line in text.splitlines() if line.strip().startswith("Unsupported")), "")
        return "refused by the weights-only loader, which never runs code from a file" + \
            (f" ({detail[:80]})" if detail else "")
    if "zip archive" in text:
        return "not a complete torch file (truncated or damaged)"
    return text.splitlines()[0][:160] if text else type(exc).__name__


def safe_load(path: Path, not_torch: tuple[str, str], cannot: tuple[str, str], map_location="cpu"):
    """What torch.save wrote to `path`, loaded weights-only. `not_torch` is the error and its hint
    for a file that is no torch file at all, `cannot` the error's start and its hint for one that
    torch cannot load (torch's reason follows, in one line)."""
    if not is_torch_file(path):
        raise UserError(not_torch[0], path, not_torch[1])
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, refused globals
        raise UserError(f"{cannot[0]}: {load_failure(exc)}", path, cannot[1]) from None


def read_weights(path: Path) -> dict:
    """A weights file's state dict of tensors (`model.weights`, `pit import`); one wrapped in a
    `state_dict` or `model` entry is unwrapped."""
    if not path.is_file():
        raise UserError("weights file not found", path, "give a local .pth file; nothing is downloaded")
    state = safe_load(path, ("not a PyTorch weights file", "give a .pth file saved by torch (a torchvision ResNet, "
                                                            "the DeepLab init file or a trained DeepLab model)"),
                      ("cannot load weights", "give a torchvision ResNet state dict, the DeepLab init file or a "
                                              "trained DeepLab model"))
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError("weights file holds no state dict of tensors", path, "give a ResNet state dict")
    return state
