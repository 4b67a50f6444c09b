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

from nampo.products import CLASSES

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


def landcover(ds: xr.Dataset) -> xr.DataArray:
    """Class per pixel from a composite (bands and indices): 0 where there is no data.

    Rules, in order of precedence (later rules do not override earlier ones):
    ice (NDSI > 0.4 and green > 0.2), water (MNDWI > 0.2 and NIR < 0.1), vegetation
    (NDVI > 0.4), dark/coal (DARK > 0.35), bare (NDBI > 0.11: soil is brighter in SWIR-1
    than concrete is), built (everything else: roofs, paving, piers, containers, tanks).
    """
    ok = ds["ndvi"].notnull() & ds["mndwi"].notnull()
    rules = [
        (ICE, (ds["ndsi"] > 0.4) & (ds["green"] > 0.2)),
        (WATER, (ds["mndwi"] > 0.2) & (ds["nir"] < 0.1)),
        (VEGETATION, ds["ndvi"] > 0.4),
        (DARK, ds["dark"] > 0.35),
        (BARE, ds["ndbi"] > 0.11),
    ]
    out = xr.full_like(ds["ndvi"], BUILT, dtype="uint8")
    for code, test in reversed(rules):
        out = xr.where(test, np.uint8(code), out)
    return xr.where(ok, out, np.uint8(0)).astype("uint8").rename("landcover")
