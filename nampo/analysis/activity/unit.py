"""Facility activity in the unit: from the scenes one (tile, month) unit has read, the
partial counts of its tile (pixels, and each bright object at the berths with its bounding
box on the site grid), stored with the unit. The rules: ``docs/change.md``, "Activity"."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import xarray as xr
from rasterio.features import rasterize
from scipy import ndimage

from nampo.analysis.activity.params import ActivityParams
from nampo.products.classes import DARK, ICE, WATER
from nampo.sites import Site, Tile

__all__ = ["FacilityPixels", "facility_pixels", "unit_activity"]

EIGHT = np.ones((3, 3), bool)
ICE_NDSI, ICE_GREEN = 0.4, 0.2
"""Ice: the rule of :func:`nampo.products.classes.landcover`."""
WATER_MAX_NIR = 0.1
"""Water is darker than this in the NIR (the rule of :func:`nampo.products.classes.landcover`)."""
OPEN_WATER_NIR = 0.03
"""NIR of open turbid water (0.01-0.04 in the Yellow Sea's estuaries), the background of
a scene whose berths show no open water (frozen)."""


@dataclass(frozen=True)
class FacilityPixels:
    """The pixels of one facility in one tile, as masks of the tile's shape."""

    name: str
    """The facility's name (``Site.facilities``)."""
    area: np.ndarray
    """Pixels of the tile inside the facility's outline (pixel centres)."""
    water: np.ndarray
    """Of those, open water in the baseline."""
    berths: np.ndarray
    """Pixels inside its berths, one pixel away from their outline (and the shore)."""


def facility_pixels(site: Site, tile: Tile, base_landcover: np.ndarray) -> list[FacilityPixels]:
    """The pixels of each facility that fall in `tile` (facilities outside it left out)."""
    grid = site.tile_grid(tile)
    water = np.asarray(base_landcover) == WATER
    berths = dict(site.berths)
    out = []
    for name, _, outline in site.facilities:
        area = _mask(grid, [outline])
        # Not the baseline's water: where ships lie most days the baseline reads "built".
        # The outline shrunk by one pixel leaves out the mixed pixels along the quay or
        # pier (bright every day); the tile's edge is not the berth's.
        berth = ndimage.binary_erosion(_mask(grid, berths.get(name, ())), EIGHT, border_value=1)
        if area.any() or berth.any():
            out.append(FacilityPixels(name, area, area & water, berth))
    return out


def _mask(grid, outlines) -> np.ndarray:
    shapes = [(grid.from_lonlat(o), 1) for o in outlines]
    if not shapes:
        return np.zeros(grid.shape, bool)
    return rasterize(shapes, out_shape=grid.shape, transform=grid.transform, dtype="uint8") > 0


def unit_activity(
    site: Site,
    tile: Tile,
    month: dt.date,
    bands: xr.Dataset,
    clear: xr.DataArray,
    landcover: xr.DataArray,
    base_landcover: xr.DataArray,
    params: ActivityParams = ActivityParams(),  # noqa: B008 (frozen)
) -> dict:
    """The activity of one unit, as stored: per facility its pixel counts in this tile, per
    scene the clear pixels, ice pixels and bright objects at the berths, and the month's
    coal pixels. Plain JSON values; the same inputs give the same document.

    Parameters
    ----------
    bands : the month's per-scene reflectance (time, y, x), NaN where not observed.
    clear : bool (time, y, x), the observation is clear (as the composite uses it).
    landcover : the month's class map (y, x).
    base_landcover : the tile's baseline class map (y, x).
    """
    row0, col0 = tile.rows[0], tile.cols[0]
    lc = np.asarray(landcover.values)
    # Land and structures in a berth outline are not water in the baseline nor this month
    # (ships moored most days make the baseline read "built", but not a month as well
    # unless they stay): a quay's edge, a pier's end. Left out of the berth pixels.
    static = (np.asarray(base_landcover.values) != WATER) & ~np.isin(lc, (WATER, ICE, 0))
    # and the pixels beside them: the shore's mixed pixels read as water, but are brighter
    static = ndimage.binary_dilation(static, EIGHT)
    facilities = [
        replace(f, berths=f.berths & ~static)
        for f in facility_pixels(site, tile, base_landcover.values)
    ]
    doc: dict = {
        "tile": tile.id,
        "month": f"{month:%Y-%m}",
        "params": {
            k: v
            for k, v in asdict(params).items()
            if k.startswith("ship_") or k == "cloud_buffer_px"
        },
        "facilities": {
            f.name: {
                "area_px": int(f.area.sum()),
                "water_px": int(f.water.sum()),
                "berth_px": int(f.berths.sum()),
                "coal_px": int((f.area & (lc == DARK)).sum()),
                "clear_month_px": int((f.area & (lc > 0)).sum()),
            }
            for f in facilities
        },
        "scenes": [],
    }
    if not facilities or bands.sizes.get("time", 0) == 0:
        return doc
    green, nir, swir = (np.asarray(bands[b].values) for b in ("green", "nir", "swir16"))
    ok = np.asarray(clear.values)
    with np.errstate(invalid="ignore", divide="ignore"):
        ndsi = (green - swir) / (green + swir)
    times = pd.DatetimeIndex(bands["time"].values)
    for i, when in enumerate(times):
        seen = ok[i]
        ice = seen & (ndsi[i] > ICE_NDSI) & (green[i] > ICE_GREEN)
        far = seen & ~ndimage.maximum_filter(~seen, size=2 * params.cloud_buffer_px + 1)
        scene: dict = {"date": f"{when:%Y-%m-%d}", "facilities": {}}
        for f in facilities:
            entry: dict = {
                "water_clear": int((f.water & seen).sum()),
                "ice_px": int((f.water & ice).sum()),
            }
            if f.berths.any():
                berth = f.berths & far
                entry["berth_clear"] = int(berth.sum())
                entry["objects"] = _bright_objects(berth, nir[i], ndsi[i], params, row0, col0)
            scene["facilities"][f.name] = entry
        doc["scenes"].append(scene)
    return doc


def _bright_objects(berth, nir, ndsi, params: ActivityParams, row0: int, col0: int) -> list:
    """``[pixels, row0, col0, row1, col1]`` (site grid, inclusive) of each group of
    ship-like pixels among the clear berth pixels `berth`."""
    if not berth.any():
        return []
    # Open water at the berths, the background ships stand out from: water by its colour
    # (high NDSI, like ice) and dark in the NIR (unlike ice). A frozen berth has none: a
    # ship there is darker than the ice around it, but still brighter than water would be.
    water = berth & (ndsi >= params.ship_max_ndsi) & (nir < WATER_MAX_NIR)
    background = float(np.median(nir[water])) if water.sum() >= 10 else OPEN_WATER_NIR
    bright = berth & (nir > background + params.ship_nir_contrast)
    bright &= ndsi < params.ship_max_ndsi
    # A hull's bright pixels may leave a gap of a pixel where it crosses the pixel lattice
    # at a slant: pixels up to two apart are one group (one ship lies in a berth at a time).
    grouped, _ = ndimage.label(ndimage.binary_dilation(bright, EIGHT), EIGHT)
    labels = np.where(bright, grouped, 0)
    out = []
    for k, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None:
            continue
        size = int((labels[sl] == k + 1).sum())
        out.append(
            [size, sl[0].start + row0, sl[1].start + col0, sl[0].stop - 1 + row0,
             sl[1].stop - 1 + col0]
        )  # fmt: skip
    return out
