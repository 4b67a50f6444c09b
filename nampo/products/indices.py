"""Spectral indices and the per-pixel land-cover class: pure array functions.

They take and return labelled arrays (numpy- or dask-backed alike) and keep float32.

Notes on the choice of indices for Sentinel-2 L2A:
- NDVI = (nir - red) / (nir + red): vegetation.
- MNDWI = (green - swir16) / (green + swir16) (Xu 2006): open water.
- NDSI = (green - swir16) / (green + swir16) (Hall et al.): snow and ice. With Sentinel-2
  bands it is the same formula as MNDWI; what separates ice from water is brightness in
  the visible (ice reflects 0.3-0.6, water under 0.12), used by :func:`landcover`.
- NDBI = (swir16 - nir) / (swir16 + nir) (Zha 2003): built-up and bare ground.
- DARK, a dark-surface index for coal stockpiles: high when a surface is dark across the
  spectrum (coal reflects under 0.08 from the visible to the SWIR), yet not water (which is
  black in the SWIR, where coal still reflects about 0.05) and not vegetation in shadow
  (which keeps a red-edge/NIR contrast).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nampo.products.variables import CLASSES

WATER, VEGETATION, BARE, BUILT, DARK, ICE = (
    next(k for k, v in CLASSES.items() if v == name)
    for name in ("water", "vegetation", "bare", "built", "dark", "ice")
)


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
    return (sum(ds[b] for b in bands) / len(bands)).astype("float32")


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


VEGETATION_NDVI = 0.4
"""NDVI above which a pixel is vegetation in any season."""
SOIL_SLOPE = 0.15
"""Normalised red-blue difference above which a non-vegetated surface is soil-coloured.
Soils redden from blue to red (iron oxides, organic matter), concrete, asphalt, metal and
slate are nearly grey: on real surface reflectance the low-NDVI pixels of a town
(Aberystwyth 2021-05-27) have p10/p50/p90 -0.02/0.06/0.12, the library's soils 0.24-0.25
(bare ground next to new roofs about 0.15-0.2 through the sensor's blur) and its built
surfaces at most 0.147 (containers)."""
SOIL_NDBI = 0.0
"""A soil-coloured surface is bare when it is also brighter in SWIR-1 than in NIR."""
DRY_NDBI = 0.2
"""NDBI above which a non-vegetated surface is bare whatever its colour (dry soil, sand,
gravel): above real towns' p90 (0.10 on Aberystwyth's surface reflectance, 0.17 on the
top-of-atmosphere OSCD cities Paris and Bercy)."""
DORMANT_NDVI = 0.2
"""A pixel that was green in its baseline (NDVI peak above :data:`GREEN_PEAK`) is dormant
vegetation while its NDVI stays above 0.2 and it stays yellow-brown
(:data:`DORMANT_SLOPE`): winter stubble and dry grass keep 0.2-0.35, cleared soil falls
to 0.05-0.2."""
DORMANT_SLOPE = 0.1
"""Red-blue slope above which a low-NDVI surface is yellow-brown like dry vegetation (the
library's dormant vegetation 0.24, 0.16-0.2 through autumn's mixture and winter haze),
not grey or blue like a new roof on former grassland (painted roofs -0.16..0.06)."""
GREEN_PEAK = 0.5
"""Baseline NDVI peak above which a pixel is seasonal vegetation."""


def soil_slope(ds: xr.Dataset) -> xr.DataArray:
    """Normalised red-blue difference: the visible reddening of soils."""
    return _nd(ds["red"], ds["blue"]).rename("soil_slope")


def bare_like(ds: xr.Dataset) -> xr.DataArray:
    """Soil-coloured and SWIR-bright, or very SWIR-bright (see :data:`SOIL_SLOPE`)."""
    slope = soil_slope(ds)
    return ((slope > SOIL_SLOPE) & (ds["ndbi"] > SOIL_NDBI)) | (ds["ndbi"] > DRY_NDBI)


def landcover(ds: xr.Dataset, ndvi_peak: xr.DataArray | None = None) -> xr.DataArray:
    """Class per pixel from a composite (bands and indices): 0 where there is no data.

    Rules, in order of precedence (later rules do not override earlier ones):
    ice (NDSI > 0.4 and green > 0.2), water (MNDWI > 0.2 and NIR < 0.1), vegetation
    (NDVI > 0.4), dark/coal (DARK > 0.35), dormant vegetation (NDVI > 0.2, red above
    blue, and green in the baseline: `ndvi_peak` > 0.5), bare (bare-like: soil-coloured, red above
    blue, and NDBI > 0; or NDBI > 0.2), built (everything else: roofs, paving, piers,
    containers, tanks).

    NDBI alone does not separate bare soil from built surfaces: moist soil falls to NDBI
    0.06, and real towns reach 0.1-0.17. Soil's colour does (see :data:`SOIL_SLOPE`).

    Parameters
    ----------
    ds : composite bands and indices (``with_indices``).
    ndvi_peak : the pixel's NDVI peak over the baseline period (``base_ndvi_peak``);
        without it dormant vegetation reads as bare.

    Examples
    --------
    >>> landcover(with_indices(composite), store.read_baseline(tile)["base_ndvi_peak"])
    ... # doctest: +SKIP
    """
    ok = ds["ndvi"].notnull() & ds["mndwi"].notnull()
    bare = bare_like(ds)
    if ndvi_peak is None:
        dormant = xr.zeros_like(bare)
    else:
        dormant = (ds["ndvi"] > DORMANT_NDVI) & (ndvi_peak > GREEN_PEAK)
        dormant &= soil_slope(ds) > DORMANT_SLOPE
    rules = [
        (ICE, (ds["ndsi"] > 0.4) & (ds["green"] > 0.2)),
        (WATER, (ds["mndwi"] > 0.2) & (ds["nir"] < 0.1)),
        (VEGETATION, ds["ndvi"] > VEGETATION_NDVI),
        (DARK, ds["dark"] > 0.35),
        (VEGETATION, dormant),
        (BARE, bare),
    ]
    out = xr.full_like(ds["ndvi"], BUILT, dtype="uint8")
    for code, test in reversed(rules):
        out = xr.where(test, np.uint8(code), out)
    return xr.where(ok, out, np.uint8(0)).astype("uint8").rename("landcover")


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
