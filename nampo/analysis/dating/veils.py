"""Veils are not change: months in which thin cloud or haze the cloud mask missed lies
over a pixel, found from the series itself and left out of change dating as gaps (rule 1
of ``docs/change.md``, "Change dating").

The SCL flags thick cloud; fog and cloud edges thinner than about a third of full
opacity pass as clear (real L2A does the same), and the monthly median of a month with
one or two clear scenes keeps them. Such a month is brighter in blue over a large area at
once. Near the end of a series it can be one of the two months that confirm a "change",
and fields, water and paving under it read as built (issue 18: 15 false events of
2,100-27,600 m² in Nampo's last two months at seed 1, all under one hazy June).

The test is the multi-temporal cloud test of operational processors (MAJA's, Hagolle et
al. 2010; Tmask, Zhu and Woodcock 2014), kept to two rules:

1. **A veil is a large, sudden brightening in blue.** A month is veiled at a pixel when
   its blue is more than ``veil_rise`` (0.04) above the median of the pixel's
   :data:`REFERENCE_MONTHS` previous clear months (the next ones at the start of the
   series), and the pixel lies in a patch of ``veil_min_px`` (400 pixels, 4 ha) or more
   of such pixels that month, as rule 0 of before/after change sizes clouds: haze is
   large; a single new roof or yard is not.
2. **A veil lifts; a change stays.** A veiled month is kept after all when the pixel's
   next steady clear month (one whose blue did not rise itself) is still as bright
   (within ``veil_rise`` of it): a large new quay or yard brightens its pixels for good,
   haze does not. Until such a month is seen (the last months of a series) the
   brightening is not yet a change: it is dated, to its first month, when the next months
   confirm it, as CCDC and COLD wait for consecutive observations.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from nampo.analysis.dating.params import ChangeParams
from nampo.analysis.nanstats import nanmedian
from nampo.analysis.patches import large_parts

__all__ = ["REFERENCE_MONTHS", "veiled"]

REFERENCE_MONTHS = 3
"""Clear months whose median blue is a pixel's reference: haze in one of them cannot move
it. A large brightening is confirmed once a month is steady at its new level: the third
month after it at the earliest (with five months, two hazy ones could not move the
reference either, but 4 of 162 events of the test scenarios at seeds 0-4, large ones
late in their series, were then not yet confirmed when the series ended)."""


def veiled(
    cls: np.ndarray,
    blue: np.ndarray,
    params: ChangeParams = ChangeParams(),  # noqa: B008 (frozen)
) -> np.ndarray:
    """(time, y, x) bool: months that a veil hides at a pixel (and that no later month
    confirmed as lasting). Nothing is veiled when ``params.veil_min_px`` is 0.

    Parameters
    ----------
    cls : (time, y, x) change classes, 0 where the month has no clear observation.
    blue : (time, y, x) blue reflectance of the monthly composites.
    params : ``veil_rise`` and ``veil_min_px`` are used.
    """
    t = cls.shape[0]
    clear = (cls > 0) & np.isfinite(blue)
    if params.veil_min_px <= 0:
        return np.zeros(clear.shape, bool)
    rise = _rise(np.where(clear, blue, np.nan), clear)
    risen = clear & (rise > params.veil_rise)
    veil = np.zeros_like(risen)
    for m in range(t):
        if risen[m].sum() >= params.veil_min_px:
            veil[m] = _patches(risen[m], params.veil_min_px)
    # a month that rose itself (in a veil or in haze broken up by clouds) is no evidence
    # that the brightening before it lasted; a steady month is
    steady = clear & ~risen
    return veil & ~_confirmed(blue, steady, veil, params.veil_rise)


def _rise(x: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """(time, y, x) each clear month's blue less the median of the pixel's
    REFERENCE_MONTHS previous clear months (the next ones where fewer than that came
    before); NaN where the month is not clear or the pixel has no reference."""
    t, k = x.shape[0], REFERENCE_MONTHS
    rank = np.cumsum(clear, axis=0) - 1  # of each clear month among the pixel's
    # the pixel's clear values packed in time order (packed[r]: its r-th clear month),
    # padded with k NaN months so that every window below exists
    packed = np.full((t + k, *x.shape[1:]), np.nan, "float32")
    tt, yy, xx = np.nonzero(clear)
    packed[rank[tt, yy, xx], yy, xx] = x[tt, yy, xx]
    windows = np.lib.stride_tricks.sliding_window_view(packed, k, axis=0)
    median = nanmedian(windows, axis=-1)  # median[j]: of packed[j : j + k]
    # the k clear months before rank r start at r - k; at the start, those after at r + 1
    start = np.where(rank >= k, rank - k, rank + 1)
    ref = np.take_along_axis(median, np.clip(start, 0, len(median) - 1), axis=0)
    return np.where(clear, x - ref, np.nan).astype("float32")


def _patches(mask: np.ndarray, min_px: int) -> np.ndarray:
    """`mask`'s 8-connected parts of `min_px` pixels or more, after closing gaps of a
    pixel or two (noise breaks a veil into pieces)."""
    closed = ndimage.binary_closing(mask, iterations=2) | mask
    return large_parts(closed, min_px) & mask


def _confirmed(blue: np.ndarray, steady: np.ndarray, veil: np.ndarray, rise: float) -> np.ndarray:
    """(time, y, x) veiled months whose pixel's next steady month is as bright (within
    `rise`)."""
    t = blue.shape[0]
    out = np.zeros(veil.shape, bool)
    # walking back in time: the blue of each pixel's next steady month
    following = np.full(blue.shape[1:], np.nan, "float32")
    for m in range(t - 1, -1, -1):
        with np.errstate(invalid="ignore"):
            out[m] = veil[m] & (following >= blue[m] - rise)
        following = np.where(steady[m], blue[m], following)
    return out
