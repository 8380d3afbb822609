"""Where and how a run computes: the device a name means, and the mixed precision for it."""
from __future__ import annotations

import torch

from pit_engine.config import is_device_name
from pit_engine.errors import UserError


def resolve_device(name: str, where: str = "train.device") -> torch.device:
    """A device name as torch wants it; `where` names the setting the user gave it in."""
    if not is_device_name(name):
        raise UserError(f"unknown device '{name}'", where, "use auto, cpu, cuda or cuda:N")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device '{name}' asked for, but no CUDA GPU is available", where,
                            f"use {where} cpu (or auto)" if where.startswith("--") else
                            f"set {where} = \"cpu\" (or \"auto\")")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise UserError(f"no GPU {index}; this machine has {torch.cuda.device_count()}", where,
                            "pick an existing GPU index")
        return torch.device("cuda", index)  # indexed: torch.cuda.set_device refuses a bare "cuda"
    return torch.device(name)


def resolve_amp(amp: str, device: torch.device) -> str:
    """train.amp for a device: "auto" is bf16 on GPUs that have it, fp16 (with loss scaling) on
    older GPUs, and off on CPUs, where bf16 kernels are not faster everywhere."""
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "off"


def available_devices() -> list[tuple[str, str]]:
    """(config value, description) of every device this machine can train on."""
    found = [("auto", "auto (a GPU if there is one)"), ("cpu", "CPU")]
    if torch.cuda.is_available():
        found += [(f"cuda:{i}", f"cuda:{i} — {torch.cuda.get_device_name(i)}") for i in range(torch.cuda.device_count())]
    return found
