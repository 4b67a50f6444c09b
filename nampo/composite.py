"""Monthly composites and change metrics of one tile: pure array code on a reflectance
cube (time, y, x per band), computed eagerly for one unit at a time.

The composite is the per-pixel median of clear observations (robust to the thin cloud
edges and shadows the SCL misses, unlike a mean), with the count of clear observations
beside it so that a reader can tell a one-scene month from a ten-scene one.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from nampo import indices
from nampo.products import COMPOSITE_BANDS, INDICES


def median_composite(refl: xr.Dataset, valid: xr.DataArray, observed: xr.DataArray) -> xr.Dataset:
    """Median of clear observations over `time`, band by band, with counts.

    Parameters
    ----------
    refl : Dataset of float32 (time, y, x) reflectance per band, NaN where not clear.
    valid : bool (time, y, x), the observation is clear (all bands finite).
    observed : bool (time, y, x), the sensor saw the pixel (clear or not).
    """
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: NaN, as wanted
        for band in COMPOSITE_BANDS:
            data = refl[band].where(valid)
            out[band] = data.median("time", skipna=True).astype("float32")
    ds = xr.Dataset(out)
    ds["clear_count"] = valid.sum("time").clip(max=255).astype("uint8")
    ds["obs_count"] = observed.sum("time").clip(max=255).astype("uint8")
    return ds


def with_indices(composite: xr.Dataset) -> xr.Dataset:
    """The composite with its spectral indices and land-cover class."""
    ds = composite.merge(indices.all_indices(composite))
    ds["landcover"] = indices.landcover(ds)
    return ds


def change_vector(a: xr.Dataset, b: xr.Dataset) -> xr.DataArray:
    """Euclidean distance between two composites over the composite bands."""
    sq = sum((a[band] - b[band]) ** 2 for band in COMPOSITE_BANDS)
    return np.sqrt(sq).astype("float32")


def change_metrics(current: xr.Dataset, previous: xr.Dataset, baseline: xr.Dataset) -> xr.Dataset:
    """Differences of indices and change-vector magnitudes against the previous month and
    against the baseline. `baseline` holds the baseline's bands and indices without the
    ``base_`` prefix. NaN where either side has no clear observation."""
    out = {
        "cva_prev": change_vector(current, previous),
        "cva_base": change_vector(current, baseline),
    }
    for name in INDICES:
        out[f"d{name}_prev"] = (current[name] - previous[name]).astype("float32")
        out[f"d{name}_base"] = (current[name] - baseline[name]).astype("float32")
    return xr.Dataset(out)
