"""PIT Studio's desktop application: PySide6 + pyqtgraph over the engine's public API."""
import os

# OpenMP threads that spin while they wait starve the event loop, and each other, on a busy
# machine: under load the window took 8-9 s instead of 1.2-1.4 s to show its first predictions
# (README, Reliability). Waiting threads sleep instead. This must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
