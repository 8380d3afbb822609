"""The trainer: the loop that runs any method (pit_engine/methods) the same way.

It owns the runtime (device, precision, compile, DistributedDataParallel), the numbered data
draws, the schedule (warm-up, poly learning rate), events, checkpoints and the run directory.
`Trainer(config, run_dir).run(on_event)` runs in the caller's thread and reports through `events`
dataclasses. `pause()`, `resume()` and `stop()` may be called from any thread; a stop takes
effect after the current optimizer step and leaves a checkpoint behind.
"""
from __future__ import annotations

import contextlib
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
from torch.nn.parallel import DistributedDataParallel

from pit_engine import compile_cache
from pit_engine.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from pit_engine.classes import CITYSCAPES_CLASSES, EVAL_SUBSETS
from pit_engine.config import Config
from pit_engine.data.datasets import open_dataset
from pit_engine.data.draws import draw_loader, next_batch
from pit_engine.data.io import atomic_write
from pit_engine.data.transforms import Transform, get_normalization
from pit_engine.distributed import local_rank
from pit_engine.errors import UserError, out_of_memory
from pit_engine.evaluate import evaluate
from pit_engine.events import CheckpointSaved, Evaluated, Finished, Started, Step
from pit_engine.methods import Nets, adversarial_loss, build_method
from pit_engine.models import build_model
from pit_engine.runtime import resolve_amp, resolve_device


class Trainer:
    def __init__(self, config: Config, run_dir: str | Path | None = None, resume: bool = False, log=print):
        self.config, self.resume_from, self.log_fn = config, resume, log
        self.run_dir = Path(run_dir) if run_dir else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
        self._running, self._stop = threading.Event(), threading.Event()
        self._running.set()
        self.iteration = 0
        self.source_iter = self.target_iter = None
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
            self.setup_model()
            self._setup_data()
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

    def _say(self, text: str) -> None:
        if self.is_main:
            self.log_fn(text)

    def _warn(self, text: str) -> None:
        """Said by whichever rank met it (each rank reads its own share of the evaluation frames)."""
        self.log_fn(text)
        self._log_event(text)

    def setup_model(self) -> None:
        """Device, seeds, the network, the method and its modules, optimizers and the fast path;
        no data (`pit bench` feeds its own batches to `step`)."""
        cfg = self.config
        for note in cfg.notes:
            self._say(note)
        self.device = resolve_device(cfg.train.device)
        if self.world > 1 and self.device.type == "cuda":  # one GPU per rank, as torchrun numbers them
            self.device = torch.device("cuda", local_rank())
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        torch.manual_seed(cfg.train.seed)
        np.random.seed(cfg.train.seed)
        random.seed(cfg.train.seed)
        self.model, weights_norm = build_model(cfg.model.backbone, len(CITYSCAPES_CLASSES), cfg.model.aspp_rates,
                                               cfg.model.aux, cfg.model.weights, log=self._say)
        norm = cfg.model.normalization
        self.normalization = get_normalization(weights_norm or "imagenet" if norm == "auto" else norm)
        self.model.to(self.device)
        self.method = build_method(cfg.method, cfg.model.aux_weight)
        self.modules = {name: module.to(self.device) for name, module in self.method.attach(self.model).items()}
        self._fast_path()
        self.optimizer = torch.optim.SGD(self.model.param_groups(cfg.train.lr, cfg.train.head_lr_mult),
                                         lr=cfg.train.lr, momentum=cfg.train.momentum,
                                         weight_decay=cfg.train.weight_decay)
        self.d_optimizer = torch.optim.Adam([p for d in self.modules.values() for p in d.parameters()],
                                            lr=self.method.disc_lr, betas=(0.9, 0.99)) if self.modules else None

    def _setup_data(self) -> None:
        cfg, d, seed, method = self.config, self.config.data, self.config.train.seed, self.method
        for key, needed in (("source_root", True), ("target_root", method.adapts)):
            if needed and not getattr(d, key):
                raise UserError(f"data.{key} is not set", "config", f"set it in the config or with --set data.{key}=\"DIR\"")
        crop = tuple(d.crop) or None
        self.source = open_dataset(d.source_kind, d.source_root, None,
                                   Transform(tuple(d.source_size), crop, d.flip, self.normalization.name))
        if not self.source.labelled:
            raise UserError("the source data set has no labels", d.source_root, "give a labelled source")
        self.target = None
        if method.adapts:
            self.target = open_dataset(d.target_kind, d.target_root, d.target_split if d.target_kind == "cityscapes"
                                       else None, Transform(tuple(d.target_size), crop, d.flip, self.normalization.name))
            if method.reads_target_labels and not self.target.labelled:
                raise UserError(f"method '{cfg.method.name}' as configured needs target labels", d.target_root,
                                "give a labelled target split, or an unsupervised method or setting")
            if not method.reads_target_labels:  # unsupervised: never read target labels, not even to discard them
                self.target.samples = [dataclasses.replace(s, label=None) for s in self.target.samples]
        self.val = None
        if d.val_root or d.target_root:  # every rank evaluates a share of the frames
            try:
                val = open_dataset(d.val_kind, d.val_root or d.target_root, d.val_split if d.val_kind == "cityscapes"
                                   else None)
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
        elif self.is_main:
            if (self.run_dir / "checkpoints").is_dir() and any((self.run_dir / "checkpoints").iterdir()):
                raise UserError("run directory already holds checkpoints", self.run_dir,
                                "continue it with --resume, or choose a new --out")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.run_dir / "config.toml")
        self._log_event(f"started at iteration {self.iteration} on {self.device}, method {cfg.method.name}"
                        + (f", torch.compile cache {compile_cache()}" if cfg.train.compile else ""))
        pin, t = self.device.type == "cuda", cfg.train
        self.source_iter = draw_loader(self.source, seed, self.iteration, t.batch_size, self.rank, self.world,
                                       d.workers, pin)
        # the target stream is drawn from only after the warm-up: its step count lags behind
        self.target_iter = draw_loader(self.target, seed + 1, max(0, self.iteration - t.warmup), t.batch_size,
                                       self.rank, self.world, d.workers, pin) if self.target is not None else None

    def _fast_path(self) -> None:
        """Layout, mixed precision, compilation and DistributedDataParallel around the raw modules.

        `self.model` and `self.modules` stay the plain modules (state dicts, evaluation, a
        teacher); `self.nets.forward` and `self.disc_forward` are what the step calls. The step
        runs them in two passes, each with its own backward; the synchronised one (the source
        pass) uses every trainable parameter, so DDP needs no unused-parameter search."""
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
        self.nets = Nets(wrap(self.model))
        self.disc_forward = {name: wrap(module) for name, module in self.modules.items()}
        self._ddp_modules = [self.nets.forward, *self.disc_forward.values()] if self.world > 1 else []
        self.layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
        if self.device.type == "cuda":  # fixed frame sizes: let cuDNN pick its fastest (dilated) convolutions
            torch.backends.cudnn.benchmark = True
        if cfg.compile:  # static shapes: source and target sizes get a graph each, not one dynamic graph
            self._say("torch.compile: the first steps compile the network (minutes, or seconds from the cache "
                      f"in {compile_cache()})")
            self.nets.forward = torch.compile(self.nets.forward, dynamic=False)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None)

    # checkpoints ----------------------------------------------------------------------------
    def _state(self) -> dict:
        state = {"iteration": self.iteration, "method": self.config.method.name, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "config": self.config.to_dict(),
                 "classes": list(CITYSCAPES_CLASSES), "normalization": self.normalization.name, "rng": rng_state(),
                 **{name: module.state_dict() for name, module in self.modules.items()},
                 **self.method.extra_state()}
        if self.d_optimizer is not None:
            state["d_optimizer"] = self.d_optimizer.state_dict()
        return state

    def _save(self) -> None:
        if not self.is_main:
            return
        path = save_checkpoint(self.run_dir / "checkpoints" / f"iter_{self.iteration:07d}.pt", self._state())
        for old in sorted((self.run_dir / "checkpoints").glob("iter_*.pt"))[:-max(self.config.train.keep_checkpoints, 1)]:
            old.unlink(missing_ok=True)
        self._log_event(f"checkpoint {path.name}")
        self._emit(CheckpointSaved(self.iteration, str(path)))

    def _restore(self) -> None:
        path = latest_checkpoint(self.run_dir)
        state = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for name, part in (*self.modules.items(), ("d_optimizer", self.d_optimizer)):
            if part is not None and name in state:
                part.load_state_dict(state[name])
        self.method.load_extra_state(state)
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
        for group in self.d_optimizer.param_groups if self.d_optimizer is not None else ():
            group["lr"] = self.method.disc_lr * scale
        return cfg.lr * scale

    def _loop(self) -> Finished:
        cfg = self.config.train
        self._emit(Started(cfg.iterations, str(self.run_dir), self.iteration, str(self.device)))
        sums: dict[str, torch.Tensor] = {}
        window_start, window_steps = time.perf_counter(), 0
        while self.iteration < cfg.iterations:
            if not self._running.is_set():
                self._running.wait()
            if self._stop.is_set():
                self._save()
                return Finished("stopped", f"stopped at iteration {self.iteration}", self.iteration)
            lr = self._set_lr()
            adapting = self.target is not None and self.iteration >= cfg.warmup
            losses = self.step(next_batch(self.source_iter), next_batch(self.target_iter) if adapting else None)
            self.iteration += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0) + v.detach()
            window_steps += 1
            last = self.iteration == cfg.iterations
            if self.iteration % cfg.log_every == 0 or last:  # one host-device sync per logging window
                values = self._window_means(sums, window_steps)
                bad = [k for k, v in values.items() if not math.isfinite(v)]
                if bad:
                    raise UserError(f"loss '{bad[0]}' is not finite at iteration {self.iteration}", self.run_dir,
                                    "lower train.lr or the loss weights; the last checkpoint is kept")
                now = time.perf_counter()
                rate = window_steps / max(now - window_start, 1e-9)
                window_start, window_steps, sums = now, 0, {}
                self._metrics({"kind": "step", "iteration": self.iteration, "lr": lr, **values})
                self._emit(Step(self.iteration, values, lr, rate, (cfg.iterations - self.iteration) / max(rate, 1e-9)))
            # the checkpoint first: whatever the evaluation meets, this iteration's weights are kept
            if last or cfg.checkpoint_every and self.iteration % cfg.checkpoint_every == 0:
                self._save()
            if self.val is not None and (last or cfg.eval_every and self.iteration % cfg.eval_every == 0):
                self._evaluate()
        return Finished("done", f"finished {cfg.iterations} iterations", self.iteration)

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
        result = evaluate(self.model, self.val, self.subsets, cfg.eval.size, self.normalization, self.device,
                          self.method if self.method.has_pivot else None, cfg.eval.max_frames, workers=cfg.data.workers,
                          rank=self.rank, world=self.world, warn=self._warn)
        self._metrics({"kind": "eval", "iteration": self.iteration, **result.to_dict()})
        scores = ", ".join(f"{k} {v:.4f}" for k, v in result.miou.items())
        self._log_event(f"evaluated at {self.iteration}: {scores} on {result.frames} frames"
                        + (f", {result.skipped} unreadable skipped" if result.skipped else ""))
        self._emit(Evaluated(self.iteration, result.primary, result.per_class, result.miou))

    def step(self, source: dict, target: dict | None = None) -> dict[str, torch.Tensor]:
        """One optimizer step on a source batch and, when adapting, a target batch; returns the
        loss terms. Two passes, target then source, each back-propagated at once (the
        generator's terms, then the discriminators' half on detached outputs): one domain's
        activations are alive at a time, and no network output is read after the next forward
        pass (CUDA-graph replays may reuse its memory). The gradients add up in .grad; under DDP
        the target pass accumulates locally and the source pass all-reduces the sums."""
        self._discriminators_learn(False)  # the generator's adversarial terms must not train them
        self.optimizer.zero_grad(set_to_none=True)
        train_d = target is not None and self.d_optimizer is not None
        if train_d:
            self.d_optimizer.zero_grad(set_to_none=True)
        target_losses, d_target = {}, None
        if target is not None:
            with self._no_sync():
                target_losses, d_target = self._pass(target, train_d, real=False)
        losses, d_source = self._pass(source, train_d, real=True)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        losses.update(target_losses)
        if train_d:  # the discriminators learn source = 1, target = 0
            self.d_scaler.step(self.d_optimizer)
            self.d_scaler.update()
            losses["disc"] = d_source + d_target
        return losses

    def _pass(self, batch: dict, train_d: bool, real: bool) -> tuple[dict, torch.Tensor | None]:
        """One domain's terms, back-propagated; then the discriminators' half of that domain,
        back-propagated into the discriminators alone (they change only at d_optimizer's step)."""
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
        batch["image"] = batch["image"].contiguous(memory_format=self.layout)
        with self.autocast():
            p = self.method.source_pass(self.nets, batch) if real else \
                self.method.target_pass(self.nets, batch, self.iteration)
        if p.losses:
            self.scaler.scale(sum(p.losses.values())).backward()
        if not train_d:
            return p.losses, None
        self._discriminators_learn(True)
        with self.autocast():
            loss = sum(adversarial_loss(self.disc_forward[name](x), real)
                       for name, x in self.method.discriminator_inputs(p).items())
        self.d_scaler.scale(loss).backward()
        self._discriminators_learn(False)
        return p.losses, loss.detach()

    def _discriminators_learn(self, on: bool) -> None:
        for module in self.modules.values():
            module.requires_grad_(on)

    def _no_sync(self) -> contextlib.ExitStack:
        """DDP's gradient all-reduce held back for the network and the discriminators."""
        stack = contextlib.ExitStack()
        for module in self._ddp_modules:
            stack.enter_context(module.no_sync())
        return stack


def _peer_gone(exc: BaseException) -> bool:
    """A collective failed because another rank left: NCCL's and gloo's ways of saying so."""
    return isinstance(exc, dist.DistError) or "closed by peer" in str(exc) or "Connection reset by peer" in str(exc)


def _logged_at_or_before(line: str, iteration: int) -> bool:
    try:
        record = json.loads(line)
        return isinstance(record, dict) and record["iteration"] <= iteration
    except (ValueError, KeyError, TypeError):
        return False
