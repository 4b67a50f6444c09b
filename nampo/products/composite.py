"""Monthly composites of one tile and their change metrics against the previous month and
the baseline (``cva_*``, ``d<index>_*``: not change dating, :mod:`nampo.analysis.dating`):
pure array code on a reflectance cube (time, y, x per band), one unit at a time.

The composite is the per-pixel median of clear observations (robust to the thin cloud
edges and shadows the SCL misses, unlike a mean), with the count of clear observations
beside it so that a reader can tell a one-scene month from a ten-scene one.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import xarray as xr

from nampo.products import classes, indices
from nampo.products.variables import COMPOSITE_BANDS, INDICES, LAST_CLEAR_MONTHS

__all__ = [
    "NO_AGE",
    "carried_composite",
    "carry_forward",
    "change_metrics",
    "change_vector",
    "median_composite",
    "nanmedian_last",
    "with_indices",
]


def median_composite(refl: xr.Dataset, valid: xr.DataArray, observed: xr.DataArray) -> xr.Dataset:
    """Median of clear observations over `time`, band by band, with counts.

    Parameters
    ----------
    refl : Dataset of float32 (time, y, x) reflectance per band, NaN where not clear.
    valid : bool (time, y, x), the observation is clear (all bands finite).
    observed : bool (time, y, x), the sensor saw the pixel (clear or not).

    The median is that of ``numpy.nanmedian`` (the mean of the two middle values for an
    even count, in float32), bit for bit; NaN where no observation is clear.
    """
    out = {}
    for band in COMPOSITE_BANDS:
        out[band] = xr.apply_ufunc(
            nanmedian_last,
            refl[band],
            valid,
            input_core_dims=[["time"], ["time"]],
            dask="parallelized",
            output_dtypes=[np.float32],
        )
    ds = xr.Dataset(out)
    ds["clear_count"] = valid.sum("time").clip(max=255).astype("uint8")
    ds["obs_count"] = observed.sum("time").clip(max=255).astype("uint8")
    return ds


def nanmedian_last(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Median over the last axis of `values` where `valid`, by one sort per pixel.

    ``numpy.nanmedian`` goes through masked arrays for short axes and took most of a
    unit's compute time; a sort of a few dozen values per pixel, with the invalid ones
    set to NaN (sorted last), gives the same float32 result much faster."""
    if values.shape[-1] == 0:  # no scene at all: no clear observation
        return np.full(values.shape[:-1], np.nan, dtype=np.float32)
    # C order: time (the last axis here) contiguous, so each pixel sorts in place.
    data = np.ascontiguousarray(np.where(valid, values, np.float32(np.nan)), dtype=np.float32)
    count = np.count_nonzero(~np.isnan(data), axis=-1)
    data.sort(axis=-1)
    low = np.take_along_axis(data, np.maximum(count - 1, 0)[..., None] // 2, axis=-1)[..., 0]
    high = np.take_along_axis(data, (count // 2)[..., None], axis=-1)[..., 0]
    # (a + b) / 2 in float32, as numpy's median of an even count; a + a = 2a exactly.
    median = (low + high) / np.float32(2)
    median[count == 0] = np.float32(np.nan)
    return median


def with_indices(composite: xr.Dataset, ndvi_peak: xr.DataArray | None = None) -> xr.Dataset:
    """The composite with its spectral indices and land-cover class (`ndvi_peak`: the
    baseline's, which keeps dormant vegetation vegetation; see classes.landcover)."""
    ds = composite.merge(indices.all_indices(composite))
    ds["landcover"] = classes.landcover(ds, ndvi_peak)
    return ds


NO_AGE = np.uint8(255)
"""``last_age`` of a pixel without a clear month among the carried ones."""


def carry_forward(current: xr.Dataset, last: xr.Dataset | None) -> xr.Dataset:
    """The latest clear composite up to this month: ``last_<band>`` and ``last_age``.

    Per pixel, this month's bands where it has a clear observation (age 0), else the
    previous month's carried bands one month older, as long as they are younger than
    :data:`~nampo.products.variables.LAST_CLEAR_MONTHS`; NaN (age 255) beyond.

    Parameters
    ----------
    current : this month's composite (bands).
    last : the previous month's carried composite (``last_<band>``, ``last_age``), or
        None when nothing is carried (every pixel's history starts here).
    """
    clear = current[COMPOSITE_BANDS[0]].notnull()
    for band in COMPOSITE_BANDS[1:]:
        clear &= current[band].notnull()
    if last is None:
        keep = xr.zeros_like(clear)
        age = xr.full_like(clear, NO_AGE, dtype="uint8")
    else:
        old = last["last_age"].astype("int16") + 1
        keep = (last["last_age"] != NO_AGE) & (old < LAST_CLEAR_MONTHS)
        age = xr.where(keep, old, NO_AGE)
    out = xr.Dataset()
    for band in COMPOSITE_BANDS:
        carried = last[f"last_{band}"] if last is not None else np.float32(np.nan)
        kept = xr.where(keep, carried, np.float32(np.nan))
        out[f"last_{band}"] = xr.where(clear, current[band], kept).astype("float32")
    out["last_age"] = xr.where(clear, 0, age).astype("uint8")
    return out


def carried_composite(last: xr.Dataset) -> xr.Dataset:
    """A carried composite (``last_<band>``) as a composite with indices, to compare with."""
    bands = xr.Dataset({b: last[f"last_{b}"] for b in COMPOSITE_BANDS})
    return bands.merge(indices.all_indices(bands))


def change_vector(a: xr.Dataset, b: xr.Dataset) -> xr.DataArray:
    """Euclidean distance between two composites over the composite bands."""
    sq = sum((a[band] - b[band]) ** 2 for band in COMPOSITE_BANDS)
    return cast(xr.DataArray, np.sqrt(sq)).astype("float32")


def change_metrics(current: xr.Dataset, previous: xr.Dataset, baseline: xr.Dataset) -> xr.Dataset:
    """Differences of indices and change-vector magnitudes against the previous month and
    against the baseline. `previous` is, per pixel, the latest earlier month with a clear
    observation (:func:`carried_composite` of the previous month's :func:`carry_forward`);
    `baseline` holds the baseline's bands and indices without the ``base_`` prefix. NaN
    where either side has no clear observation."""
    out = {
        "cva_prev": change_vector(current, previous),
        "cva_base": change_vector(current, baseline),
    }
    for name in INDICES:
        out[f"d{name}_prev"] = (current[name] - previous[name]).astype("float32")
        out[f"d{name}_base"] = (current[name] - baseline[name]).astype("float32")
    return xr.Dataset(out)
