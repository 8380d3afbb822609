"""The trainer: source-only and PIT are the same loop with components switched on or off.

`Trainer(config, run_dir).run(on_event)` runs in the caller's thread and reports through
`events` dataclasses. `pause()`, `resume()` and `stop()` may be called from any thread; a stop
takes effect after the current optimizer step and leaves a checkpoint behind.

Reproducibility: every training sample is a numbered *draw* from an endless stream whose
order and augmentation are seeded by (seed, draw), so a run resumed from a checkpoint sees
exactly the batches the uninterrupted run would have seen, whatever the number of workers or
processes. Ranks take disjoint slices of each global batch (DistributedDataParallel-ready).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import random
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from pit_engine import compile_cache
from pit_engine import method as M
from pit_engine.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from pit_engine.classes import CITYSCAPES_CLASSES, EVAL_SUBSETS, IGNORE
from pit_engine.config import Config, is_device_name
from pit_engine.data.datasets import SegmentationDataset, open_dataset
from pit_engine.data.io import atomic_write
from pit_engine.data.transforms import Transform, get_normalization
from pit_engine.distributed import local_rank
from pit_engine.errors import UserError, out_of_memory
from pit_engine.evaluate import evaluate
from pit_engine.events import CheckpointSaved, Evaluated, Finished, Started, Step
from pit_engine.models import ImageDiscriminator, OutputDiscriminator, build_model


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


class Draws(Dataset):
    """Draw number -> (sample, augmentation): epoch e is a permutation seeded by (seed, e)."""

    def __init__(self, dataset: SegmentationDataset, seed: int):
        self.dataset, self.seed = dataset, seed
        self._epoch, self._perm = -1, None

    def __len__(self):
        return 2 ** 62

    def __getitem__(self, draw: int) -> dict:
        n = len(self.dataset)
        epoch, pos = divmod(draw, n)
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        generator = torch.Generator().manual_seed((self.seed * 2_654_435_761 + draw) % 2 ** 63)
        try:
            return self.dataset.get(int(self._perm[pos]), generator)
        except UserError as exc:  # handed to the trainer as data: a worker would wrap it in a traceback
            return {"error": exc}


def _collate(items: list[dict]) -> dict:
    for item in items:
        if "error" in item:  # the trainer raises it
            return item
    return default_collate(items)


def _next(iterator) -> dict:
    batch = next(iterator)
    if "error" in batch:
        raise batch["error"]
    return batch


class DrawSampler(Sampler):
    """This rank's draws, from a start step on: step s, rank r take draws
    s*B*W + r*B ... s*B*W + r*B + B-1, so the global batch does not depend on the world size."""

    def __init__(self, start_step: int, batch: int, rank: int = 0, world: int = 1):
        self.start_step, self.batch, self.rank, self.world = start_step, batch, rank, world

    def __iter__(self):
        step = self.start_step
        while True:
            first = step * self.batch * self.world + self.rank * self.batch
            yield from range(first, first + self.batch)
            step += 1

    def __len__(self):
        return 2 ** 62


def _loader(dataset, seed, start_step, batch, rank, world, workers, pin):
    return iter(DataLoader(Draws(dataset, seed), batch_size=batch, sampler=DrawSampler(start_step, batch, rank, world),
                           collate_fn=_collate, num_workers=workers, pin_memory=pin, persistent_workers=False,
                           prefetch_factor=4 if workers else None))


class Trainer:
    def __init__(self, config: Config, run_dir: str | Path | None = None, resume: bool = False, log=print):
        self.config = config
        self.run_dir = Path(run_dir) if run_dir else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
        self.resume_from = resume
        self.log_fn = log
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self.iteration = 0
        self.source_iter = self.target_iter = None
        self.regions_backend = "auto"  # region growing: torch on a GPU, OpenCV on the CPU (same labels)
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if distributed else 0
        self.world = dist.get_world_size() if distributed else 1
        self.is_main = self.rank == 0
        if self.world > 1:  # every rank uses rank 0's run directory (a default name holds a timestamp)
            shared = [str(self.run_dir)]
            dist.broadcast_object_list(shared, src=0)
            self.run_dir = Path(shared[0])

    # control, from any thread -------------------------------------------------------------
    def pause(self):
        self._running.clear()

    def resume(self):
        self._running.set()

    def stop(self):
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # the run ------------------------------------------------------------------------------
    def run(self, on_event=lambda event: None) -> Finished:
        self._emit = on_event
        try:
            self._setup()
            finished = self._loop()
        except UserError as exc:
            finished = Finished("failed", exc.line(), self.iteration)
        except torch.OutOfMemoryError as exc:
            finished = Finished("failed", out_of_memory(exc, f"iteration {self.iteration + 1}").line(), self.iteration)
        except Exception as exc:
            finished = self._failed(exc)
        finally:  # shut the loader workers down now, not whenever the garbage collector gets to them
            self.source_iter = self.target_iter = None
        self._log_event(f"finished: {finished.reason} {finished.message}".strip())
        if finished.traceback:
            self._log_event(finished.traceback)
        on_event(finished)
        return finished

    def _failed(self, exc: Exception) -> Finished:
        """An unexpected exception as the run's end: one line where the cause lies outside this
        program (the compiler's environment, another rank's failure), with the traceback in
        events.log; otherwise a bug, with its traceback."""
        if self.config.train.compile and isinstance(exc, torch._dynamo.exc.TorchDynamoException):
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            error = UserError(f"torch.compile failed: {first[:200]}", "train.compile",
                              "set train.compile = false (slower, same results)")
        elif self.world > 1 and _peer_gone(exc):  # that rank printed its own error
            error = UserError(f"another process of this run stopped (seen by rank {self.rank})",
                              f"iteration {self.iteration + 1}", "its own error is above; fix that and continue "
                              "with --resume")
        else:
            return Finished("failed", f"error: internal error: {exc!r}", self.iteration, traceback.format_exc())
        self._log_event(traceback.format_exc())
        return Finished("failed", error.line(), self.iteration)

    def _log_event(self, text: str) -> None:
        if self.is_main and self.run_dir.is_dir():
            with open(self.run_dir / "events.log", "a") as f:
                f.write(f"{datetime.now().isoformat(timespec='seconds')} {text}\n")

    def _metrics(self, record: dict) -> None:
        if self.is_main:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _setup(self) -> None:
        self.setup_model()
        self._setup_data()

    def setup_model(self) -> None:
        """Device, seeds, networks, optimizers and the fast path; no data (`pit bench` feeds its own)."""
        cfg = self.config
        self.device = resolve_device(cfg.train.device)
        if self.world > 1 and self.device.type == "cuda":  # one GPU per rank, as torchrun numbers them
            self.device = torch.device("cuda", local_rank())
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        seed = cfg.train.seed
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)

        self.model, weights_norm = build_model(cfg.model.backbone, len(CITYSCAPES_CLASSES), cfg.model.aspp_rates,
                                               cfg.model.aux, cfg.model.weights, log=self._say)
        norm = cfg.model.normalization
        self.normalization = get_normalization(weights_norm or "imagenet" if norm == "auto" else norm)
        self.model.to(self.device)
        m = cfg.method
        self.teacher = None
        self.d_out = OutputDiscriminator(self.model.num_classes, m.disc_width).to(self.device) if m.output_adv else None
        self.d_out_aux = OutputDiscriminator(self.model.num_classes, m.disc_width).to(self.device) \
            if m.output_adv and cfg.model.aux else None
        self.d_img = ImageDiscriminator(self.model.backbone.channels[1]).to(self.device) if m.align else None
        if not m.pivot:  # trained by nothing: frozen, so DistributedDataParallel expects no gradient for it
            self.model.pivot_head.requires_grad_(False)
        self._fast_path()
        self.optimizer = torch.optim.SGD(self.model.param_groups(cfg.train.lr, cfg.train.head_lr_mult),
                                         lr=cfg.train.lr, momentum=cfg.train.momentum,
                                         weight_decay=cfg.train.weight_decay)
        discs = [d for d in (self.d_out, self.d_out_aux, self.d_img) if d is not None]
        self.d_optimizer = torch.optim.Adam([p for d in discs for p in d.parameters()], lr=m.disc_lr,
                                            betas=(0.9, 0.99)) if discs else None

    def _setup_data(self) -> None:
        cfg, m, d, seed = self.config, self.config.method, self.config.data, self.config.train.seed
        for key, needed in (("source_root", True), ("target_root", m.adapts)):
            if needed and not getattr(d, key):
                raise UserError(f"data.{key} is not set", "config",
                                f"set it in the config or with --set data.{key}=\"DIR\"")
        crop = tuple(d.crop) or None
        self.source = open_dataset(d.source_kind, d.source_root, None,
                                   Transform(tuple(d.source_size), crop, d.flip, self.normalization.name))
        if not self.source.labelled:
            raise UserError("the source data set has no labels", d.source_root, "give a labelled source")
        self.target = None
        if m.adapts:
            self.target = open_dataset(d.target_kind, d.target_root, d.target_split if d.target_kind == "cityscapes"
                                       else None, Transform(tuple(d.target_size), crop, d.flip, self.normalization.name))
            if m.pivot_source == "oracle" and not self.target.labelled:
                raise UserError("the oracle pivot needs target labels", d.target_root,
                                "use method.pivot_source = \"inferred\"")
            if m.pivot_source != "oracle":  # unsupervised: never read target labels, not even to discard them
                self.target.samples = [dataclasses.replace(s, label=None) for s in self.target.samples]
        self.val = None
        val_root = d.val_root or d.target_root
        if val_root:  # every rank evaluates a share of the frames
            try:
                val = open_dataset(d.val_kind, val_root, d.val_split if d.val_kind == "cityscapes" else None)
                self.val = val if val.labelled else None
            except UserError as exc:
                self._say(f"no evaluation: {exc.line()}")
        if self.world > 1:  # the evaluation ends in an all-reduce: every rank takes part, or none
            everyone = torch.tensor([int(self.val is not None)], device=self.device)
            dist.all_reduce(everyone, op=dist.ReduceOp.MIN)
            if self.val is not None and not everyone.item():
                self.val = None
                self._say("no evaluation: the val data is not readable by every process of this run")
        self.subsets = EVAL_SUBSETS[d.source_kind]

        if self.resume_from:
            self._restore()
        else:
            if self.is_main:
                if (self.run_dir / "checkpoints").is_dir() and any((self.run_dir / "checkpoints").iterdir()):
                    raise UserError("run directory already holds checkpoints", self.run_dir,
                                    "continue it with --resume, or choose a new --out")
                self.run_dir.mkdir(parents=True, exist_ok=True)
                cfg.save(self.run_dir / "config.toml")
        self._log_event(f"started at iteration {self.iteration} on {self.device}"
                        + (f", torch.compile cache {compile_cache()}" if cfg.train.compile else ""))
        pin = self.device.type == "cuda"
        self.source_iter = _loader(self.source, seed, self.iteration, cfg.train.batch_size, self.rank, self.world,
                                   d.workers, pin)
        # the target stream is drawn from only after the warm-up: its step count lags behind
        self.target_iter = _loader(self.target, seed + 1, max(0, self.iteration - m.warmup), cfg.train.batch_size,
                                   self.rank, self.world, d.workers, pin) if self.target is not None else None

    def _fast_path(self) -> None:
        """Layout, mixed precision, compilation and DistributedDataParallel around the raw modules.

        `self.model` and the discriminators stay the plain modules (state dicts, evaluation, the
        teacher); `self.forward` and `self.disc_forward` are what the step calls. The step runs the
        wrapped modules in two passes, each with its own backward; the synchronised one (the
        source pass) uses every trainable parameter, so DDP needs no unused-parameter search."""
        cfg = self.config.train
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.amp = resolve_amp(cfg.amp, self.device)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.amp)
        if self.amp_dtype is torch.bfloat16 and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError("this GPU has no bf16", "train.amp", "use train.amp = \"fp16\" or \"auto\"")
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
        self.d_scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
        ids = [self.device.index] if self.device.type == "cuda" else None
        wrap = (lambda module: DistributedDataParallel(module, device_ids=ids)) if self.world > 1 else (lambda m: m)
        self.forward = wrap(self.model)
        self.disc_forward = {name: wrap(getattr(self, name)) for name in ("d_img", "d_out", "d_out_aux")
                             if getattr(self, name) is not None}
        self._ddp_modules = [self.forward, *self.disc_forward.values()] if self.world > 1 else []
        self._layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
        if self.device.type == "cuda":  # fixed frame sizes: let cuDNN pick its fastest (dilated) convolutions
            torch.backends.cudnn.benchmark = True
        if cfg.compile:  # static shapes: source and target sizes get a graph each, not one dynamic graph
            self._say("torch.compile: the first steps compile the network (minutes, or seconds from the cache "
                      f"in {compile_cache()})")
            self.forward = torch.compile(self.forward, dynamic=False)

    def _no_sync(self) -> contextlib.ExitStack:
        """DistributedDataParallel's gradient all-reduce held back for the network and the
        discriminators (nothing to hold back in one process)."""
        stack = contextlib.ExitStack()
        for module in self._ddp_modules:
            stack.enter_context(module.no_sync())
        return stack

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def _say(self, text: str) -> None:
        if self.is_main:
            self.log_fn(text)

    def _warn(self, text: str) -> None:
        """Said by whichever rank met it (each rank reads its own share of the evaluation frames)."""
        self.log_fn(text)
        self._log_event(text)

    # checkpoints ----------------------------------------------------------------------------
    def _state(self) -> dict:
        state = {
            "iteration": self.iteration,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": self.config.to_dict(),
            "classes": list(CITYSCAPES_CLASSES),
            "normalization": self.normalization.name,
            "rng": rng_state(),
        }
        if self.teacher is not None:
            state["teacher"] = self.teacher.state_dict()
        for name in ("d_out", "d_out_aux", "d_img", "d_optimizer"):
            part = getattr(self, name)
            if part is not None:
                state[name] = part.state_dict()
        return state

    def _save(self) -> None:
        if not self.is_main:
            return
        cfg = self.config.train
        path = save_checkpoint(self.run_dir / "checkpoints" / f"iter_{self.iteration:07d}.pt", self._state())
        for old in sorted((self.run_dir / "checkpoints").glob("iter_*.pt"))[:-max(cfg.keep_checkpoints, 1)]:
            old.unlink(missing_ok=True)
        self._log_event(f"checkpoint {path.name}")
        self._emit(CheckpointSaved(self.iteration, str(path)))

    def _restore(self) -> None:
        path = latest_checkpoint(self.run_dir)
        state = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for name in ("d_out", "d_out_aux", "d_img", "d_optimizer"):
            part = getattr(self, name)
            if part is not None and name in state:
                part.load_state_dict(state[name])
        if "teacher" in state:
            self.teacher = copy.deepcopy(self.model)
            self.teacher.load_state_dict(state["teacher"])
            self.teacher.eval().requires_grad_(False)
        self.iteration = state["iteration"]
        set_rng_state(state["rng"])
        if self.is_main:  # forget what was logged after the checkpoint: it is about to happen again
            metrics = self.run_dir / "metrics.jsonl"
            if metrics.is_file():
                keep = [line for line in metrics.read_text(errors="replace").splitlines()
                        if _logged_at_or_before(line, self.iteration)]  # a line cut by a crash is dropped
                atomic_write(metrics, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in keep)))
            for stale in (self.run_dir / "checkpoints").glob(".iter_*"):  # a write a crash interrupted
                stale.unlink(missing_ok=True)
        self._say(f"resumed {self.run_dir} from {path.name}")

    # the loop -------------------------------------------------------------------------------
    def _set_lr(self) -> float:
        cfg = self.config.train
        scale = (1 - self.iteration / cfg.iterations) ** cfg.poly_power
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * group.get("lr_mult", 1.0) * scale
        if self.d_optimizer is not None:
            for group in self.d_optimizer.param_groups:
                group["lr"] = self.config.method.disc_lr * scale
        return cfg.lr * scale

    def _loop(self) -> Finished:
        cfg = self.config
        total = cfg.train.iterations
        self._emit(Started(total, str(self.run_dir), self.iteration, str(self.device)))
        sums: dict[str, torch.Tensor] = {}
        window_start, window_steps = time.perf_counter(), 0
        rate = 0.0
        while self.iteration < total:
            if not self._running.is_set():
                self._running.wait()
            if self._stop.is_set():
                self._save()
                return Finished("stopped", f"stopped at iteration {self.iteration}", self.iteration)
            lr = self._set_lr()
            losses = self._step()
            self.iteration += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0) + v.detach()
            window_steps += 1
            if self.iteration % cfg.train.log_every == 0 or self.iteration == total:
                # one host-device sync per logging window, not per step
                values = self._window_means(sums, window_steps)
                bad = [k for k, v in values.items() if not math.isfinite(v)]
                if bad:
                    raise UserError(f"loss '{bad[0]}' is not finite at iteration {self.iteration}", self.run_dir,
                                    "lower train.lr or the loss weights; the last checkpoint is kept")
                now = time.perf_counter()
                rate = window_steps / max(now - window_start, 1e-9)
                window_start, window_steps, sums = now, 0, {}
                eta = (total - self.iteration) / max(rate, 1e-9)
                self._metrics({"kind": "step", "iteration": self.iteration, "lr": lr, **values})
                self._emit(Step(self.iteration, values, lr, rate, eta))
            last = self.iteration == total
            # the checkpoint first: whatever the evaluation meets, this iteration's weights are kept
            if last or cfg.train.checkpoint_every and self.iteration % cfg.train.checkpoint_every == 0:
                self._save()
            if self.val is not None and (last or cfg.train.eval_every and self.iteration % cfg.train.eval_every == 0):
                self._evaluate()
        return Finished("done", f"finished {total} iterations", self.iteration)

    def _window_means(self, sums: dict, steps: int) -> dict[str, float]:
        """Each loss term's mean over the window (and over the ranks: one all-reduce per window)."""
        names = sorted(sums)
        if not names:
            return {}
        stacked = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32, device=self.device) for k in names])
        if self.world > 1:
            dist.all_reduce(stacked)
            stacked /= self.world
        return dict(zip(names, (stacked / steps).tolist()))

    def _evaluate(self) -> None:
        cfg = self.config
        m = cfg.method
        result = evaluate(self.model, self.val, self.subsets, cfg.eval.size, self.normalization, self.device,
                          m.tau_lo, m.tau_hi, m.min_pixels, cfg.eval.max_frames, None, m.gwrp_decay, m.refresh_pivot,
                          cfg.data.workers, self.rank, self.world, warn=self._warn)
        self._metrics({"kind": "eval", "iteration": self.iteration, **result.to_dict()})
        scores = ", ".join(f"{k} {v:.4f}" for k, v in result.miou.items())
        self._log_event(f"evaluated at {self.iteration}: {scores} on {result.frames} frames"
                        + (f", {result.skipped} unreadable skipped" if result.skipped else ""))
        self._emit(Evaluated(self.iteration, result.primary, result.per_class, result.miou))

    def _step(self) -> dict[str, torch.Tensor]:
        """One optimizer step in two passes, target then source. Each pass back-propagates at
        once, first the generator's terms, then the discriminators' half on detached outputs. So
        only one domain's activations are alive at a time, and no network output is read after
        the next forward pass (CUDA-graph replays may reuse its memory). The gradients add up in
        .grad. Under DistributedDataParallel the target pass accumulates locally, and the source
        pass, which uses every trainable parameter, all-reduces the sums."""
        m = self.config.method
        src = _next(self.source_iter)
        self._discriminators_learn(False)  # the generator's adversarial terms must not train them
        self.optimizer.zero_grad(set_to_none=True)
        adapting = self.target is not None and self.iteration >= m.warmup
        train_d = adapting and self.d_optimizer is not None
        if train_d:
            self.d_optimizer.zero_grad(set_to_none=True)
        target, d_target = {}, None
        if adapting:
            with self._no_sync():
                target, d_target = self._target_pass(_next(self.target_iter), train_d)
        losses, d_source = self._source_pass(src, train_d)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        losses.update(target)
        if train_d:  # the discriminators learn source = 1, target = 0
            self.d_scaler.step(self.d_optimizer)
            self.d_scaler.update()
            losses["disc"] = d_source + d_target
        return losses

    def _target_pass(self, tgt: dict, train_d: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """The target's loss terms, back-propagated; then the discriminators' target half."""
        m = self.config.method
        xt = tgt["image"].to(self.device, non_blocking=True).contiguous(memory_format=self._layout)
        losses: dict[str, torch.Tensor] = {}
        with self._autocast():
            out_t = self.forward(xt)
            logits_t = _up(out_t.logits, xt).float()
            p_t = logits_t.softmax(1)
            # GWRP once per step: with gradients for L_img, detached for the pivot refresh
            pooled_t = M.gwrp(p_t, m.gwrp_decay, m.gwrp_topk) if m.image_level or m.refresh_pivot else None
            if m.image_level or m.pixel_level:
                state = self._target_pivot(out_t, p_t, pooled_t, tgt)
            if m.image_level:
                losses["img_tgt"] = m.lambda_img * M.image_level_loss(p_t, state, m.gwrp_decay, m.gwrp_topk,
                                                                      pooled=pooled_t)
            if m.pixel_level:
                # an all-ignore target gives a NaN mean; weighting by "any pseudo-label" keeps the
                # step free of a host-device sync
                pseudo = self._pseudo_labels(xt, p_t, state)
                any_valid = (pseudo != IGNORE).any()
                ce = F.cross_entropy(logits_t, pseudo, ignore_index=IGNORE)
                losses["pix"] = m.lambda_pix * torch.where(any_valid, ce, torch.zeros_like(ce))
            if self.d_img is not None:
                losses["align"] = m.lambda_align * M.adversarial_loss(self.d_img(out_t.features), real=True)
            if self.d_out is not None:
                losses["adv"] = m.lambda_adv * M.adversarial_loss(self.d_out(p_t), real=True)
                if self.d_out_aux is not None and out_t.aux is not None:
                    losses["adv_aux"] = m.lambda_adv_aux * M.adversarial_loss(
                        self.d_out_aux(_up(out_t.aux, xt).float().softmax(1)), real=True)
        if losses:
            self.scaler.scale(sum(losses.values())).backward()
        return losses, self._discriminator_half(out_t, logits_t, xt, real=False) if train_d else None

    def _source_pass(self, src: dict, train_d: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """The source's loss terms, back-propagated; then the discriminators' source half."""
        cfg, m = self.config, self.config.method
        xs = src["image"].to(self.device, non_blocking=True).contiguous(memory_format=self._layout)
        ys = src["label"].to(self.device, non_blocking=True)
        losses: dict[str, torch.Tensor] = {}
        with self._autocast():
            out_s = self.forward(xs)
            logits_s = _up(out_s.logits, xs).float()
            losses["seg"] = F.cross_entropy(logits_s, ys, ignore_index=IGNORE)
            if out_s.aux is not None:
                losses["seg_aux"] = cfg.model.aux_weight * F.cross_entropy(_up(out_s.aux, xs).float(), ys,
                                                                           ignore_index=IGNORE)
            v_s = M.category_vector(ys, self.model.num_classes, m.min_pixels)
            if m.pivot:
                losses["cls"] = m.lambda_cls * F.binary_cross_entropy_with_logits(out_s.pivot.float(), v_s)
            if m.image_level:
                losses["img_src"] = m.lambda_img * M.image_level_loss(logits_s.softmax(1), v_s, m.gwrp_decay,
                                                                      m.gwrp_topk)
        self.scaler.scale(sum(losses.values())).backward()
        return losses, self._discriminator_half(out_s, logits_s, xs, real=True) if train_d else None

    def _discriminator_half(self, out, logits: torch.Tensor, x: torch.Tensor, real: bool) -> torch.Tensor:
        """One domain's half of the discriminators' loss, on detached outputs, back-propagated into
        the discriminators alone (they change only at d_optimizer's step, after both halves)."""
        self._discriminators_learn(True)
        terms = []
        with self._autocast():
            if self.d_img is not None:
                terms.append(M.adversarial_loss(self.disc_forward["d_img"](out.features.detach()), real))
            if self.d_out is not None:
                terms.append(M.adversarial_loss(self.disc_forward["d_out"](logits.detach().softmax(1)), real))
            if self.d_out_aux is not None and out.aux is not None:
                aux = _up(out.aux, x).detach().float().softmax(1)
                terms.append(M.adversarial_loss(self.disc_forward["d_out_aux"](aux), real))
        loss = sum(terms)
        self.d_scaler.scale(loss).backward()
        self._discriminators_learn(False)
        return loss.detach()

    def _discriminators_learn(self, on: bool) -> None:
        for name in self.disc_forward:
            getattr(self, name).requires_grad_(on)

    def _target_pivot(self, out_t, p_t, pooled_t, batch) -> torch.Tensor:
        """The target category vector: 1 present, 0 absent, -1 unsure (skipped)."""
        m = self.config.method
        if m.pivot_source == "oracle":
            labels = batch["label"].to(self.device)
            return M.category_vector(labels, self.model.num_classes, m.min_pixels).long()
        return M.infer_pivot(out_t.pivot, p_t if m.refresh_pivot else None, m.tau_lo, m.tau_hi, m.gwrp_decay,
                             m.refresh_pivot, m.gwrp_topk, pooled=pooled_t if m.refresh_pivot else None)[2]

    @torch.no_grad()
    def _pseudo_labels(self, xt, p_t, state) -> torch.Tensor:
        """Region-grown labels from the weights of the last multiple of K iterations
        (K = 1: the current weights, whose probabilities this step already has)."""
        m = self.config.method
        if m.refresh_every == 1:
            prob = p_t.detach()
        else:
            if self.teacher is None or self.iteration % m.refresh_every == 0:
                self.teacher = copy.deepcopy(self.model).eval().requires_grad_(False)
            prob = _up(self.teacher(xt).logits, xt).float().softmax(1)
        labels, _ = M.expand_regions(prob, state, m.seed_threshold, m.grow_threshold, m.seed_ratio,
                                     self.regions_backend)
        return labels


def _peer_gone(exc: BaseException) -> bool:
    """A collective failed because another rank left: NCCL's and gloo's ways of saying so."""
    return isinstance(exc, dist.DistError) or "closed by peer" in str(exc) or "Connection reset by peer" in str(exc)


def _logged_at_or_before(line: str, iteration: int) -> bool:
    try:
        record = json.loads(line)
        return isinstance(record, dict) and record["iteration"] <= iteration
    except (ValueError, KeyError, TypeError):
        return False


def _up(logits, like):
    return F.interpolate(logits, size=like.shape[-2:], mode="bilinear", align_corners=False)
