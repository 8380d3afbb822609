"""The trainer: the loop that runs any method (pit_engine/methods) the same way, with its runtime
(device, precision, compile, DDP), data draws, schedule, events, checkpoints and run directory.

`Trainer(config, run_dir).run(on_event)` runs in the caller's thread and reports through `events`
dataclasses. `pause()`, `resume()` and `stop()` may be called from any thread; a stop takes
effect after the current optimizer step and leaves a checkpoint behind."""
from __future__ import annotations

import math
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path

import torch
import torch.distributed as dist

from pit_engine import compile_cache
from pit_engine.checkpoint import latest_checkpoint, load_checkpoint, rng_state, seed_everything, set_rng_state
from pit_engine.classes import ABSENT_CLASSES, CITYSCAPES_CLASSES, EVAL_SUBSETS
from pit_engine.config import Config
from pit_engine.data.draws import draw_loader, next_batch, open_training_data
from pit_engine.data.transforms import get_normalization
from pit_engine.distributed import everyone, mean_over_ranks
from pit_engine.errors import UserError, out_of_memory
from pit_engine.evaluate import evaluate
from pit_engine.events import CheckpointSaved, Evaluated, Finished, Health, Started, Step
from pit_engine.health import open_health_probe
from pit_engine.methods import Nets, adversarial_loss, build_method
from pit_engine.models import build_model
from pit_engine.optimizers import build_optimizers, set_poly_lr
from pit_engine.runs import RunWriter
from pit_engine.runtime import Runtime, explain_failure, training_device
from pit_engine.timeline import start_timeline


class Trainer:
    def __init__(self, config: Config, run_dir: str | Path | None = None, resume: bool = False, log=print):
        self.config, self.resume_from, self.log_fn = config, resume, log
        self.run_dir = Path(run_dir) if run_dir else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
        self._running, self._stop = threading.Event(), threading.Event()
        self._running.set()
        self.iteration = 0
        self.source_iter = self.target_iter = None
        self.timeline = None  # the run's timeline writer, with health steps (pit_engine/timeline.py)
        self.unknown_ids = {"frames": 0, "pixels": 0}  # label pixels of ids the data set does not define
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if distributed else 0
        self.world = dist.get_world_size() if distributed else 1
        self.is_main = self.rank == 0
        if self.world > 1:  # every rank uses rank 0's run directory (a default name holds a timestamp)
            shared = [str(self.run_dir)]
            dist.broadcast_object_list(shared, src=0)
            self.run_dir = Path(shared[0])
        self.out = RunWriter(self.run_dir, self.is_main)

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
        except Exception as exc:  # one line where the cause lies outside this program, else a bug
            error = explain_failure(exc, self.config.train.compile, self.world, self.rank, self.iteration)
            if error:
                self.out.event(traceback.format_exc())
            finished = Finished("failed", error.line() if error else f"error: internal error: {exc!r}",
                                self.iteration, None if error else traceback.format_exc())
        finally:  # shut the loader workers down now, not whenever the garbage collector gets to them
            self.source_iter = self.target_iter = None
            if self.timeline is not None:
                self.timeline.flush()  # the last step on disk before the run says it ended
            self.out.close()
        if self.unknown_ids["frames"]:
            self._warn(f"warning: {self.unknown_ids['frames']} frame draw(s) of this process held label ids the data "
                       f"set does not define ({self.unknown_ids['pixels']:,d} pixels), read as ignore")
        # the message says how it ended ("finished 500 iterations", "stopped at iteration 391")
        self.out.event(finished.message if finished.reason != "failed" else f"failed: {finished.message}")
        if finished.traceback:
            self.out.event(finished.traceback)
        on_event(finished)
        return finished

    def _say(self, text: str) -> None:
        if self.is_main:
            self.log_fn(text)

    def _warn(self, text: str) -> None:
        """Said by whichever rank met it (each rank reads its own share of the evaluation frames)."""
        self.log_fn(text)
        self.out.event(text)

    def setup_model(self) -> None:
        """Device, seeds, the network, the method and its modules, optimizers and the fast path;
        no data (`pit bench` feeds its own batches to `step`)."""
        cfg = self.config
        for note in cfg.notes:
            self._say(note)
        self.device = training_device(cfg.train.device, self.world)
        seed_everything(cfg.train.seed)
        self.model, weights_norm = build_model(cfg.model.backbone, len(CITYSCAPES_CLASSES), cfg.model.aspp_rates,
                                               cfg.model.aux, cfg.model.weights, log=self._say,
                                               layout=cfg.model.layout, batchnorm=cfg.model.batchnorm,
                                               absent_classes=ABSENT_CLASSES.get(cfg.data.source_kind, ()))
        norm = cfg.model.normalization
        self.normalization = get_normalization(weights_norm or "imagenet" if norm == "auto" else norm)
        self.model.to(self.device)
        self.method = build_method(cfg.method, cfg.model.aux_weight)
        self.modules = {name: module.to(self.device) for name, module in self.method.attach(self.model).items()}
        self.runtime = runtime = Runtime(cfg.train, self.device, self.world)
        if cfg.train.channels_last:
            self.model.to(memory_format=torch.channels_last)
        # what the step calls: the wrapped modules; state dicts, evaluation and a teacher use the plain ones
        self.nets = Nets(runtime.wrap(self.model))
        self.disc_forward = {name: runtime.wrap(module) for name, module in self.modules.items()}
        if cfg.train.compile:  # static shapes: source and target sizes get a graph each, not one dynamic graph
            self._say(f"torch.compile: the first steps compile the network (minutes; seconds from {compile_cache()})")
            self.nets.forward = torch.compile(self.nets.forward, dynamic=False)
        self.optimizer, self.d_optimizer = build_optimizers(self.model, self.modules, cfg.train, self.method.disc_lr)

    def _setup_data(self) -> None:
        cfg, d, seed = self.config, self.config.data, self.config.train.seed
        self.source, self.target, self.val = open_training_data(cfg, self.method, self.normalization.name, self._say)
        if not everyone(self.val is not None, self.device, self.world) and self.val is not None:
            self.val = None  # the evaluation ends in an all-reduce: every rank takes part, or none
            self._say("no evaluation: the val data is not readable by every process of this run")
        self.subsets = EVAL_SUBSETS[d.source_kind]
        self.health = open_health_probe(cfg, self.normalization, self.device, self.model.num_classes, self._say) \
            if cfg.train.health_every and self.is_main and self.target is not None else None  # main process only
        if self.resume_from:
            self._restore()
        else:
            self.out.create(cfg)
        if self.health is not None and cfg.train.timeline:
            self.timeline = start_timeline(self.run_dir, self.health, CITYSCAPES_CLASSES[:self.model.num_classes])
        if cfg.train.tensorboard:
            self.out.open_tensorboard()
        self.out.event(f"started at iteration {self.iteration} on {self.device}, method {cfg.method.name}"
                        + (f", torch.compile cache {compile_cache()}" if cfg.train.compile else ""))
        pin, t = self.device.type == "cuda", cfg.train
        self.source_iter = draw_loader(self.source, seed, self.iteration, t.batch_size, self.rank, self.world,
                                       d.workers, pin)
        # the target stream is drawn from only after the warm-up: its step count lags behind
        self.target_iter = draw_loader(self.target, seed + 1, max(0, self.iteration - t.warmup), t.batch_size,
                                       self.rank, self.world, d.workers, pin) if self.target is not None else None

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
        path = self.out.checkpoint(self.iteration, self._state(), self.config.train.keep_checkpoints)
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
        self.out.rewind(self.iteration)
        self._say(f"resumed {self.run_dir} from {path.name}")

    # the loop -------------------------------------------------------------------------------
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
            lr = set_poly_lr(self.optimizer, self.d_optimizer, cfg, self.method.disc_lr, self.iteration)
            adapting = self.target is not None and self.iteration >= cfg.warmup
            source, target = next_batch(self.source_iter), next_batch(self.target_iter) if adapting else None
            for batch in (source, target):
                self._count_unknown_ids(batch)
            losses = self.step(source, target)
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
                wall = round(time.time(), 3)  # elapsed time on the curves' x axis, as TensorBoard's "relative"
                self.out.metrics({"kind": "step", "iteration": self.iteration, "time": wall, "lr": lr, **values})
                self._emit(Step(self.iteration, values, lr, rate, (cfg.iterations - self.iteration) / max(rate, 1e-9),
                                wall))
            # the checkpoint first: whatever the evaluation meets, this iteration's weights are kept
            if last or cfg.checkpoint_every and self.iteration % cfg.checkpoint_every == 0:
                self._save()
            if self.val is not None and (last or cfg.eval_every and self.iteration % cfg.eval_every == 0):
                self._evaluate()
            if self.health is not None and (last or self.iteration % cfg.health_every == 0):
                record = self.health.measure(self.model, self.method)
                wall = round(time.time(), 3)
                self.out.metrics({"kind": "health", "iteration": self.iteration, "time": wall, **record})
                if self.timeline is not None:  # reads what the measure kept: no forward pass, no random draws
                    self.timeline.write_step(self.iteration, self.health.mechanism())
                    if self.timeline.error:
                        self._warn(f"timeline: {self.timeline.error}")
                        self.timeline.error = None
                self._emit(Health(self.iteration, record, wall))
        return Finished("done", f"finished {cfg.iterations} iterations", self.iteration)

    def _count_unknown_ids(self, batch: dict | None) -> None:
        """An odd label id is read as ignore rather than ending a long run: said on the first
        frame that holds one, counted, and totalled when the run ends (`pit data check` lists them)."""
        counts = batch.get("unknown_ids") if batch is not None else None
        if counts is None or not bool((counts > 0).any()):
            return
        if not self.unknown_ids["frames"]:
            name = batch["name"][int((counts > 0).nonzero()[0])]
            self._warn(f"warning: the label of frame '{name}' holds ids the data set does not define; they are "
                       "read as ignore (this run counts such frames; `pit data check` lists them)")
        self.unknown_ids["frames"] += int((counts > 0).sum())
        self.unknown_ids["pixels"] += int(counts.sum())

    def _window_means(self, sums: dict, steps: int) -> dict[str, float]:
        """Each loss term's mean over the window (and over the ranks: one all-reduce per window)."""
        names = sorted(sums)
        if not names:
            return {}
        stacked = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32, device=self.device) for k in names])
        return dict(zip(names, (mean_over_ranks(stacked, self.world) / steps).tolist()))

    def _evaluate(self) -> None:
        cfg = self.config
        result = evaluate(self.model, self.val, self.subsets, cfg.eval.size, self.normalization, self.device,
                          self.method if self.method.has_pivot else None, cfg.eval.max_frames, workers=cfg.data.workers,
                          rank=self.rank, world=self.world, warn=self._warn)
        wall = round(time.time(), 3)
        self.out.metrics({"kind": "eval", "iteration": self.iteration, "time": wall, **result.to_dict()})
        scores = ", ".join(f"{k} {v:.4f}" for k, v in result.miou.items())
        d = cfg.data
        split = d.val_split if d.val_kind == "cityscapes" else d.val_kind  # as open_training_data opens it
        self.out.event(f"evaluated at {self.iteration}: {scores} on {result.frames} frames"
                        + (f", {result.skipped} unreadable skipped" if result.skipped else ""))
        self._emit(Evaluated(self.iteration, result.primary, result.per_class, result.miou, wall, split=split,
                             frames=result.frames))

    def step(self, source: dict, target: dict | None = None) -> dict[str, torch.Tensor]:
        """One optimizer step on a source batch and, when adapting, a target batch; returns the loss
        terms. Two passes, target then source, each back-propagated at once: one domain's activations
        are alive at a time, and no network output is read after the next forward pass (CUDA-graph
        replays may reuse it). Under DDP the target pass accumulates locally, the source pass syncs."""
        self._discriminators_learn(False)  # the generator's adversarial terms must not train them
        self.optimizer.zero_grad(set_to_none=True)
        train_d = target is not None and self.d_optimizer is not None
        if train_d:
            self.d_optimizer.zero_grad(set_to_none=True)
        target_losses, d_target = {}, None
        if target is not None:
            with self.runtime.no_sync():
                target_losses, d_target = self._pass(target, train_d, real=False)
        losses, d_source = self._pass(source, train_d, real=True)
        self.runtime.scaler.step(self.optimizer)
        self.runtime.scaler.update()
        losses.update(target_losses)
        if train_d:  # the discriminators learn source = 1, target = 0
            self.runtime.d_scaler.step(self.d_optimizer)
            self.runtime.d_scaler.update()
            losses["disc"] = d_source + d_target
        return losses

    def _pass(self, batch: dict, train_d: bool, real: bool) -> tuple[dict, torch.Tensor | None]:
        """One domain's terms, back-propagated; then the discriminators' half of that domain,
        back-propagated into the discriminators alone (they change only at d_optimizer's step)."""
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
        batch["image"] = batch["image"].contiguous(memory_format=self.runtime.layout)
        with self.runtime.autocast():
            p = self.method.source_pass(self.nets, batch) if real else \
                self.method.target_pass(self.nets, batch, self.iteration - self.config.train.warmup)
        if p.losses:
            self.runtime.scaler.scale(sum(p.losses.values())).backward()
        if not train_d:
            return p.losses, None
        self._discriminators_learn(True)
        with self.runtime.autocast():
            loss = sum(adversarial_loss(self.disc_forward[name](x), real)
                       for name, x in self.method.discriminator_inputs(p).items())
        self.runtime.d_scaler.scale(loss).backward()
        self._discriminators_learn(False)
        return p.losses, loss.detach()

    def _discriminators_learn(self, on: bool) -> None:
        for module in self.modules.values():
            module.requires_grad_(on)
