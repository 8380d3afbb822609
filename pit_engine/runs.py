"""Reading a run directory back: its resolved config and its `metrics.jsonl`, also while it grows."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pit_engine.errors import UserError


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
