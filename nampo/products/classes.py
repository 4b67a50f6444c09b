"""The per-pixel land-cover class of a composite (the store's ``landcover``): the class
codes and the rules that assign them. Why these thresholds: ``docs/change.md``, "Indices
and classes"."""

from __future__ import annotations

import numpy as np
import xarray as xr

from nampo.products.indices import soil_slope
from nampo.products.variables import CLASSES

__all__ = [
    "BARE",
    "BUILT",
    "DARK",
    "DORMANT_NDVI",
    "DORMANT_SLOPE",
    "DRY_NDBI",
    "GREEN_PEAK",
    "ICE",
    "SOIL_NDBI",
    "SOIL_SLOPE",
    "VEGETATION",
    "VEGETATION_NDVI",
    "WATER",
    "bare_like",
    "landcover",
]

WATER, VEGETATION, BARE, BUILT, DARK, ICE = (
    next(k for k, v in CLASSES.items() if v == name)
    for name in ("water", "vegetation", "bare", "built", "dark", "ice")
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
