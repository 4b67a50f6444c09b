"""Before/after change's parameters (:class:`PairParams`) and change types."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BRIGHTENING", "OTHER", "TYPES", "VEGETATION_LOSS", "WATER_TO_LAND", "PairParams"]

TYPES = {1: "brightening", 2: "vegetation_loss", 3: "water_to_land", 4: "other"}
"""Change types of :func:`pair_change` (0: no change)."""
BRIGHTENING, VEGETATION_LOSS, WATER_TO_LAND, OTHER = range(1, 5)


@dataclass(frozen=True)
class PairParams:
    """Parameters of before/after change (``docs/change.md`` explains each)."""

    k: float = 2.5
    """Threshold: the site's mean score plus `k` standard deviations."""
    smooth_px: int = 3
    """Side of the square the score is averaged over (3 px: 30 m at 10 m)."""
    vegetation_ndvi: float = 0.5
    """NDVI above which a pixel is vegetation (for rule 3)."""
    greening: float = 0.2
    """NDVI rise to a vegetated after state that makes a pixel 'became vegetation'."""
    water_mndwi: float = 0.2
    """MNDWI above which a pixel is water (the store's land-cover rule)."""
    cloud_min_px: int = 400
    """Smallest cloud or cloud shadow of the cloud test (:func:`obscured`), in pixels
    (400: 4 ha at 10 m); 0 turns the test off."""
