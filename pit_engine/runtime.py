"""Where and how a run computes: the device a name means, its mixed precision, and the `Runtime`
that wraps a run's modules for them."""
from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from pit_engine.config import is_device_name
from pit_engine.distributed import local_rank
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


def training_device(name: str, world: int) -> torch.device:
    """The device this process trains on: train.device, and under torchrun one GPU per rank, as
    torchrun numbers them; a GPU is made the current one."""
    device = resolve_device(name)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


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


class Runtime:
    """A run's device, mixed precision, memory layout, loss scaling, compilation and
    DistributedDataParallel: what wraps the raw modules, never part of them (state dicts,
    evaluation and a teacher use the plain modules)."""

    def __init__(self, train, device: torch.device, world: int = 1):
        self.device = device
        self.amp = resolve_amp(train.amp, device)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.amp)
        if self.amp_dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError("this GPU has no bf16", "train.amp", "use train.amp = \"fp16\" or \"auto\"")
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == "fp16")
        self.d_scaler = torch.amp.GradScaler(device.type, enabled=self.amp == "fp16")
        self.layout = torch.channels_last if train.channels_last else torch.contiguous_format
        self.world = world
        self.ddp_modules: list = []
        if device.type == "cuda":  # fixed frame sizes: let cuDNN pick its fastest (dilated) convolutions
            torch.backends.cudnn.benchmark = True

    def wrap(self, module):
        """The module as a step calls it: under DistributedDataParallel with several processes."""
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        wrapped = DistributedDataParallel(module, device_ids=ids)
        self.ddp_modules.append(wrapped)
        return wrapped

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def no_sync(self) -> contextlib.ExitStack:
        """DDP's gradient all-reduce held back for every wrapped module (nothing in one process)."""
        stack = contextlib.ExitStack()
        for module in self.ddp_modules:
            stack.enter_context(module.no_sync())
        return stack


def explain_failure(exc: BaseException, compiled: bool, world: int, rank: int, iteration: int) -> UserError | None:
    """An unexpected exception as one line where its cause lies outside this program (the
    compiler's environment, another rank's failure); None for a bug."""
    if compiled and isinstance(exc, torch._dynamo.exc.TorchDynamoException):
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        return UserError(f"torch.compile failed: {first[:200]}", "train.compile",
                         "set train.compile = false (slower, same results)")
    # a collective failed because another rank left (NCCL's and gloo's ways of saying so); it said why
    if world > 1 and (isinstance(exc, dist.DistError) or "closed by peer" in str(exc)
                      or "Connection reset by peer" in str(exc)):
        return UserError(f"another process of this run stopped (seen by rank {rank})", f"iteration {iteration + 1}",
                         "its own error is above; fix that and continue with --resume")
    return None
