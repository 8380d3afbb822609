"""A run directory: `RunWriter` writes it as a run goes (config.toml, metrics.jsonl, events.log,
checkpoints/); the rest reads it back, its resolved config and its metrics also while it grows."""
from __future__ import annotations

import json
import tomllib
from datetime import datetime
from pathlib import Path

from pit_engine.errors import UserError
from pit_engine.timeline import TimelineWriter


class RunWriter:
    """What a run writes, by rank 0 alone (`main`; other ranks' calls do nothing)."""

    def __init__(self, path: Path, main: bool = True):
        self.path, self.main = Path(path), main
        self.board = None  # a TensorBoard SummaryWriter, when the run asks for one

    def open_tensorboard(self) -> None:
        """TensorBoard event files in RUN/tensorboard beside metrics.jsonl, for the tools people
        already watch cluster runs with (`tensorboard --logdir RUN`)."""
        if not self.main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("train.tensorboard needs the tensorboard package", "train.tensorboard",
                            "pip install 'pit-studio[tensorboard]', or set train.tensorboard = false") from None
        self.board = SummaryWriter(str(self.path / "tensorboard"))

    def close(self) -> None:
        if self.board is not None:
            self.board.close()
            self.board = None

    def create(self, config) -> None:
        """A new run: never over one that holds checkpoints."""
        if not self.main:
            return
        checkpoints = self.path / "checkpoints"
        if checkpoints.is_dir() and any(checkpoints.iterdir()):
            raise UserError("run directory already holds checkpoints", self.path,
                            "continue it with --resume, or choose a new --out")
        self.path.mkdir(parents=True, exist_ok=True)
        config.save(self.path / "config.toml")

    def event(self, text: str) -> None:
        if self.main and self.path.is_dir():
            with open(self.path / "events.log", "a") as f:
                f.write(f"{datetime.now().isoformat(timespec='seconds')} {text}\n")

    def metrics(self, record: dict) -> None:
        if self.main:
            with open(self.path / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if self.board is not None:
                for tag, value in board_scalars(record):
                    self.board.add_scalar(tag, value, record["iteration"], walltime=record.get("time"))

    def checkpoint(self, iteration: int, state: dict, keep: int) -> Path:
        """Written atomically; only the newest `keep` stay."""
        from pit_engine.checkpoint import save_checkpoint

        path = save_checkpoint(self.path / "checkpoints" / f"iter_{iteration:07d}.pt", state)
        for old in sorted((self.path / "checkpoints").glob("iter_*.pt"))[:-max(keep, 1)]:
            old.unlink(missing_ok=True)
        self.event(f"checkpoint {path.name}")
        return path

    def rewind(self, iteration: int) -> None:
        """Back to a checkpoint's iteration: what metrics.jsonl logged after it (about to happen
        again) and a line a crash cut are forgotten, and interrupted writes removed."""
        if not self.main:
            return
        from pit_engine.data.io import atomic_write

        metrics = self.path / "metrics.jsonl"
        if metrics.is_file():
            keep = [line for line in metrics.read_text(errors="replace").splitlines() if _logged_by(line, iteration)]
            atomic_write(metrics, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in keep)))
        for stale in (self.path / "checkpoints").glob(".iter_*"):
            stale.unlink(missing_ok=True)
        TimelineWriter(self.path).rewind(iteration)


def _logged_by(line: str, iteration: int) -> bool:
    try:
        record = json.loads(line)
        return isinstance(record, dict) and record["iteration"] <= iteration
    except (ValueError, KeyError, TypeError):
        return False


def is_run_dir(path: str | Path) -> bool:
    path = Path(path)
    return (path / "config.toml").is_file() or (path / "metrics.jsonl").is_file()


def run_config(run_dir: str | Path) -> dict:
    """The run's resolved config as a dict (empty if the run has not written it yet)."""
    path = Path(run_dir) / "config.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"config.toml is not valid TOML: {exc}", path, "the run directory is damaged") from None


def run_method(run_dir: str | Path) -> str:
    """The method a run trains ("pit", "source_only", ...; "" when its config does not say)."""
    method = run_config(run_dir).get("method", {})
    return method.get("name", "") if isinstance(method, dict) else ""


def source_only_sibling(run_dir: str | Path) -> Path | None:
    """The source-only run beside this one, its baseline (`pit demo` writes OUT/source_only beside
    OUT/pit, or OUT/source_only_seed11 beside OUT/pit_seed11: the same seed first). None when there
    is none, or when this run is itself source-only."""
    run_dir = Path(run_dir)

    def source_only(path: Path) -> bool:
        try:
            return path.is_dir() and is_run_dir(path) and run_method(path) == "source_only"
        except (OSError, UserError):
            return False  # a damaged or unreadable run is nobody's baseline
    if source_only(run_dir):
        return None
    try:
        found = [p for p in run_dir.parent.iterdir() if p != run_dir and source_only(p)]
    except OSError:
        return None
    seed = run_dir.name.rpartition("_seed")[2] if "_seed" in run_dir.name else None
    found.sort(key=lambda p: (seed is None or not p.name.endswith(f"_seed{seed}"), p.name))
    return found[0] if found else None


class MetricsReader:
    """Reads the records appended to a run's metrics.jsonl since the last call.

    A line still being written (no newline yet) is left for the next call; a resumed run that
    rewrote the file (it forgets records after its checkpoint) is read again from the start."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.offset = 0
        self.restarted = False  # set when the last read found the file rewritten

    def read(self) -> list[dict]:
        self.restarted = False
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            self.offset, self.restarted = 0, True
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        end = data.rfind(b"\n") + 1
        self.offset += end
        records = []
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # a damaged line costs one point of a curve, not the run
            if isinstance(record, dict) and "iteration" in record:
                records.append(record)
        return records


def board_scalars(record: dict) -> list[tuple[str, float]]:
    """A metrics record's scalars as TensorBoard tags: loss/seg, lr, eval/mIoU19, health/mean_iou."""
    kind = record.get("kind")
    if kind == "step":
        return [("lr" if k == "lr" else f"loss/{k}", float(v)) for k, v in record.items()
                if k not in ("kind", "iteration", "time") and isinstance(v, (int, float))]
    if kind == "eval":
        return [(f"eval/{k}", float(v)) for k, v in (record.get("miou") or {}).items() if v is not None]
    if kind == "health":
        return [(f"health/{k}", float(v)) for k, v in record.items()
                if (k.startswith("mean_") or k == "pl_coverage") and isinstance(v, (int, float))]
    return []
