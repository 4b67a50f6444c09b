"""Spectral indices of a composite: pure array functions on labelled arrays (numpy- or
dask-backed alike), keeping float32. Why these indices: ``docs/change.md``, "Indices and
classes"."""

from __future__ import annotations

from typing import cast

import numpy as np
import xarray as xr

__all__ = [
    "all_indices",
    "brightness",
    "dark",
    "mndwi",
    "nanquantile_last",
    "ndbi",
    "ndsi",
    "ndvi",
    "ndvi_peak",
    "soil_slope",
]


def _nd(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((a - b) / (a + b)).astype("float32")


def ndvi(ds: xr.Dataset) -> xr.DataArray:
    return _nd(ds["nir"], ds["red"]).rename("ndvi")


def mndwi(ds: xr.Dataset) -> xr.DataArray:
    return _nd(ds["green"], ds["swir16"]).rename("mndwi")


def ndsi(ds: xr.Dataset) -> xr.DataArray:
    return _nd(ds["green"], ds["swir16"]).rename("ndsi")


def ndbi(ds: xr.Dataset) -> xr.DataArray:
    return _nd(ds["swir16"], ds["nir"]).rename("ndbi")


def brightness(ds: xr.Dataset) -> xr.DataArray:
    bands = ["blue", "green", "red", "nir", "swir16", "swir22"]
    total = cast(xr.DataArray, sum(ds[b] for b in bands))
    return (total / len(bands)).astype("float32")


def dark(ds: xr.Dataset) -> xr.DataArray:
    """0..1: dark across the spectrum, but reflecting in the SWIR and without NDVI."""
    darkness = (1 - brightness(ds) / 0.12).clip(0, 1)
    not_water = (ds["swir16"] / 0.035).clip(0, 1)
    not_vegetation = (1 - 2 * ndvi(ds).clip(min=0)).clip(0, 1)
    return (darkness * not_water * not_vegetation).astype("float32").rename("dark")


def all_indices(ds: xr.Dataset) -> xr.Dataset:
    return xr.Dataset(
        {"ndvi": ndvi(ds), "mndwi": mndwi(ds), "ndbi": ndbi(ds), "ndsi": ndsi(ds), "dark": dark(ds)}
    )


def soil_slope(ds: xr.Dataset) -> xr.DataArray:
    """Normalised red-blue difference: the visible reddening of soils."""
    return _nd(ds["red"], ds["blue"]).rename("soil_slope")


def ndvi_peak(bands: xr.Dataset, valid: xr.DataArray, q: float = 0.9) -> xr.DataArray:
    """High NDVI of a pixel's clear observations over `time` (its `q` quantile): how green
    it gets in its season. Haze and thin cloud lower NDVI, so a high quantile is robust to
    what the cloud mask misses. NaN without a clear observation."""
    values = ndvi(bands).where(valid).astype("float32")
    out = xr.apply_ufunc(
        nanquantile_last,
        values,
        kwargs={"q": q},
        input_core_dims=[["time"]],
        dask="parallelized",
        output_dtypes=[np.float32],
    )
    return out.rename("ndvi_peak")


def nanquantile_last(values: np.ndarray, q: float) -> np.ndarray:
    """The `q` quantile over the last axis ignoring NaN: ``numpy.nanquantile``'s default
    ("linear") method on float32, bit for bit, by one sort per pixel. numpy's own goes
    pixel by pixel through ``apply_along_axis`` and took two thirds of a baseline unit."""
    if values.shape[-1] == 0:
        return np.full(values.shape[:-1], np.nan, dtype=np.float32)
    data = np.sort(values.astype(np.float32, copy=False), axis=-1)  # NaN sort last
    count = np.count_nonzero(~np.isnan(data), axis=-1)
    position = (np.maximum(count, 1) - 1) * q  # float64, as numpy's virtual index
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, np.maximum(count - 1, 0))
    gamma = position - low
    a = np.take_along_axis(data, low[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(data, high[..., None], axis=-1)[..., 0]
    # numpy's _lerp, in float32 with the weight rounded to float32 as numpy does
    diff = b - a
    out = a + diff * gamma.astype(np.float32)
    upper = gamma >= 0.5
    out[upper] = (b - diff * (1 - gamma).astype(np.float32))[upper]
    out[count == 0] = np.float32(np.nan)
    return out
