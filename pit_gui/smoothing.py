"""The debiased exponential moving average drawn over noisy loss curves (as TensorBoard does)."""
from __future__ import annotations

import numpy as np


class Ema:
    """Smooths a growing series point by point; `extend` returns the smoothed new points.

    The running mean starts at zero, so it is divided by 1 - beta^n: without that the first
    points of every curve would be pulled towards zero."""

    def __init__(self, beta: float):
        self.beta = float(beta)
        self.mean = 0.0
        self.n = 0

    def extend(self, values) -> np.ndarray:
        out = np.empty(len(values), np.float64)
        b, mean, n = self.beta, self.mean, self.n
        for i, v in enumerate(values):
            if not np.isfinite(v):  # a gap stays a gap and does not poison what follows
                out[i] = np.nan
                continue
            n += 1
            mean = b * mean + (1 - b) * v
            out[i] = mean / (1 - b ** n) if b > 0 else v
        self.mean, self.n = mean, n
        return out


def ema(values, beta: float) -> np.ndarray:
    return Ema(beta).extend(values)
