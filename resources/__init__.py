"""Data files that ship with PIT Studio: default configs, style sheet, icons, demo checkpoints."""
from importlib.resources import files


def resource(name: str):
    """A shipped resource as an importlib Traversable (use `.read_text()` / `.read_bytes()`)."""
    return files(__name__) / name
