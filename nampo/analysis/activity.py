"""Facility activity: vessels at the berths and ice on the water in every clear scene, coal
on the yards every month.

Computed inside each (tile, month) unit from the scenes it has read anyway
(:func:`unit_activity`), stored with the unit (``nampo/activity/<tile>/<YYYY-MM>.json``,
see ``docs/store.md``), and assembled into site-wide series when read
(:func:`vessel_series`, :func:`ice_series`, :func:`coal_series`). A facility may span
tiles, so a unit stores only *partial* counts of its tile (pixels, and each bright object
with its bounding box on the site grid); the readers sum the partials over the tiles and
join objects cut by a tile edge before the size filter. So the units stay independent
(each writes its own objects, in any order, any number of times) and a re-run rewrites
the same bytes.

Vessels (per scene and facility with berths)
    The berth pixels: inside the facility's berth outlines shrunk by one pixel, so that the
    mixed pixels along a quay or pier are left out, and without the pixels that are not
    water in the baseline nor in the month's composite (a quay's edge where the outline
    runs across the pixel lattice; not the baseline's water alone: where ships lie most
    days, the baseline median reads "built"). A berth pixel is *ship-like* when it is
    clear, brighter in the NIR than the scene's open water at the berths by
    :attr:`ActivityParams.ship_nir_contrast`
    and not ice or water by its colour (NDSI below :attr:`ActivityParams.ship_max_ndsi`:
    steel decks are grey, about 0, open water and sea ice 0.7-0.9; ice is brighter in the
    NIR than ships, so brightness alone would count the frozen harbour). Ship-like pixels
    are grouped (8-neighbours); a group is a vessel when its size is between
    :attr:`ActivityParams.min_ship_px` and :attr:`ActivityParams.max_ship_px` (a 80 m x
    14 m coaster covers about 10 pixels, a 190 m x 32 m bulk carrier about 80). A scene
    counts for a facility when at least :attr:`ActivityParams.min_clear_share` of its berth
    pixels are clear and at least :attr:`ActivityParams.cloud_buffer_px` pixels (100 m)
    from any observation that is not (the haze around a cloud, which the mask misses, is
    bright over water like a hull); otherwise its count is unknown (NaN), never zero.

Ice (per scene and facility)
    The facility's open water in the baseline; ice where the scene's pixel is clear and
    reads as ice (NDSI > 0.4 and green > 0.2, the rule of :func:`nampo.products.indices.landcover`).
    The fraction is over the clear water pixels, for scenes where at least
    ``min_clear_share`` of that water is clear.

Coal (per month and facility)
    Pixels of the monthly composite classed dark (coal, :data:`nampo.products.indices.DARK`) inside
    the facility's outline, in m², with the share of the outline that had a clear month.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import xarray as xr
from rasterio.features import rasterize
from scipy import ndimage

from nampo.products.indices import DARK, ICE, WATER
from nampo.sites import Site, Tile

EIGHT = np.ones((3, 3), bool)
ICE_NDSI, ICE_GREEN = 0.4, 0.2
"""Ice: the rule of :func:`nampo.products.indices.landcover`."""
WATER_MAX_NIR = 0.1
"""Water is darker than this in the NIR (the rule of :func:`nampo.products.indices.landcover`)."""
OPEN_WATER_NIR = 0.03
"""NIR of open turbid water (0.01-0.04 in the Yellow Sea's estuaries), the background of
a scene whose berths show no open water (frozen)."""


@dataclass(frozen=True)
class ActivityParams:
    """How vessels and ice are read from one scene (in the unit) and counted (when read)."""

    ship_nir_contrast: float = 0.04
    """NIR reflectance a ship-like pixel has above the scene's open water at the berths
    (ships about 0.16, turbid water 0.02-0.04: a pixel a third covered by a hull passes)."""
    ship_max_ndsi: float = 0.6
    """Largest NDSI of a ship-like pixel (steel about 0, open water and ice 0.7-0.9). Not
    lower: the SWIR band is 20 m, so a 15 m-wide hull shares its SWIR pixel with water
    and reads 0.4-0.5."""
    cloud_buffer_px: int = 10
    """Berth pixels within this many pixels (100 m) of an observation that is not clear
    count as not clear: the thin haze around a cloud, which the mask misses, is bright
    over water like a hull."""
    min_ship_px: int = 6
    """Smallest vessel in pixels (600 m², half a 80 m x 14 m coaster): fewer are noise,
    a cloud's unmasked edge, a buoy or a tug."""
    max_ship_px: int = 150
    """Largest vessel in pixels: more is a slick of haze or a pier under construction."""
    min_clear_share: float = 0.9
    """Share of a facility's berth (or water) pixels that must be clear for a scene to
    count: a ship under a cloud is unseen, not absent."""


# --------------------------------------------------------------------------------------
# In the unit: partial counts of one tile


@dataclass(frozen=True)
class FacilityPixels:
    name: str
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
            entry = {
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


# --------------------------------------------------------------------------------------
# When read: site-wide series from the units' partial counts


def _by_month(docs: Iterable[Mapping]) -> dict[str, list[Mapping]]:
    out: dict[str, list[Mapping]] = defaultdict(list)
    for d in docs:
        out[d["month"]].append(d)
    return out


def _totals(docs: list[Mapping]) -> dict[str, dict[str, int]]:
    tot: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d in docs:
        for name, counts in d["facilities"].items():
            for k, v in counts.items():
                tot[name][k] += v
    return tot


def merge_objects(parts: list[list[list[int]]]) -> list[int]:
    """Sizes of the objects of one facility and scene, joining across tile edges.

    `parts` holds each tile's objects (``[pixels, row0, col0, row1, col1]``). Objects of
    different tiles whose boxes are at most two pixels apart (the gap a group bridges
    within a tile) are one object cut by the tile edge: within a tile, groups are whole.
    """
    objs = [(t, o) for t, part in enumerate(parts) for o in part]
    parent = list(range(len(objs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (ti, a) in enumerate(objs):
        for j in range(i + 1, len(objs)):
            tj, b = objs[j]
            if (
                ti != tj
                and a[1] <= b[3] + 2
                and b[1] <= a[3] + 2
                and a[2] <= b[4] + 2
                and b[2] <= a[4] + 2
            ):
                parent[find(i)] = find(j)
    sizes: dict[int, int] = defaultdict(int)
    for i, (_, o) in enumerate(objs):
        sizes[find(i)] += o[0]
    return sorted(sizes.values(), reverse=True)


def vessel_series(
    docs: Iterable[Mapping], params: ActivityParams = ActivityParams()
) -> pd.DataFrame:  # noqa: B008
    """Vessels counted per facility (with berths) and scene.

    Columns: ``date``, ``facility``, ``berth_px`` (the facility's berth pixels over all
    tiles), ``clear_share``, ``vessels`` (NaN when less than ``min_clear_share`` of the
    berths was clear) and ``sizes`` (pixels of each vessel).
    """
    rows = []
    for docs_m in _by_month(docs).values():
        total = _totals(docs_m)
        scenes: dict[tuple[str, str], list[Mapping]] = defaultdict(list)
        for d in docs_m:
            for s in d["scenes"]:
                for name, e in s["facilities"].items():
                    if "berth_clear" in e:
                        scenes[(s["date"], name)].append(e)
        for (date, name), parts in scenes.items():
            berth_px = total[name]["berth_px"]
            share = sum(p["berth_clear"] for p in parts) / berth_px if berth_px else 0.0
            sizes = [
                n for n in merge_objects([p["objects"] for p in parts])
                if params.min_ship_px <= n <= params.max_ship_px
            ]  # fmt: skip
            ok = berth_px > 0 and share >= params.min_clear_share
            rows.append(
                {"date": dt.date.fromisoformat(date), "facility": name, "berth_px": berth_px,
                 "clear_share": round(share, 4), "vessels": len(sizes) if ok else np.nan,
                 "sizes": sizes if ok else []}
            )  # fmt: skip
    cols = ["date", "facility", "berth_px", "clear_share", "vessels", "sizes"]
    return pd.DataFrame(rows, columns=cols).sort_values(["date", "facility"], ignore_index=True)


def ice_series(docs: Iterable[Mapping], params: ActivityParams = ActivityParams()) -> pd.DataFrame:  # noqa: B008
    """Ice fraction of each facility's open water per scene.

    Columns: ``date``, ``facility``, ``water_px``, ``clear_share``, ``ice_fraction`` (NaN
    when less than ``min_clear_share`` of the water was clear).
    """
    rows = []
    for docs_m in _by_month(docs).values():
        total = _totals(docs_m)
        acc: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for d in docs_m:
            for s in d["scenes"]:
                for name, e in s["facilities"].items():
                    acc[(s["date"], name)][0] += e["water_clear"]
                    acc[(s["date"], name)][1] += e["ice_px"]
        for (date, name), (clear, ice) in acc.items():
            water = total[name]["water_px"]
            if not water:
                continue
            share = clear / water
            frac = ice / clear if clear and share >= params.min_clear_share else np.nan
            rows.append(
                {"date": dt.date.fromisoformat(date), "facility": name, "water_px": water,
                 "clear_share": round(share, 4), "ice_fraction": frac}
            )  # fmt: skip
    cols = ["date", "facility", "water_px", "clear_share", "ice_fraction"]
    return pd.DataFrame(rows, columns=cols).sort_values(["date", "facility"], ignore_index=True)


def coal_series(docs: Iterable[Mapping], resolution: float = 10.0) -> pd.DataFrame:
    """Coal-covered area of each facility per month (every facility; the coal yards are
    those where it is not zero).

    Columns: ``month``, ``facility``, ``area_m2`` (the outline), ``clear_share`` (of the
    outline with a clear month), ``coal_m2``.
    """
    px = resolution * resolution
    rows = []
    for month, docs_m in _by_month(docs).items():
        for name, t in _totals(docs_m).items():
            if not t["area_px"]:
                continue
            rows.append(
                {"month": dt.date.fromisoformat(month + "-01"), "facility": name,
                 "area_m2": t["area_px"] * px,
                 "clear_share": round(t["clear_month_px"] / t["area_px"], 4),
                 "coal_m2": t["coal_px"] * px}
            )  # fmt: skip
    cols = ["month", "facility", "area_m2", "clear_share", "coal_m2"]
    return pd.DataFrame(rows, columns=cols).sort_values(["month", "facility"], ignore_index=True)


def describe(docs: Iterable[Mapping], titles: Mapping[str, str] | None = None) -> list[str]:
    """The activity series in a few sentences: vessels per facility (mean per clear scene,
    per half-year), the winters' ice on the water, the coal on the yards."""
    docs = list(docs)
    titles = dict(titles or {})
    name = lambda n: titles.get(n, n.replace("_", " "))  # noqa: E731
    lines = []
    vs = vessel_series(docs).dropna(subset=["vessels"])
    for fac, g in vs.groupby("facility"):
        half = (
            pd.to_datetime(g["date"])
            .dt.to_period("Q")
            .map(lambda q: f"{q.year}H{1 + (q.quarter > 2)}")
        )
        per = g.groupby(half)["vessels"].mean()
        busiest = per.idxmax() if len(per) else "-"
        lines.append(
            f"{name(fac)}: {g['vessels'].mean():.1f} vessels per clear scene over {len(g)} "
            f"clear scenes, at most {int(g['vessels'].max())}; busiest {busiest} "
            f"({per.max():.1f} a scene), quietest {per.idxmin()} ({per.min():.1f})"
        )
    ice = ice_series(docs).dropna(subset=["ice_fraction"])
    if len(ice):
        water = ice.groupby("facility")["water_px"].max().idxmax()  # the widest water
        g = ice[ice["facility"] == water]
        frozen = g[g["ice_fraction"] >= 0.05]
        if len(frozen):
            peak = g.loc[g["ice_fraction"].idxmax()]
            lines.append(
                f"Ice on the {name(water)[:1].lower()}{name(water)[1:]}: seen in "
                f"{len(frozen)} of {len(g)} clear scenes, from "
                f"{frozen['date'].min():%d %b %Y} to {frozen['date'].max():%d %b %Y}, most "
                f"{peak['ice_fraction']:.0%} on {peak['date']:%d %b %Y}"
            )
        else:
            lines.append(f"No ice on the {name(water)} in {len(g)} clear scenes")
    coal = coal_series(docs)
    coal = coal[coal["clear_share"] >= 0.9]
    for fac, g in coal.groupby("facility"):
        if g["coal_m2"].max() < 1e4:  # a few dark pixels are not a coal yard
            continue
        top = g.loc[g["coal_m2"].idxmax()]
        lines.append(
            f"Coal at the {name(fac)[:1].lower()}{name(fac)[1:]}: {g['coal_m2'].mean() / 1e4:.1f} "
            f"ha on average over {len(g)} clear months, most {top['coal_m2'] / 1e4:.1f} ha in "
            f"{top['month']:%B %Y}"
        )
    return lines
