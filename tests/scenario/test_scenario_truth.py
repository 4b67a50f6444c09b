"""Tests that a rendered scenario archive tells the truth.

The archive (``nampo.scenario.archive``) publishes simulated Sentinel-2 L2A items and,
beside them, the ground truth they were drawn from. Change detection is scored against
that truth, so the two must agree: the COGs are valid COGs with Earth Search's encoding,
each class's pixels have the reflectance that class has in reality, every event of the
scenario is in the truth rasters at its place and dates, and the SCL band reports the
clouds that were drawn.

Measurements are made on the harbour-mini archive (fast); the slow test repeats the event
checks on the full Nampo scenario. The helpers at the top (``view``, ``core``) are also
used by ``tests/scenario/test_scenario_realism.py``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio import features
from rio_cogeo.cogeo import cog_validate
from scipy import ndimage
from shapely.geometry import Polygon, shape

from nampo.grid import Grid
from nampo.scenario import spectra as sp
from nampo.scenario.archive import Archive, build_archive
from nampo.scenario.layout import day_number
from nampo.scenario.model import ACTIVITY_EVENTS, CLASS_CODES, EventType, LandCover
from tests.conftest import MINI

SWITCH = dt.date(2022, 1, 25)  # ESA processing baseline 04.00: BOA_ADD_OFFSET = -1000
REFLECTANCE_KEYS = [b.key for b in sp.BANDS]
RESOLUTION = {b.key: b.resolution for b in sp.BANDS}
WATER, VEGETATION, ICE, SHIP = (
    LandCover.water.code,
    LandCover.vegetation.code,
    LandCover.ice.code,
    LandCover.ship.code,
)
CROSS = ndimage.generate_binary_structure(2, 1)

# --------------------------------------------------------------------------------------
# Reading an archive


@cache
def items_of(path: Path) -> tuple[dict, ...]:
    """The archive's STAC items, in the order of items.ndjson."""
    return tuple(json.loads(line) for line in (path / "items.ndjson").read_text().splitlines())


@cache
def scenes_of(path: Path) -> dict[str, dict]:
    """truth/scenes.csv rows by datatake id."""
    with open(path / "truth" / "scenes.csv", newline="") as f:
        return {row["datatake"]: row for row in csv.DictReader(f)}


@cache
def events_of(path: Path) -> tuple[dict, ...]:
    return tuple(json.loads((path / "truth" / "events.geojson").read_text())["features"])


@cache
def _take_of_item(path: Path) -> dict[str, str]:
    return {i: take for take, row in scenes_of(path).items() for i in row["items"].split()}


def read_truth(path: Path, take: str) -> tuple[np.ndarray, Affine]:
    """(4, rows, cols) truth of a datatake: class, cloud %, shadow %, covered."""
    with rasterio.open(path / "truth" / "scenes" / f"{take}.tif") as src:
        return src.read(), src.transform


@dataclass
class View:
    """One item's pixels and its datatake's truth, both on the site's 10 m grid.

    Bands coarser than 10 m are repeated onto the 10 m grid (each 10 m pixel takes the
    value of the 20 m or 60 m pixel it lies in), so every mask of the truth applies to
    every band.
    """

    item: dict
    take: str
    truth: np.ndarray
    site_transform: Affine
    _dn: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def date(self) -> dt.date:
        return dt.date.fromisoformat(self.item["properties"]["datetime"][:10])

    @property
    def cls(self) -> np.ndarray:
        return self.truth[0]

    @property
    def cloud(self) -> np.ndarray:
        return self.truth[1]

    @property
    def shadow(self) -> np.ndarray:
        return self.truth[2]

    def dn(self, key: str) -> np.ndarray:
        """The asset's values on the site's 10 m grid (0, its nodata, outside the item)."""
        if key not in self._dn:
            with rasterio.open(self.item["assets"][key]["href"]) as src:
                data, tr = src.read(1), src.transform
            k = round(tr.a / 10)
            data = np.repeat(np.repeat(data, k, axis=0), k, axis=1)
            row = round((self.site_transform.f - tr.f) / 10)
            col = round((tr.c - self.site_transform.c) / 10)
            out = np.zeros(self.truth.shape[1:], data.dtype)
            # 60 m pixels need not line up with the site's edge: clip what sticks out.
            r0, c0 = max(row, 0), max(col, 0)
            h = min(row + data.shape[0], out.shape[0]) - r0
            w = min(col + data.shape[1], out.shape[1]) - c0
            out[r0 : r0 + h, c0 : c0 + w] = data[r0 - row : r0 - row + h, c0 - col : c0 - col + w]
            self._dn[key] = out
        return self._dn[key]

    def refl(self, key: str) -> np.ndarray:
        """Reflectance by the item's own ``raster:bands`` scale and offset; NaN at nodata."""
        band = self.item["assets"][key]["raster:bands"][0]
        dn = self.dn(key)
        return np.where(dn == band["nodata"], np.nan, dn * band["scale"] + band["offset"]).astype(
            "f4"
        )

    @property
    def inside(self) -> np.ndarray:
        """Pixels of the site that this item has data for."""
        return self.dn("blue") > 0

    def clear(self) -> np.ndarray:
        """Pixels with no cloud and no shadow drawn, and not flagged cloudy by SCL."""
        return (
            self.inside
            & (self.cloud == 0)
            & (self.shadow == 0)
            & ~np.isin(
                self.dn("scl"),
                (sp.SCL_NO_DATA, sp.SCL_CLOUD_MEDIUM, sp.SCL_CLOUD_HIGH, sp.SCL_CIRRUS),
            )
        )


def view(path: Path, item: dict) -> View:
    take = _take_of_item(path)[item["id"]]
    truth, transform = read_truth(path, take)
    return View(item, take, truth, transform)


def full_views(path: Path) -> Iterator[View]:
    """One view per datatake: the items of the tile that covers the whole site."""
    for item in items_of(path):
        if item["properties"]["grid:code"] == "MGRS-51SYC":
            yield view(path, item)


def core(mask: np.ndarray, resolution: int) -> np.ndarray:
    """Pixels of `mask` whose `resolution` pixel lies wholly inside the mask, with a
    margin for the scene's sub-pixel misregistration: pure pixels of a class."""
    if resolution == 10:
        return ndimage.binary_erosion(mask, CROSS)
    if resolution == 20:  # a 20 m pixel spans a 10 m pixel and one neighbour each way
        return ndimage.binary_erosion(mask, np.ones((5, 5), bool))
    return ndimage.binary_erosion(mask, np.ones((13, 13), bool))  # 60 m


def block20(a: np.ndarray, how: str = "mean") -> np.ndarray:
    """A 10 m site-grid array reduced to the site's 20 m grid (which Sentinel-2 shares)."""
    h, w = a.shape[0] // 2, a.shape[1] // 2
    blocks = a[: 2 * h, : 2 * w].reshape(h, 2, w, 2).astype("f4")
    return getattr(blocks, how)(axis=(1, 3))


def rasterize_lonlat(
    geometry: dict, grid_transform: Affine, shape_: tuple[int, int], epsg: int
) -> np.ndarray:
    """A lon/lat GeoJSON geometry burnt into a grid (pixel centres inside)."""
    g = Grid(epsg, grid_transform.a, grid_transform.c, grid_transform.f, shape_[1], shape_[0])
    geom = g.from_lonlat(shape(geometry))
    return features.rasterize(
        [(geom, 1)], out_shape=shape_, transform=grid_transform, dtype="uint8"
    ).astype(bool)


def majority(classes: np.ndarray) -> int | None:
    """Most common class code, leaving out no-data (0), ice and ships (they lie on top)."""
    keep = classes[(classes != 0) & (classes != ICE) & (classes != SHIP)]
    if keep.size == 0:
        return None
    return int(np.bincount(keep).argmax())


# --------------------------------------------------------------------------------------
# The files: COGs, DN encoding, footprints


def test_cogs_are_valid_with_earth_search_encoding(mini_archive: Archive) -> None:
    items = items_of(mini_archive.path)
    partial = [i for i in items if 0 < i["properties"]["s2:nodata_pixel_percentage"] < 100]
    west = [i for i in items if i["properties"]["grid:code"] == "MGRS-51SXC"]
    after = [i for i in items if i["properties"]["datetime"][:10] >= SWITCH.isoformat()]
    assert partial and west and after, "the mini scenario must have these kinds of items"
    sample = {i["id"]: i for i in (items[0], items[-1], partial[0], west[len(west) // 2], after[0])}
    for item in sample.values():
        for key, asset in item["assets"].items():
            href = asset["href"]
            valid, errors, warnings = cog_validate(href, quiet=True)
            assert valid and errors == [], (item["id"], key, errors)
            assert warnings == [], (item["id"], key, warnings)
            with rasterio.open(href) as src:
                assert src.nodata == 0, (item["id"], key)
                assert src.crs.to_epsg() == item["properties"]["proj:epsg"]
                assert list(src.shape) == asset["proj:shape"], (item["id"], key)
                assert list(src.transform)[:6] == asset["proj:transform"], (item["id"], key)
                if key in REFLECTANCE_KEYS or key in ("aot", "wvp"):
                    assert src.dtypes == ("uint16",), (item["id"], key)
                    assert asset["raster:bands"][0]["data_type"] == "uint16"
                elif key == "scl":
                    assert src.dtypes == ("uint8",)
                elif key == "visual":
                    assert src.count == 3 and src.dtypes == ("uint8",) * 3


def test_baseline_04_items_carry_the_reflectance_offset(mini_archive: Archive) -> None:
    """From 2022-01-25 DNs are reflectance x 10000 + 1000 and ``raster:bands`` says offset
    -0.1; before, offset 0. Metadata first, then the pixels themselves."""
    items = items_of(mini_archive.path)
    for item in items:
        p = item["properties"]
        new = p["datetime"][:10] >= SWITCH.isoformat()
        assert (p["s2:processing_baseline"] >= "04.00") == new, item["id"]
        assert p["earthsearch:boa_offset_applied"] == new, item["id"]
        for key in REFLECTANCE_KEYS:
            band = item["assets"][key]["raster:bands"][0]
            assert band["scale"] == 0.0001
            assert band["offset"] == (-0.1 if new else 0), (item["id"], key)

    # Clear water in an October 2021 and a March 2022 scene: the same surface, so its DNs
    # must differ by the offset (1000) give or take the day-to-day change of the water
    # itself, while reflectance read through raster:bands must agree. SWIR bands: water
    # is near 0.005 there whatever its sediment load (NIR varies by +-0.015 between days).
    def best(month: str) -> View:
        views = [
            view(mini_archive.path, i)
            for i in items
            if i["properties"]["datetime"].startswith(month)
            and i["properties"]["grid:code"] == "MGRS-51SYC"
        ]
        return max(views, key=lambda v: int((v.clear() & (v.cls == WATER)).sum()))

    old, new = best("2021-10"), best("2022-03")
    for key in ("swir16", "swir22"):
        m_old = core(old.clear() & (old.cls == WATER), RESOLUTION[key])
        m_new = core(new.clear() & (new.cls == WATER), RESOLUTION[key])
        assert m_old.sum() > 200 and m_new.sum() > 200
        d_old = float(np.median(old.dn(key)[m_old]))
        d_new = float(np.median(new.dn(key)[m_new]))
        assert 900 < d_new - d_old < 1100, (key, d_old, d_new)
        r_old = float(np.median(old.refl(key)[m_old]))
        r_new = float(np.median(new.refl(key)[m_new]))
        assert abs(r_new - r_old) < 0.01, (key, r_old, r_new)
        assert 0 <= r_new < 0.03


def test_item_footprints_match_valid_pixels(mini_archive: Archive) -> None:
    """Each item's geometry is where its B02 has data: the 51SXC items stop at the tile's
    east edge (inside the site), and partial datatakes have nodata where the swath is not."""
    tiles = {t.code: t for t in mini_archive.scenario.acquisitions.tiles}
    site = mini_archive.scenario.site_grid
    n_partial = n_cut = 0
    for item in items_of(mini_archive.path):
        asset = item["assets"]["blue"]
        with rasterio.open(asset["href"]) as src:
            valid = src.read(1) > 0
            tr, epsg = src.transform, src.crs.to_epsg()
        drawn = rasterize_lonlat(item["geometry"], tr, valid.shape, epsg)
        # Lon/lat vertices are good to a fraction of a metre, so pixel centres right on
        # the footprint's edge may fall either way; anywhere else they must agree.
        edge = drawn ^ ndimage.binary_erosion(drawn, CROSS, border_value=1)
        edge = ndimage.binary_dilation(edge, CROSS)
        wrong = valid ^ drawn
        assert not (wrong & ~edge).any(), item["id"]
        assert wrong.sum() <= 0.01 * valid.size, item["id"]
        # An item covers no more than its tile (51SXC ends inside the site).
        tile = tiles[item["properties"]["grid:code"].removeprefix("MGRS-")]
        east_edge = tile.x_origin + tile.size
        assert tr.c + tr.a * valid.shape[1] <= east_edge
        east = Grid(epsg, 10, 0, 0, 1, 1).from_lonlat(shape(item["geometry"])).bounds[2]
        assert east <= east_edge + 1, item["id"]
        if east_edge < site.bounds[2]:
            n_cut += 1
        # SCL (20 m) has data where its pixel centre is covered: where all four 10 m
        # pixels have data, and never where none has.
        with rasterio.open(item["assets"]["scl"]["href"]) as src:
            scl_valid = src.read(1) > 0
        assert not (scl_valid & ~(block20(valid, "max") > 0)).any(), item["id"]
        assert not (~scl_valid & (block20(valid, "min") > 0)).any(), item["id"]
        nodata_pct = 100 * (1 - scl_valid.mean())
        assert item["properties"]["s2:nodata_pixel_percentage"] == pytest.approx(
            nodata_pct, abs=1e-4
        )
        if 0 < nodata_pct < 100:
            n_partial += 1
    assert n_partial >= 3, "partial-coverage datatakes are part of the mini scenario"
    assert n_cut >= 50, "the mini site straddles the edge of tile 51SXC"


# --------------------------------------------------------------------------------------
# Spectra of the classes, on clear pure pixels, against published ranges


@pytest.fixture(scope="module")
def class_pixels(mini_archive: Archive) -> dict:
    """Reflectance of clear, pure pixels: ``(class, band, month) -> [array per scene]``.

    Pure: the band's pixel lies wholly inside one class of the truth map (see ``core``);
    clear: no cloud or shadow drawn there and SCL not cloudy. Also NDVI (10 m) and NDSI
    (B03 with the 20 m B11) under the keys ``"ndvi"`` and ``"ndsi"``.
    """
    out: dict = {}
    for v in full_views(mini_archive.path):
        clear = v.clear()
        refl = {k: v.refl(k) for k in REFLECTANCE_KEYS}
        for code in np.unique(v.cls[clear]):
            if code == 0:
                continue
            masks = {r: core(v.cls == code, r) & clear for r in (10, 20, 60)}
            for key in REFLECTANCE_KEYS:
                m = masks[RESOLUTION[key]]
                if m.any():
                    out.setdefault((int(code), key, v.date.month), []).append(refl[key][m])
            m10, m20 = masks[10], masks[20]
            if m10.any():
                nir, red = refl["nir"][m10], refl["red"][m10]
                out.setdefault((int(code), "ndvi", v.date.month), []).append(
                    (nir - red) / (nir + red)
                )
            if m20.any():
                green, swir = refl["green"][m20], refl["swir16"][m20]
                out.setdefault((int(code), "ndsi", v.date.month), []).append(
                    (green - swir) / (green + swir)
                )
    return out


def pooled(pixels: dict, code: int, key: str, months=range(1, 13)) -> np.ndarray:
    parts = [a for m in months for a in pixels.get((code, key, m), [])]
    return np.concatenate(parts) if parts else np.zeros(0, "f4")


def test_water_is_dark_in_nir_and_swir(class_pixels: dict) -> None:
    """Water absorbs the near and short-wave infrared: turbid estuaries stay below about
    0.05 in NIR in most pixels (Sen2Cor's and McFeeters' water tests rest on this), their
    most turbid water below 0.06 (the Loire at Nantes, OSCD, Level-1C: 95th percentile
    0.057 at the top of the atmosphere), and below 0.03 in SWIR; water is brighter in
    green than in NIR (NDWI > 0)."""
    nir, swir = pooled(class_pixels, WATER, "nir"), pooled(class_pixels, WATER, "swir16")
    green = pooled(class_pixels, WATER, "green")
    assert nir.size > 10_000
    assert np.median(nir) < 0.05 and np.quantile(nir, 0.97) < 0.06
    assert np.median(swir) < 0.03 and np.quantile(swir, 0.97) < 0.03
    for month in range(1, 13):  # every scene's median, not only the pool
        for a in class_pixels.get((WATER, "nir", month), []):
            if a.size > 100:
                assert np.median(a) < 0.05, month
    ndwi = (green - nir) / (green + nir)
    assert np.median(ndwi) > 0.2


def test_vegetation_is_green_in_summer_and_dormant_in_winter(class_pixels: dict) -> None:
    """Temperate grass and cropland: NDVI 0.6-0.9 at the July-August peak (MODIS and
    Sentinel-2 crop phenology of the Korean peninsula), 0.15-0.45 in mid-winter."""
    summer = pooled(class_pixels, VEGETATION, "ndvi", (7, 8))
    winter = pooled(class_pixels, VEGETATION, "ndvi", (12, 1, 2))
    assert summer.size > 1000 and winter.size > 1000
    assert np.median(summer) > 0.5 and np.quantile(summer, 0.05) > 0.5
    assert 0.15 < np.median(winter) < 0.45
    for month in (7, 8):
        for a in class_pixels.get((VEGETATION, "ndvi", month), []):
            if a.size > 100:
                assert np.median(a) > 0.5
    # the red edge: summer vegetation NIR far above red
    nir = pooled(class_pixels, VEGETATION, "nir", (7, 8))
    red = pooled(class_pixels, VEGETATION, "red", (7, 8))
    assert np.median(nir) > 4 * np.median(red)


def test_coal_is_dark_in_every_band(class_pixels: dict) -> None:
    """Coal (USGS splib07 anthracite and bituminous samples, stockpile studies): below
    0.08 from the coastal band to the SWIR, and flat (no band over twice another)."""
    code = LandCover.coal.code
    medians = []
    for key in REFLECTANCE_KEYS:
        a = pooled(class_pixels, code, key)
        assert a.size > 20, key
        assert np.median(a) < 0.08 and np.quantile(a, 0.95) < 0.08, key
        medians.append(float(np.median(a)))
    assert max(medians) < 2 * min(medians)


def test_ice_is_bright_with_snow_like_ndsi(class_pixels: dict) -> None:
    """Sea and river ice (with snow): NDSI > 0.4 (the snow test of Sen2Cor, MODIS and
    Landsat, Dozier 1989) and visible reflectance above 0.3."""
    ndsi = pooled(class_pixels, ICE, "ndsi")
    green = pooled(class_pixels, ICE, "green")
    assert ndsi.size > 100
    assert np.median(ndsi) > 0.4 and np.quantile(ndsi, 0.05) > 0.4
    assert np.median(green) > 0.3


def test_built_surfaces_are_brighter_than_water_in_every_band(class_pixels: dict) -> None:
    """Concrete, asphalt, roofs, tanks, piers and bare soil reflect 0.08-0.45 across the
    spectrum (USGS/ECOSTRESS man-made and soil spectra); water is darker in every band but
    one: at 443 nm (coastal aerosol) turbid estuary water is as bright as moist soil (both
    about 0.07-0.09), so that band is not compared for bare soil."""
    water = {k: float(np.median(pooled(class_pixels, WATER, k))) for k in REFLECTANCE_KEYS}
    checked = 0
    for cover in (
        LandCover.paved,
        LandCover.roof,
        LandCover.pier,
        LandCover.tank,
        LandCover.bare,
        LandCover.containers,
    ):
        for key in REFLECTANCE_KEYS:
            if cover == LandCover.bare and key == "coastal":
                continue
            a = pooled(class_pixels, cover.code, key)
            if a.size < 20:
                continue
            checked += 1
            assert np.median(a) > water[key], (cover.value, key)
    assert checked >= 4 * 4  # at least four classes in the 10 m bands
    # Soil: reflectance rises from the visible into SWIR-1 (moist silts, USGS splib07).
    bare = {
        k: np.median(pooled(class_pixels, LandCover.bare.code, k))
        for k in ("blue", "red", "swir16")
    }
    assert bare["blue"] < bare["red"] < bare["swir16"]


# --------------------------------------------------------------------------------------
# Events in the truth rasters


def _event_masks(
    path: Path, grid_transform: Affine, shape_: tuple[int, int], epsg: int
) -> dict[str, np.ndarray]:
    return {
        f["id"]: rasterize_lonlat(f["geometry"], grid_transform, shape_, epsg)
        for f in events_of(path)
    }


def check_land_cover_events(archive: Archive) -> int:
    """Majority class inside each land-cover event: `class_before` in the last scene
    before `start`, `class_after` in the first scene after `end` (while no later event
    changes the same ground), and the changed share never shrinking in between. Events
    smaller than a 10 m pixel (equipment, such as a crane) must not be the majority of any
    pixel, ever. Returns how many events were checked."""
    path = archive.path
    scenario = archive.scenario
    grid = scenario.site_grid
    masks = _event_masks(path, grid.transform, grid.shape, grid.epsg)
    takes = sorted(scenes_of(path).values(), key=lambda r: r["datetime"])
    dates = [dt.date.fromisoformat(r["date"]) for r in takes]
    spec = {e.id: e for e in scenario.events}
    feats = [f for f in events_of(path) if f["properties"]["class_before"] is not None]
    with rasterio.open(path / "truth" / "events.tif") as src:
        event_numbers = src.read(1)
    checked = 0
    for f in feats:
        p, ev = f["properties"], spec[f["id"]]
        start, end = ev.start, ev.end
        before, after = CLASS_CODES[LandCover(p["class_before"])], ev.target.code
        if ev.type == EventType.equipment or p["area_m2"] < 100:
            # Sub-pixel: the class it brings is never the majority around it, and the
            # per-pixel change raster does not claim it.
            geom = grid.from_lonlat(shape(f["geometry"]))
            around = (
                features.rasterize(
                    [(geom.buffer(20), 1)],
                    out_shape=grid.shape,
                    transform=grid.transform,
                    dtype="uint8",
                )
                > 0
            )
            assert not (event_numbers == p["number"]).any(), f["id"]
            ref = None
            for r in takes:
                cls, _ = read_truth(path, r["datatake"])
                if not cls[3][around].all():
                    continue
                here = cls[0][around]
                if ref is None and dt.date.fromisoformat(r["date"]) < start:
                    ref = here
                if ref is not None and dt.date.fromisoformat(r["date"]) > end:
                    # nothing around the equipment changed to its class because of it
                    assert not ((here == after) & (ref != after)).any(), (f["id"], r["date"])
            assert ref is not None, f"no scene before {f['id']}"
            checked += 1
            continue
        mask = ndimage.binary_erosion(masks[f["id"]], CROSS)
        if mask.sum() < 4:
            mask = masks[f["id"]]
        # Events listed after this one override it where they overlap (the renderer
        # applies events in the scenario's order): check up to the first such start.
        index = scenario.events.index(ev)
        later = [
            e
            for e in scenario.events[index + 1 :]
            if e.type not in ACTIVITY_EVENTS
            and (masks[e.id] & masks[f["id"]]).sum() > 0.2 * masks[f["id"]].sum()
        ]
        horizon = min([e.start for e in later], default=dt.date.max)

        def truth_covering(rows: list[dict], mask: np.ndarray) -> np.ndarray | None:
            """Class raster of the first of `rows` that covers `mask`."""
            for r in rows:
                t, _ = read_truth(path, r["datatake"])
                if t[3][mask].all():
                    return t[0]
            return None

        pre = [r for r, d in zip(takes, dates, strict=True) if d < start]
        post = [r for r, d in zip(takes, dates, strict=True) if end < d < horizon]
        cls_pre, cls_post = truth_covering(pre[::-1], mask), truth_covering(post, mask)
        assert cls_pre is not None, f"no scene covers {f['id']} before it starts"
        assert cls_post is not None, f"no scene covers {f['id']} after it ends"
        assert majority(cls_pre[mask]) == before, (f["id"], "before")
        assert majority(cls_post[mask]) == after, (f["id"], "after")
        # progress: the share of the new class never drops while the event runs
        shares = []
        for r, d in zip(takes, dates, strict=True):
            if not start <= d < horizon:
                continue
            t, _ = read_truth(path, r["datatake"])
            m = mask & t[3].astype(bool) & (t[0] != ICE) & (t[0] != SHIP)
            if m.sum() >= 0.9 * mask.sum():
                shares.append(float((t[0][m] == after).mean()))
        assert all(b >= a - 0.02 for a, b in zip(shares, shares[1:], strict=False)), (
            f["id"],
            shares,
        )
        if ev.via is not None:  # the ground is cleared at `start`, built on by `end`
            during = [r for r, d in zip(takes, dates, strict=True) if start <= d < end]
            for r in during[:1]:
                t, _ = read_truth(path, r["datatake"])
                m = mask & t[3].astype(bool)
                if m.any():
                    assert majority(t[0][m]) in (ev.via.code, after), f["id"]
        checked += 1
    return checked


def test_land_cover_events_are_in_the_truth_at_their_place_and_dates(mini_archive: Archive) -> None:
    n = check_land_cover_events(mini_archive)
    assert n == 5  # drainage, construction, pier, coal, tank


def test_vessel_counts_match_ships_in_the_truth(mini_archive: Archive) -> None:
    """scenes.csv's vessel count of a facility = ship objects (8-connected components of
    class ship) on its berths in the datatake's truth class raster; every vessel of
    vessels.csv lies on a berth of its facility, on a ship pixel."""
    path = mini_archive.path
    scenario = mini_archive.scenario
    grid = scenario.site_grid
    with open(path / "truth" / "vessels.csv", newline="") as f:
        vessels = list(csv.DictReader(f))
    checked, seen_ships = 0, 0
    for fac in scenario.facilities:
        if not fac.berths:
            continue
        berths = [grid.from_lonlat(Polygon(b)) for b in fac.berths]
        # a ship's hull may poke a pixel out of its berth polygon
        zones = [
            features.rasterize(
                [(b.buffer(10), 1)], out_shape=grid.shape, transform=grid.transform, dtype="uint8"
            )
            > 0
            for b in berths
        ]
        for take, row in scenes_of(path).items():
            truth, _ = read_truth(path, take)
            listed = [v for v in vessels if v["datatake"] == take and v["facility"] == fac.name]
            assert int(row[f"vessels_{fac.name}"]) == len(listed)
            for v in listed:
                pt = grid.from_lonlat(
                    shape({"type": "Point", "coordinates": (float(v["lon"]), float(v["lat"]))})
                )
                assert berths[int(v["berth"])].contains(pt), v
            if not all(truth[3][z].all() for z in zones):
                continue  # the datatake does not cover every berth
            ship = truth[0] == SHIP
            n = sum(ndimage.label(ship & z, np.ones((3, 3)))[1] for z in zones)
            assert n == len(listed), (take, fac.name, n, len(listed))
            assert not (ship & ~np.any(zones, axis=0)).any(), take  # ships only at berths
            checked += 1
            seen_ships += n
    assert checked > 30 and seen_ships > 20


def test_ice_only_between_freeze_and_thaw(mini_archive: Archive) -> None:
    """ice_fraction > 0 only between an ice event's freeze and thaw dates, near its peak
    in mid-winter; ice pixels of the truth rasters match it and stay on the event's water."""
    path = mini_archive.path
    scenario = mini_archive.scenario
    grid = scenario.site_grid
    ice_events = [e for e in scenario.events if e.type == EventType.seasonal_ice]
    assert ice_events
    masks = _event_masks(path, grid.transform, grid.shape, grid.epsg)
    zone = ndimage.binary_dilation(np.any([masks[e.id] for e in ice_events], axis=0), CROSS)

    def season_of(d: dt.date, e) -> tuple[dt.date, dt.date, dt.date] | None:
        for y in (d.year - 1, d.year):
            freeze = dt.date.fromisoformat(f"{y}-{e.ice.freeze}")
            nxt = y + 1 if e.ice.thaw < e.ice.freeze else y
            thaw = dt.date.fromisoformat(f"{nxt}-{e.ice.thaw}")
            peak_y = y + 1 if e.ice.peak < e.ice.freeze else y
            peak = dt.date.fromisoformat(f"{peak_y}-{e.ice.peak}")
            if freeze <= d <= thaw:
                return freeze, peak, thaw
        return None

    n_icy = 0
    for take, row in scenes_of(path).items():
        d = dt.date.fromisoformat(row["date"])
        frac = float(row["ice_fraction"])
        seasons = [s for e in ice_events if (s := season_of(d, e))]
        if frac > 0:
            assert seasons, (d, frac)
            n_icy += 1
        if any(abs((d - peak).days) <= 20 for _, peak, _ in seasons):
            assert frac > 0.2, (d, frac)
        truth, _ = read_truth(path, take)
        ice = truth[0] == ICE
        assert not (ice & ~zone).any(), take
        if float(row["valid_fraction"]) == 1.0:
            region = np.any([masks[e.id] for e in ice_events], axis=0)
            open_or_ice = region & np.isin(truth[0], (WATER, ICE))
            share = ice[open_or_ice].mean()
            assert abs(share - frac) < 0.05, (take, share, frac)
    assert n_icy >= 5


def test_events_raster_agrees_with_events_geojson(mini_archive: Archive) -> None:
    """truth/events.tif: band 1 is the number of the (last) event changing each pixel,
    band 2 its day of change, bands 3-4 the class at the period's start and end."""
    path = mini_archive.path
    with rasterio.open(path / "truth" / "events.tif") as src:
        number, day, first, last = src.read()
        tr, epsg = src.transform, src.crs.to_epsg()
    feats = list(events_of(path))
    masks = {
        f["properties"]["number"]: rasterize_lonlat(f["geometry"], tr, number.shape, epsg)
        for f in feats
    }
    land = [f for f in feats if f["properties"]["class_before"] is not None]
    for f in feats:
        n = f["properties"]["number"]
        if f["properties"]["class_before"] is None:  # vessels and ice are not pixel changes
            assert not (number == n).any(), f["id"]
            continue
        mine = number == n
        assert mine.any(), f["id"]
        assert not (mine & ~ndimage.binary_dilation(masks[n], CROSS)).any(), f["id"]
        later = [masks[g["properties"]["number"]] for g in land if g["properties"]["number"] > n]
        others = (
            ndimage.binary_dilation(np.any(later, axis=0), CROSS)
            if later
            else np.zeros(number.shape, bool)
        )
        inner = ndimage.binary_erosion(masks[n], CROSS) & ~others
        assert inner.any(), f["id"]
        assert (number[inner] == n).all(), f["id"]
        s = day_number(dt.date.fromisoformat(f["properties"]["start"]))
        e = day_number(dt.date.fromisoformat(f["properties"]["end"]))
        assert ((day[inner] >= s) & (day[inner] <= e)).all(), f["id"]
        after = CLASS_CODES[LandCover(f["properties"]["class_after"])]
        assert (last[inner] == after).mean() > 0.95, f["id"]
        assert (first[inner] != after).mean() > 0.95, f["id"]
    assert set(np.unique(number)) <= {0} | {f["properties"]["number"] for f in land}


# --------------------------------------------------------------------------------------
# SCL against the clouds drawn


@pytest.fixture(scope="module")
def scl_pairs(mini_archive: Archive) -> list[dict[str, np.ndarray]]:
    """Per item, on its 20 m pixels: SCL, and the truth averaged from 10 m to 20 m."""
    out = []
    for item in items_of(mini_archive.path):
        v = view(mini_archive.path, item)
        inside = block20(v.inside, "min") > 0
        pure_water = block20(core(v.cls == WATER, 10), "min") > 0
        out.append(
            {
                "item": item,
                "scl": v.dn("scl")[::2, ::2],
                "inside": inside,
                "cloud": block20(v.cloud),
                "cloud_max": block20(v.cloud, "max"),
                "shadow": block20(v.shadow),
                "blue": block20(np.nan_to_num(v.refl("blue"))),
                "water": pure_water,
            }
        )
    return out


def test_scl_flags_the_clouds_drawn(scl_pairs: list) -> None:
    """Thick cloud (opacity >= 60 %) is SCL 9, and every SCL 8/9 pixel has cloud (>= 30 %)
    or is bright (blue > 0.33, as Sen2Cor flags bright roofs). The truth is stored at
    10 m, interpolated from the 20 m sky SCL was made from, so a few pixels on cloud
    edges may differ: at most 0.5 % of them."""
    thick = hits = flagged = explained = 0
    for p in scl_pairs:
        m = p["inside"] & (p["cloud"] >= 60)
        thick += int(m.sum())
        hits += int((p["scl"][m] == sp.SCL_CLOUD_HIGH).sum())
        f = p["inside"] & np.isin(p["scl"], (sp.SCL_CLOUD_MEDIUM, sp.SCL_CLOUD_HIGH))
        flagged += int(f.sum())
        explained += int(((p["cloud_max"] >= 30) | (p["blue"] > 0.33))[f].sum())
    assert thick > 10_000 and flagged > 10_000
    assert hits / thick > 0.995, (hits, thick)
    assert explained / flagged > 0.995, (explained, flagged)


def test_scl_flags_shadows_and_water(scl_pairs: list) -> None:
    """Clear pixels under a cloud shadow (strength >= 45 %) are SCL 3 (or 10 where thin
    cirrus lies over the shadow); clear pure water is SCL 6."""
    shade = shade_ok = water = water_ok = 0
    for p in scl_pairs:
        m = p["inside"] & (p["shadow"] >= 45) & (p["cloud"] == 0)
        shade += int(m.sum())
        shade_ok += int(np.isin(p["scl"][m], (sp.SCL_CLOUD_SHADOW, sp.SCL_CIRRUS)).sum())
        w = (
            p["inside"]
            & p["water"]
            & (p["cloud"] == 0)
            & (p["shadow"] == 0)
            & (p["scl"] != sp.SCL_CIRRUS)
        )
        water += int(w.sum())
        water_ok += int((p["scl"][w] == sp.SCL_WATER).sum())
    assert shade > 1000 and water > 10_000
    assert shade_ok / shade > 0.99, (shade_ok, shade)
    assert water_ok / water > 0.99, (water_ok, water)


def test_eo_cloud_cover_is_the_share_of_cloudy_scl(scl_pairs: list) -> None:
    """eo:cloud_cover = % of valid SCL pixels that are 8, 9 or 10 (as Sen2Cor computes)."""
    for p in scl_pairs:
        with rasterio.open(p["item"]["assets"]["scl"]["href"]) as src:
            scl = src.read(1)
        valid = scl > 0
        expected = 100 * np.isin(scl[valid], (8, 9, 10)).mean() if valid.any() else 0.0
        assert p["item"]["properties"]["eo:cloud_cover"] == pytest.approx(expected, abs=1e-4)


# --------------------------------------------------------------------------------------
# Determinism and caching


def test_rendering_is_deterministic_and_cached(tmp_path: Path) -> None:
    """The same scenario renders to the same bytes whatever the number of processes, and
    a second build of it finds the archive and does no work."""
    a = build_archive(MINI, tmp_path / "a", workers=1)
    b = build_archive(MINI, tmp_path / "b", workers=2)
    assert a.built and b.built
    text_a = a.items_path.read_text().replace(str(a.path), "<archive>")
    text_b = b.items_path.read_text().replace(str(b.path), "<archive>")
    assert text_a == text_b
    for name in ("scenes.csv", "vessels.csv", "events.geojson"):
        assert (a.path / "truth" / name).read_bytes() == (b.path / "truth" / name).read_bytes()
    items = items_of(a.path)
    for item in (items[0], items[len(items) // 2], items[-1]):
        for key in ("blue", "nir08", "coastal", "scl"):
            rel = Path(item["assets"][key]["href"]).relative_to(a.path)
            with rasterio.open(a.path / rel) as x, rasterio.open(b.path / rel) as y:
                assert np.array_equal(x.read(), y.read()), rel
        take = _take_of_item(a.path)[item["id"]]
        assert np.array_equal(read_truth(a.path, take)[0], read_truth(b.path, take)[0])

    again = build_archive(MINI, tmp_path / "a", workers=2)
    assert again.built is False and again.path == a.path


# --------------------------------------------------------------------------------------
# The full scenario


@pytest.mark.slow
def test_nampo_events_are_in_the_truth(nampo_archive: Archive) -> None:
    """Every land-cover event of the Nampo scenario (the brief's table) is in the truth
    at its place and dates, and the fourth crane (row 11: below a 10 m pixel) is not."""
    n = check_land_cover_events(nampo_archive)
    kinds = {e.type for e in nampo_archive.scenario.events}
    assert EventType.equipment in kinds
    assert n == sum(1 for e in nampo_archive.scenario.events if e.type not in ACTIVITY_EVENTS)
