"""The two composites of before/after change as arrays: the bands stacked, normalised
differences, and rule 1 (one date matched to the other over the whole site)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from nampo.products.variables import COMPOSITE_BANDS

__all__ = ["match_to", "nd", "stack_bands"]


def stack_bands(ds: xr.Dataset) -> np.ndarray:
    """(6, y, x) float64 of the composite bands, in :data:`COMPOSITE_BANDS` order."""
    return np.stack([np.asarray(ds[b].values, dtype="float64") for b in COMPOSITE_BANDS])


def nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalised difference ``(a - b) / (a + b)`` (NaN or inf where ``a + b`` is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a - b) / (a + b)


def match_to(after: np.ndarray, before: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """`after` moved and scaled to `before`'s median and interquartile range."""
    qa = np.percentile(after[valid], [25, 50, 75])
    qb = np.percentile(before[valid], [25, 50, 75])
    spread = qa[2] - qa[0]
    gain = (qb[2] - qb[0]) / spread if spread > 0 else 1.0
    return (after - qa[1]) * gain + qb[1]
