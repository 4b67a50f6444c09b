"""Large connected parts of a mask: what rule 0 of before/after change (clouds) and the
veils of change dating keep of their per-pixel tests (both are large; a new roof is not)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["large_parts"]


def large_parts(mask: np.ndarray, min_px: int) -> np.ndarray:
    """(y, x) bool: the 8-connected parts of `mask` of `min_px` pixels or more."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return np.zeros(mask.shape, bool)
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
    return np.r_[False, sizes >= min_px][labels]
