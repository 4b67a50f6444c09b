"""Before/after change by rules: lasting man-made change between two composites of one
site, the same parameters for every site and nothing learned (``docs/change.md``,
"Before/after change", rules 0-5)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from nampo.analysis.before_after.bands import match_to, nd, stack_bands
from nampo.analysis.before_after.clouds import hide_clouds
from nampo.analysis.before_after.params import (
    BRIGHTENING,
    OTHER,
    TYPES,
    VEGETATION_LOSS,
    WATER_TO_LAND,
    PairParams,
)
from nampo.products.variables import COMPOSITE_BANDS

__all__ = ["as_dataset", "change_types", "pair_change", "store_pair_change"]


def pair_change(
    before: xr.Dataset,
    after: xr.Dataset,
    params: PairParams = PairParams(),  # noqa: B008 (frozen)
) -> xr.Dataset:
    """Lasting man-made change between two composites of one site.

    Parameters
    ----------
    before, after : (y, x) reflectance of the six composite bands
        (:data:`~nampo.products.variables.COMPOSITE_BANDS`), NaN where not observed.
    params : the method's parameters.

    Returns
    -------
    xr.Dataset with (y, x) ``change`` (bool), ``type`` (uint8, :data:`TYPES`, 0 = none),
    ``score`` (float32, the smoothed score of rule 4; NaN where either date has no value
    or is obscured) and ``obscured`` (bool, rule 0: a cloud or its shadow on either date,
    :func:`obscured`), and the threshold of rule 5 in ``score.attrs["threshold"]``.
    """
    a, b = stack_bands(before), stack_bands(after)
    hidden = hide_clouds(a, b, params)
    valid = np.isfinite(a).all(0) & np.isfinite(b).all(0)
    shape = valid.shape
    score = np.full(shape, np.nan)
    kind = np.zeros(shape, "uint8")
    threshold = np.nan
    if valid.sum() >= 100:  # too few pixels for site statistics: no change claimed
        bm = np.stack([match_to(b[i], a[i], valid) for i in range(len(COMPOSITE_BANDS))])
        spread = np.array([a[i][valid].std() for i in range(len(COMPOSITE_BANDS))])
        d = (bm - a) / np.where(spread > 0, spread, 1.0)[:, None, None]
        raw = np.sqrt((d**2).sum(0))
        ndvi_a, ndvi_b = nd(a[3], a[2]), nd(bm[3], bm[2])
        water_a, water_b = nd(a[1], a[4]), nd(bm[1], bm[4])
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
        kind = change_types(changed, a, bm, params)
    out = as_dataset(before, kind, score)
    out["obscured"] = (("y", "x"), hidden)
    out["score"].attrs.update(threshold=threshold, long_name="before/after change score")
    out.attrs["params"] = repr(params)
    return out


def change_types(
    changed: np.ndarray, a: np.ndarray, bm: np.ndarray, params: PairParams
) -> np.ndarray:
    """The change type of each changed pixel, from the two dates' indices (the first rule
    that holds wins)."""
    ndvi_a, ndvi_b = nd(a[3], a[2]), nd(bm[3], bm[2])
    water_a, water_b = nd(a[1], a[4]), nd(bm[1], bm[4])
    bright = bm.mean(0) - a.mean(0)
    water, green = params.water_mndwi, params.vegetation_ndvi
    rules = [
        (WATER_TO_LAND, (water_a > water) & (water_b <= water)),
        (VEGETATION_LOSS, (ndvi_a > green) & (ndvi_b <= green)),
        (BRIGHTENING, bright > 0),
    ]
    kind = np.where(changed, OTHER, 0).astype("uint8")
    for code, test in reversed(rules):
        kind = np.where(changed & test, code, kind).astype("uint8")
    return kind


def as_dataset(before: xr.Dataset, kind: np.ndarray, score: np.ndarray) -> xr.Dataset:
    """``change``, ``type`` and ``score`` on `before`'s coordinates."""
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
    return out


def store_pair_change(
    ds: xr.Dataset,
    month,
    params: PairParams = PairParams(),  # noqa: B008 (frozen)
) -> xr.Dataset:
    """:func:`pair_change` between a store's baseline and one of its months.

    Parameters
    ----------
    ds : the store's dataset (:meth:`nampo.io.store.Store.open`).
    month : the month (anything ``ds.sel(time=...)`` takes: ``"2017-11"``).
    """
    before = xr.Dataset({b: ds[f"base_{b}"] for b in COMPOSITE_BANDS})
    now = ds[list(COMPOSITE_BANDS)].sel(time=month)
    if "time" in now.dims:
        if now.sizes["time"] != 1:
            raise ValueError(f"{month!r} selects {now.sizes['time']} months; give one")
        now = now.isel(time=0)
    return pair_change(before.compute(), now.compute(), params)
