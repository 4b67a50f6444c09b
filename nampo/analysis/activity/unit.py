"""Facility activity in the unit: from the scenes one (tile, month) unit has read, the
partial counts of its tile (pixels, and each bright object at the berths with its bounding
box on the site grid), stored with the unit. The rules: ``docs/change.md``, "Activity"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import xarray as xr
from rasterio.features import rasterize
from scipy import ndimage

from nampo.analysis.activity.params import ActivityParams
from nampo.analysis.activity.ships import axis_of, berth_axis, split_ships
from nampo.products.classes import DARK, ICE, WATER
from nampo.sites import Site, Tile

__all__ = [
    "FacilityPixels",
    "berth_looks",
    "facility_pixels",
    "looks_grid",
    "open_water_nir",
    "unit_activity",
    "water_colour",
]

EIGHT = np.ones((3, 3), bool)
ICE_NDSI, ICE_GREEN = 0.4, 0.2
"""Ice: the rule of :func:`nampo.products.classes.landcover`."""
WATER_MAX_NIR = 0.1
"""Water is darker than this in the NIR (the rule of :func:`nampo.products.classes.landcover`)."""
MIN_WATER_PX = 10
"""Fewest berth pixels of water's (or ice's) colour a scene must show for its vessels to be
counted (and for the open water's brightness to be read from them)."""
OPEN_WATER_NIR = 0.03
"""NIR of open turbid water (0.01-0.04 in the Yellow Sea's estuaries), the background of
a scene whose berths and tile show no open water (frozen)."""
CLEAR_WATER_MAX_NIR = 0.05
"""Open water is darker than this in the NIR under a clear sky (clear sea 0.005-0.03,
turbid estuaries 0.01-0.04); brighter, haze or fog the mask missed lies on it, and a
scene's water is read by its colour alone (fog is white: NDSI about 0.35)."""
BERTH_MARGIN_PX = 2
"""The tile's open water a scene's water is read from lies at least this many pixels from
any berth pixel: the ships are not in it."""


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
    """Pixels inside its berths (pixel centres)."""
    axis: np.ndarray
    """Direction of the long axis of the berth each pixel lies in (radians, x east, y
    north; NaN outside the berths): the direction ships lie in."""


def facility_pixels(site: Site, tile: Tile, base_landcover: np.ndarray) -> list[FacilityPixels]:
    """The pixels of each facility that fall in `tile` (facilities outside it left out)."""
    grid = site.tile_grid(tile)
    water = np.asarray(base_landcover) == WATER
    berths = dict(site.berths)
    out = []
    for name, _, outline in site.facilities:
        area = _mask(grid, [outline])
        # Not the baseline's water: where ships lie most days the baseline reads "built".
        # The outline less its pixels beside land (a quay's or pier's edge, mixed with
        # concrete); its edges on open water stay: a 35 m berth along a pier is three or
        # four pixels across, and a ship on it needs them all. Mixed pixels the outline
        # still holds are left out by their colour in the unit.
        outline = _mask(grid, berths.get(name, ()))
        berth = outline & ~ndimage.binary_dilation(~outline & ~water, EIGHT)
        axis = np.full(grid.shape, np.nan, "f4")
        for b in berths.get(name, ()):
            rect = grid.from_lonlat(b).minimum_rotated_rectangle
            axis[_mask(grid, [b])] = berth_axis(list(rect.exterior.coords))
        if area.any() or berth.any():
            out.append(FacilityPixels(name, area, area & water, berth, axis))
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
    baseline: Mapping | None = None,
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
    baseline : the tile's baseline looks at its berths (:func:`berth_looks`); None when
        the baseline has none (written before product version 6): the month decides alone.
    """
    row0, col0 = tile.rows[0], tile.cols[0]
    lc = np.asarray(landcover.values)
    ok = np.asarray(clear.values)
    base_lc = np.asarray(base_landcover.values)
    pixels = facility_pixels(site, tile, base_lc)
    if bands.sizes.get("time", 0):
        berths = _all_berths(pixels, lc.shape)
        green, nir, ndsi, water, open_nir = _scene_water(bands, ok, base_lc, berths, params)
        # Water (or ice) in at least one clear scene of the month: a pixel ships come and go
        # from. A pixel with a tenth of quay, pier or hull in it all month never shows water
        # (concrete and steel brighten it in the NIR and SWIR, and pull its NDSI down).
        water_once = water.any(axis=0)
        seen_twice = ok.sum(axis=0) >= 2
    else:
        water_once = seen_twice = np.zeros(lc.shape, bool)
    # A pixel that showed water in the baseline year is where ships come and go.
    came_and_went = np.zeros(lc.shape, bool)
    if baseline is not None:
        came_and_went = looks_grid(baseline, lc.shape)[1] > 0
    # Land and structures in a berth outline: not water in the baseline class map, nor in
    # any of at least two clear scenes of the month (a quay's edge, a pier), nor in any
    # clear scene of the baseline year. The class map alone would not do: where ships lie
    # on most days it reads "built". One clear scene cannot tell a ship from a structure
    # (issue 18: under 62-87 % cloud, sound-port's months have one clear scene, and a
    # ferry in it made its own pixels structure), nor can a month with a ship moored in
    # every clear scene of it (pier-mini's pier, August-October 2021): a ship stays days or
    # weeks, a structure for good, and a pixel that showed water in the baseline year is
    # not one. Left out with the structures: the pixels beside them unless they showed
    # water this month (the shore's mixed pixels read as water in the class map, but are
    # brighter; a ship moored against a pier keeps the pixels that showed water when it
    # was away). The price: a structure built into a berth since the baseline showed
    # water there, and is read as a ship where it has a ship's size (``docs/change.md``,
    # Activity and Limits).
    structure = (base_lc != WATER) & ~water_once & seen_twice & ~came_and_went
    structure &= ~np.isin(lc, (WATER, ICE, 0))
    static = ndimage.binary_dilation(structure, EIGHT) & ~water_once & ~came_and_went
    facilities = [replace(f, berths=f.berths & ~static) for f in pixels]
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
                # water or ice: none when haze the mask missed (fog) lies over the berths,
                # white, lighting them like hulls (vessel_series: unseen)
                entry["berth_water"] = int((berth & water[i]).sum())
                entry["objects"] = _bright_objects(
                    berth, nir[i], ndsi[i], params, row0, col0, f.axis, water[i], open_nir[i]
                )
            scene["facilities"][f.name] = entry
        doc["scenes"].append(scene)
    return doc


def _all_berths(pixels: list[FacilityPixels], shape: tuple[int, ...]) -> np.ndarray:
    """The berth pixels of every facility of a tile (of `shape`), as one mask."""
    out = np.zeros(shape, bool)
    for f in pixels:
        out |= f.berths
    return out


def _scene_water(
    bands: xr.Dataset, ok: np.ndarray, base_lc: np.ndarray, berths: np.ndarray, params
):
    """(green, nir, ndsi, water, open_nir) of the scenes of `bands`: `water` (time, y, x) the
    clear pixels that show water or ice (:func:`water_colour`), against each scene's open
    water (`open_nir`, time): the tile's baseline water away from the `berths`."""
    green, nir, swir = (np.asarray(bands[b].values) for b in ("green", "nir", "swir16"))
    with np.errstate(invalid="ignore", divide="ignore"):
        ndsi = (green - swir) / (green + swir)
    near = ndimage.binary_dilation(berths, EIGHT, iterations=BERTH_MARGIN_PX)
    open_nir = open_water_nir(nir, ok, (base_lc == WATER) & ~near)
    water = ok & water_colour(nir, ndsi, open_nir[:, None, None], params)
    return green, nir, ndsi, water, open_nir


def berth_looks(
    site: Site,
    tile: Tile,
    bands: xr.Dataset,
    clear: xr.DataArray,
    base_landcover: np.ndarray,
    params: ActivityParams = ActivityParams(),  # noqa: B008 (frozen)
) -> dict:
    """The baseline's looks at the berths of `tile`, stored with its baseline: for each
    berth pixel (tile rows and columns, every facility's), the clear scenes of the baseline
    period and how many of them showed water or ice there, read as the month units read
    them (:func:`water_colour`). What :func:`unit_activity` remembers of the baseline year:
    a pixel that never showed water in it is a structure, one that did is where ships come
    and go. Plain JSON values; the same inputs give the same document.

    Parameters
    ----------
    bands : the baseline period's per-scene reflectance (time, y, x).
    clear : bool (time, y, x), the observation is clear.
    base_landcover : the tile's baseline class map (y, x).
    """
    base_lc = np.asarray(base_landcover)
    pixels = facility_pixels(site, tile, base_lc)
    berths = _all_berths(pixels, base_lc.shape)
    rows, cols = np.nonzero(berths)
    clear_n = water_n = np.zeros(rows.size, int)
    if bands.sizes.get("time", 0) and rows.size:
        ok = np.asarray(clear.values)
        water = _scene_water(bands, ok, base_lc, berths, params)[3]
        clear_n, water_n = ok[:, rows, cols].sum(axis=0), water[:, rows, cols].sum(axis=0)
    return {
        "tile": tile.id,
        "berths": {
            "rows": rows.tolist(),
            "cols": cols.tolist(),
            "clear": [int(n) for n in clear_n],
            "water": [int(n) for n in water_n],
        },
    }


def looks_grid(looks: Mapping, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(clear, water) looks of :func:`berth_looks` as (y, x) counts of the tile's shape,
    zero off the berths."""
    clear, water = np.zeros(shape, int), np.zeros(shape, int)
    b = looks["berths"]
    rows, cols = np.asarray(b["rows"], int), np.asarray(b["cols"], int)
    clear[rows, cols], water[rows, cols] = b["clear"], b["water"]
    return clear, water


def open_water_nir(nir: np.ndarray, clear: np.ndarray, sea: np.ndarray) -> np.ndarray:
    """Each scene's NIR of open water (time,): the median over the clear pixels of `sea`
    (the tile's water away from the berths) that are dark like water (NIR under
    ``WATER_MAX_NIR``: not ice); NaN with fewer than ``MIN_WATER_PX`` of them, or when
    their median is ``CLEAR_WATER_MAX_NIR`` or brighter (haze or fog on the water: fog
    over the berths would read as water like it)."""
    out = np.full(nir.shape[0], np.nan, "f4")
    for i in range(nir.shape[0]):
        with np.errstate(invalid="ignore"):
            dark = sea & clear[i] & (nir[i] < WATER_MAX_NIR)
        if dark.sum() >= MIN_WATER_PX:
            out[i] = np.median(nir[i][dark])
    return np.where(out < CLEAR_WATER_MAX_NIR, out, np.nan).astype("f4")


def water_colour(nir, ndsi, open_nir, params: ActivityParams) -> np.ndarray:
    """Pixels that show water or ice: NDSI at least ``ship_max_ndsi`` (turbid water, ice),
    or NIR closer to the scene's open water `open_nir` than to a ship (under it by less
    than half ``ship_nir_contrast``; NaN: no open water seen, the NDSI alone decides).

    Clear water is as dark in the SWIR as in the NIR, so its NDSI is the ratio of two
    small, noisy numbers: 0.35-0.62 in real Sentinel-2 coastal scenes, a single pixel
    lower still. Water of every kind is darker in the NIR than quays, hulls and fog.
    """
    with np.errstate(invalid="ignore"):
        return (ndsi >= params.ship_max_ndsi) | (nir < open_nir + params.ship_nir_contrast / 2)


def _bright_objects(
    berth,
    nir,
    ndsi,
    params: ActivityParams,
    row0: int,
    col0: int,
    axis=None,
    water=None,
    open_nir: float = np.nan,
) -> list:
    """``[pixels, row0, col0, row1, col1]`` (site grid, inclusive) of each ship among the
    clear berth pixels `berth`: each group of ship-like pixels, split into the ships it
    holds by its shape along the berths' `axis` (:func:`.ships.split_ships`; the group's
    own longer side when not given). `water`: the pixels that show water or ice
    (:func:`water_colour`; by their NDSI alone when not given); `open_nir`: the scene's
    open water away from the berths (NaN: none seen)."""
    if not berth.any():
        return []
    if water is None:
        water = water_colour(nir, ndsi, open_nir, params)
    # Open water at the berths, the background ships stand out from: water (like ice) and
    # dark in the NIR (unlike ice). A frozen berth has none: a ship there is darker than the
    # ice around it, but still brighter than water would be: the tile's open water, or
    # (frozen too) turbid water's.
    water = berth & water & (nir < WATER_MAX_NIR)
    if water.sum() >= MIN_WATER_PX:
        background = float(np.median(nir[water]))
    else:
        background = OPEN_WATER_NIR if np.isnan(open_nir) else float(open_nir)
    bright = berth & (nir > background + params.ship_nir_contrast)
    bright &= ndsi < params.ship_max_ndsi
    # A hull's bright pixels may leave a gap of a pixel where it crosses the pixel lattice
    # at a slant: pixels up to two apart are one group, and ships moored close together
    # in one group are told apart by its shape (split_ships).
    grouped, _ = ndimage.label(ndimage.binary_dilation(bright, EIGHT), EIGHT)
    labels = np.where(bright, grouped, 0)
    # what the ships' shapes are read from: a quay, pier or cloud beside a ship is not ship
    image = np.where(berth, np.clip(nir - background, 0, None), np.nan)
    out = []
    for k, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None:
            continue
        rr, cc = np.nonzero(labels[sl] == k + 1)
        rr, cc = rr + sl[0].start, cc + sl[1].start
        angles = np.empty(0) if axis is None else axis[rr, cc][~np.isnan(axis[rr, cc])]
        # the berth's direction; without one, the group's own longer side
        if angles.size:
            angle = axis_of(angles)
        else:
            angle = 0.0 if np.ptp(cc) >= np.ptp(rr) else np.pi / 2
        for ship in split_ships(rr, cc, image, angle, params):
            r, c = rr[ship], cc[ship]
            out.append(
                [int(ship.size), int(r.min()) + row0, int(c.min()) + col0,
                 int(r.max()) + row0, int(c.max()) + col0]
            )  # fmt: skip
    return sorted(out, key=lambda o: (o[1], o[2]))
