"""PIT Studio engine: data, models, the PIT method, training, evaluation and export.

Pure torch + numpy; it never imports Qt, so it runs headless and under torchrun.
"""
import os
from pathlib import Path

__version__ = "0.1.0"


def compile_cache() -> str:
    """The folder where torch.compile keeps its compiled kernels between runs."""
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


# torch.compile's cache (inductor and Triton kernels) goes to the user's cache folder, not torch's
# default under /tmp, which a reboot or a cluster job's private /tmp wipes: a warm cache turns
# minutes of compilation into seconds. Set here, before torch is imported, because importing it
# fills the variable with that default. A value the user set is kept.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pit-studio" / "torch-compile"))
