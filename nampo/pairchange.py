"""Before/after change: lasting man-made change between two composites, when a period has
too few scenes for change dating (:mod:`nampo.change` needs months of each state).

From the store's baseline composite (``base_<band>``) and one month's composite, a
per-pixel mask of the change an analyst asks about (new buildings, roads, yards, land won
from water, vegetation cleared for construction), not every spectral difference between
two dates. The method (``docs/change.md``, "Before/after change"), each rule in a sentence:

1. **Scene-wide differences are not change.** Each band of the later composite is matched
   to the earlier one over the whole site (same median and interquartile range): a
   different sun angle, season, haze or sensor gain moves every pixel alike, and is taken
   out; a change moves a few pixels against the rest.
2. **Change vector in units of the scene's variety.** The distance between the two
   composites over the six bands, each band's difference divided by that band's spread
   over the site (so that SWIR, which varies most, does not decide alone).
3. **Not man-made.** Pixels that are vegetation on both dates (NDVI above
   ``vegetation_ndvi``: crops, lawns and forest change colour with the season), water on
   both dates (MNDWI above ``water_mndwi``: turbidity, glint, tides), and pixels that
   became vegetation (greening: regrowth, a field sown) get no change.
4. **Objects, not pixels.** The score is averaged over ``smooth_px`` x ``smooth_px``
   pixels: buildings and yards cover several pixels; single-pixel differences are mostly
   misregistration and mixed edges.
5. **Unusual for this site.** A pixel changed when its score is above the site's mean
   plus ``k`` standard deviations (the same rule as the naive change-vector threshold,
   applied to a score from which 1-4 took the non-change out).

The change type says what kind of change it was, from the two dates' indices:
``vegetation_loss`` (NDVI fell from vegetation), ``water_to_land`` (MNDWI fell from
water), ``brightening`` (mean reflectance rose), ``other`` (darkening, colour change).

The parameters are the same for every site (:class:`PairParams`); nothing is learned from
labels. Everything is numpy on the site's arrays (whole-site statistics), computed by
:func:`pair_change` on two composites or :func:`store_pair_change` on a store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import ndimage

from nampo.products import COMPOSITE_BANDS

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


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a - b) / (a + b)


def _match(after: np.ndarray, before: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """`after` moved and scaled to `before`'s median and interquartile range."""
    qa = np.percentile(after[valid], [25, 50, 75])
    qb = np.percentile(before[valid], [25, 50, 75])
    spread = qa[2] - qa[0]
    gain = (qb[2] - qb[0]) / spread if spread > 0 else 1.0
    return (after - qa[1]) * gain + qb[1]


def pair_change(
    before: xr.Dataset,
    after: xr.Dataset,
    params: PairParams = PairParams(),  # noqa: B008 (frozen)
) -> xr.Dataset:
    """Lasting man-made change between two composites of one site.

    Parameters
    ----------
    before, after : (y, x) reflectance of the six composite bands
        (:data:`~nampo.products.COMPOSITE_BANDS`), NaN where not observed.
    params : the method's parameters.

    Returns
    -------
    xr.Dataset with (y, x) ``change`` (bool), ``type`` (uint8, :data:`TYPES`, 0 = none)
    and ``score`` (float32, the smoothed score of rule 4; NaN where either date has no
    value), and the threshold of rule 5 in ``score.attrs["threshold"]``.
    """
    a = np.stack([np.asarray(before[b].values, dtype="float64") for b in COMPOSITE_BANDS])
    b = np.stack([np.asarray(after[b].values, dtype="float64") for b in COMPOSITE_BANDS])
    valid = np.isfinite(a).all(0) & np.isfinite(b).all(0)
    shape = valid.shape
    score = np.full(shape, np.nan)
    kind = np.zeros(shape, "uint8")
    threshold = np.nan
    if valid.sum() >= 100:  # too few pixels for site statistics: no change claimed
        bm = np.stack([_match(b[i], a[i], valid) for i in range(len(COMPOSITE_BANDS))])
        spread = np.array([a[i][valid].std() for i in range(len(COMPOSITE_BANDS))])
        d = (bm - a) / np.where(spread > 0, spread, 1.0)[:, None, None]
        raw = np.sqrt((d**2).sum(0))
        ndvi_a, ndvi_b = _nd(a[3], a[2]), _nd(bm[3], bm[2])
        water_a, water_b = _nd(a[1], a[4]), _nd(bm[1], bm[4])
        natural = (ndvi_a > params.vegetation_ndvi) & (ndvi_b > params.vegetation_ndvi)
        natural |= (water_a > params.water_mndwi) & (water_b > params.water_mndwi)
        natural |= (ndvi_b > params.vegetation_ndvi) & (ndvi_b - ndvi_a > params.greening)
        raw = np.where(valid & ~natural, raw, 0.0)
        smooth = ndimage.uniform_filter(raw, params.smooth_px, mode="nearest")
        weight = ndimage.uniform_filter(valid.astype("float64"), params.smooth_px, mode="nearest")
        with np.errstate(invalid="ignore", divide="ignore"):
            smooth = np.where(valid, smooth / weight, np.nan)
        values = smooth[valid]
        threshold = float(values.mean() + params.k * values.std())
        changed = valid & (smooth > threshold)
        score = smooth
        bright = bm.mean(0) - a.mean(0)
        water, green = params.water_mndwi, params.vegetation_ndvi
        rules = [  # the first that holds wins
            (WATER_TO_LAND, (water_a > water) & (water_b <= water)),
            (VEGETATION_LOSS, (ndvi_a > green) & (ndvi_b <= green)),
            (BRIGHTENING, bright > 0),
        ]
        kind = np.where(changed, OTHER, 0).astype("uint8")
        for code, test in reversed(rules):
            kind = np.where(changed & test, code, kind).astype("uint8")
    coords = {"y": before["y"], "x": before["x"]}
    if "spatial_ref" in before.coords:
        coords["spatial_ref"] = before["spatial_ref"]
    out = xr.Dataset(
        {
            "change": (("y", "x"), kind > 0),
            "type": (("y", "x"), kind),
            "score": (("y", "x"), score.astype("float32")),
        },
        coords=coords,
    )
    out["type"].attrs.update(flag_values=list(TYPES), flag_meanings=" ".join(TYPES.values()))
    out["score"].attrs.update(threshold=threshold, long_name="before/after change score")
    out.attrs["params"] = repr(params)
    return out


def store_pair_change(
    ds: xr.Dataset,
    month,
    params: PairParams = PairParams(),  # noqa: B008 (frozen)
) -> xr.Dataset:
    """:func:`pair_change` between a store's baseline and one of its months.

    Parameters
    ----------
    ds : the store's dataset (:meth:`nampo.store.Store.open`).
    month : the month (anything ``ds.sel(time=...)`` takes: ``"2017-11"``).
    """
    before = xr.Dataset({b: ds[f"base_{b}"] for b in COMPOSITE_BANDS})
    now = ds[list(COMPOSITE_BANDS)].sel(time=month)
    if "time" in now.dims:
        if now.sizes["time"] != 1:
            raise ValueError(f"{month!r} selects {now.sizes['time']} months; give one")
        now = now.isel(time=0)
    return pair_change(before.compute(), now.compute(), params)
