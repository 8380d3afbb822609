"""Data files that ship with PIT Studio: default configs, demo checkpoints and frames."""
from importlib.resources import files
from pathlib import Path


def resource(name: str) -> Path:
    """The path of a shipped resource (the package is always installed unzipped)."""
    return Path(str(files(__name__) / name))
