"""Rule 0 of before/after change, a cloud is not change: clouds and their shadows found
from the two dates alone (composites of Sentinel-2 L1C have no cloud mask)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from nampo.analysis.before_after.bands import match_to, nd
from nampo.analysis.before_after.params import PairParams
from nampo.analysis.patches import large_parts

__all__ = [
    "CLOUD_BLUE",
    "CLOUD_GROW_PX",
    "CLOUD_NIR_SWIR",
    "CLOUD_RISE",
    "CLOUD_WHITENESS",
    "SHADOW_NIR",
    "SHADOW_RATIO",
    "hide_clouds",
    "obscured",
]

CLOUD_BLUE = 0.2
"""A cloud is brighter than this in blue (reflectance)."""
CLOUD_RISE = 0.08
"""... and brighter than the other date by more than this in every band."""
CLOUD_WHITENESS = 0.3
"""... and white: its visible bands' range over their mean is below this."""
CLOUD_NIR_SWIR = 0.75
"""... and NIR above this times SWIR 1.6 um (Fmask's basic test: bare soil and concrete,
which are brighter in SWIR than in NIR, are not clouds)."""
SHADOW_RATIO = 0.7
"""A cloud shadow is darker than the other date by this factor in red, NIR and SWIR ..."""
SHADOW_NIR = 0.08
"""... and darker than this in NIR (reflectance)."""
CLOUD_GROW_PX = 3
"""Clouds and shadows are grown by this many pixels (their hazy edges)."""


def _blobs(mask: np.ndarray, min_px: int) -> np.ndarray:
    """`mask` closed (gaps of a few pixels), only its 8-connected parts of `min_px` pixels or
    more kept, grown by CLOUD_GROW_PX."""
    closed = ndimage.binary_closing(mask, iterations=2)
    return ndimage.binary_dilation(large_parts(closed, min_px), iterations=CLOUD_GROW_PX)


def obscured(
    before: np.ndarray,
    after: np.ndarray,
    params: PairParams = PairParams(),  # noqa: B008 (frozen)
) -> np.ndarray:
    """Where a cloud or a cloud shadow on either date hides the ground: (y, x) bool.

    A cloud test for composites without a cloud mask (Sentinel-2 L1C), from the two dates
    only (no thermal or cirrus band is stored). Per pixel, a cloud on one date is bright in
    blue, white in the visible, not brighter in SWIR than in NIR, and brighter than the
    other date in every band (the other date matched to it, rule 1); a shadow is darker
    than the other date in red, NIR and SWIR by a factor, dark in NIR, and not water on the
    other date (rivers darken with their load). Only blobs of
    ``params.cloud_min_px`` pixels or more count (clouds are large; a new white roof of a
    few hundred square metres passes the per-pixel test too), grown by a few pixels for
    their hazy edges. Pixels where either date has no value are never obscured.

    Parameters
    ----------
    before, after : (6, y, x) reflectance of the composite bands, NaN where not observed.
    """
    valid = np.isfinite(before).all(0) & np.isfinite(after).all(0)
    out = np.zeros(valid.shape, bool)
    if params.cloud_min_px <= 0 or valid.sum() < 100:
        return out
    for date, other in ((after, before), (before, after)):
        matched = np.stack([match_to(other[i], date[i], valid) for i in range(len(other))])
        with np.errstate(invalid="ignore", divide="ignore"):
            visible = date[:3]
            whiteness = (visible.max(0) - visible.min(0)) / visible.mean(0)
            cloud = (
                valid
                & (date[0] > CLOUD_BLUE)
                & ((date - matched).min(0) > CLOUD_RISE)
                & (whiteness < CLOUD_WHITENESS)
                & (date[3] > CLOUD_NIR_SWIR * date[4])
            )
            shadow = valid & ((date[2:] / matched[2:]).max(0) < SHADOW_RATIO)
            shadow &= date[3] < SHADOW_NIR
            shadow &= nd(other[1], other[4]) <= params.water_mndwi  # water darkens alone
        out |= _blobs(cloud, params.cloud_min_px) | _blobs(shadow, params.cloud_min_px)
    return out & valid


def hide_clouds(a: np.ndarray, b: np.ndarray, params: PairParams) -> np.ndarray:
    """Rule 0: clouds and their shadows set to not observed (NaN) on both dates, in place;
    returns where."""
    hidden = obscured(a, b, params)
    a[:, hidden] = np.nan
    b[:, hidden] = np.nan
    return hidden
