"""Facility activity: vessels at the berths, ice on the water, coal on the yards.

Tiny literal scenes for the kernel and the series (tiles joined, size filter, cloud rule),
the store's activity objects (written with the unit, idempotent), and the mini scenario's
whole year against its truth (``truth/scenes.csv``)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from shapely.geometry import box

from nampo import cli
from nampo.analysis.activity import (
    ActivityParams,
    coal_series,
    ice_series,
    merge_objects,
    unit_activity,
    vessel_series,
)
from nampo.analysis.activity.unit import (
    _bright_objects,
    berth_looks,
    facility_pixels,
    looks_grid,
)
from nampo.errors import StoreError
from nampo.grid import Grid
from nampo.io.store import Store
from nampo.products.classes import BUILT, DARK, WATER
from nampo.run.units import Unit
from nampo.sites import Site
from tests.end_to_end.test_change_truth import TARGETS
from tests.store_jobs import unit_ds
from tests.truth_harness import MINI_FIRST, MINI_LAST

P = ActivityParams()
# reflectance of the scenario's spectral library (nampo/scenario/spectra.py)
WATER_NIR, WATER_NDSI = 0.028, 0.86
ICE_NIR, ICE_NDSI = 0.36, 0.8
SHIP_NIR, SHIP_NDSI = 0.16, -0.04


def berth_scene(background_nir: float, background_ndsi: float, ships=()):
    """A 7 x 40 berth (all clear) with ships given as (rows, cols) slices."""
    nir = np.full((7, 40), background_nir, "f4")
    ndsi = np.full((7, 40), background_ndsi, "f4")
    for rows, cols in ships:
        nir[rows, cols], ndsi[rows, cols] = SHIP_NIR, SHIP_NDSI
    return np.ones((7, 40), bool), nir, ndsi


def test_a_ship_on_open_water_is_one_object():
    berth, nir, ndsi = berth_scene(WATER_NIR, WATER_NDSI, [(slice(2, 4), slice(5, 17))])
    assert _bright_objects(berth, nir, ndsi, P, 100, 200) == [[24, 102, 205, 103, 216]]


def test_a_ship_in_ice_is_found_and_ice_alone_is_not():
    """Ice is brighter than a ship in the NIR: a ship is told from it by its colour."""
    berth, nir, ndsi = berth_scene(ICE_NIR, ICE_NDSI, [(slice(3, 4), slice(10, 25))])
    assert [o[0] for o in _bright_objects(berth, nir, ndsi, P, 0, 0)] == [15]
    berth, nir, ndsi = berth_scene(ICE_NIR, ICE_NDSI)
    assert _bright_objects(berth, nir, ndsi, P, 0, 0) == []


def test_cloudy_berth_pixels_hold_no_object():
    berth, nir, ndsi = berth_scene(WATER_NIR, WATER_NDSI, [(slice(2, 4), slice(5, 17))])
    berth[:, :20] = False  # the ship lies under a cloud
    assert _bright_objects(berth, nir, ndsi, P, 0, 0) == []


def test_objects_cut_by_a_tile_edge_are_joined():
    # tile A's object ends at column 63, tile B's starts at 64 (rows overlap): one ship
    a = [[3, 10, 61, 11, 63], [20, 30, 10, 32, 20]]
    b = [[12, 11, 64, 12, 70], [8, 40, 64, 41, 67]]  # the second is 28 rows away
    assert merge_objects([a, b]) == [20, 15, 8]
    # within a tile, groups are whole: touching boxes of one tile are not joined
    assert merge_objects([[[5, 0, 0, 1, 4], [5, 2, 5, 3, 9]]]) == [5, 5]


def doc(tile, month, date, facility, berth_px, berth_clear, objects, **counts):
    base = {"area_px": 100, "water_px": 50, "berth_px": berth_px, "coal_px": 0,
            "clear_month_px": 100}  # fmt: skip
    base.update(counts)
    return {
        "tile": tile,
        "month": month,
        "facilities": {facility: base},
        "scenes": [
            {
                "date": date,
                "facilities": {
                    facility: {
                        "water_clear": 50,
                        "ice_px": 10,
                        "berth_clear": berth_clear,
                        "objects": objects,
                    }
                },
            }  # fmt: skip
        ],
    }


def test_vessel_series_sums_tiles_filters_size_after_joining_and_skips_cloudy_scenes():
    # a ship cut by the tile edge into 3 + 10 pixels counts once (3 alone is below the
    # size filter); a 2-pixel speck does not count
    west = [[3, 10, 61, 11, 63], [2, 1, 1, 1, 2]]
    docs = [
        doc("x00y00", "2017-05", "2017-05-03", "quay", 60, 60, west),
        doc("x01y00", "2017-05", "2017-05-03", "quay", 40, 40, [[10, 11, 64, 12, 70]]),
    ]
    s = vessel_series(docs)
    assert s["vessels"].tolist() == [1] and s["berth_px"].tolist() == [100]
    assert s["sizes"].tolist() == [[13]]
    # fog over the berths (no water's colour in either tile, every pixel lit): unseen
    for d in docs:
        d["scenes"][0]["facilities"]["quay"]["berth_water"] = 4
    assert np.isnan(vessel_series(docs)["vessels"].tolist()[0])
    docs[0]["scenes"][0]["facilities"]["quay"]["berth_water"] = 6  # 10 over both tiles
    assert vessel_series(docs)["vessels"].tolist() == [1]
    # the same scene with a third of the berths under a cloud: unknown, not zero
    docs[1]["scenes"][0]["facilities"]["quay"]["berth_clear"] = 5
    s = vessel_series(docs)
    assert s["clear_share"].tolist() == [0.65] and np.isnan(s["vessels"].tolist()[0])


def test_a_line_one_pixel_thick_along_the_berth_is_not_a_vessel():
    """The shore's mixed pixels, lit when misregistration moves the land into them, make a
    line one pixel thick along the berth; a hull's beam lights two or more pixels. The
    thickness is the joined object's: a ship cut by a tile edge into a thin end and the
    rest is one ship."""
    shore = [12, 477, 372, 477, 383]  # one row, 12 columns: Nampo's container terminal
    ship = [30, 479, 400, 481, 412]
    docs = [doc("x00y00", "2017-10", "2017-10-25", "quay", 100, 100, [shore, ship])]
    assert vessel_series(docs)["vessels"].tolist() == [1]
    assert vessel_series(docs, ActivityParams(min_ship_width_px=1))["vessels"].tolist() == [2]
    west = [[4, 10, 62, 10, 63]]  # the ship's bow, one row thick, in the tile to the west
    east = [[20, 10, 64, 12, 72]]
    docs = [
        doc("x00y00", "2017-10", "2017-10-25", "quay", 50, 50, west),
        doc("x01y00", "2017-10", "2017-10-25", "quay", 50, 50, east),
    ]
    assert vessel_series(docs)["sizes"].tolist() == [[24]]


def test_ice_and_coal_series():
    docs = [doc("x00y00", "2017-01", "2017-01-20", "harbour", 0, 0, [], coal_px=30)]
    ice = ice_series(docs)
    assert ice["ice_fraction"].tolist() == [0.2] and ice["clear_share"].tolist() == [1.0]
    coal = coal_series(docs)
    assert coal["coal_m2"].tolist() == [3000.0] and coal["area_m2"].tolist() == [10000.0]
    assert coal["month"].tolist() == [dt.date(2017, 1, 1)]


# -- in a unit and in the store


SITE = Site(
    "teststore", "Store test site", Grid(32651, 10, 709160, 4289200, 120, 120), 64,
    facilities=(("quay", "Quay", Grid(32651, 10, 709160, 4289200, 120, 120).footprint_lonlat()),),
)  # fmt: skip


def test_unit_activity_counts_a_tiles_pixels_and_coal():
    tile = SITE.tile("x00y00")
    y, x = SITE.tile_grid(tile).xy_coords()[::-1]
    shape = tile.shape
    times = np.array(["2017-05-03T02:18", "2017-05-13T02:18"], "datetime64[ns]")
    bands = xr.Dataset(
        {b: (("time", "y", "x"), np.full((2, *shape), v, "f4"))
         for b, v in (("green", 0.08), ("nir", WATER_NIR), ("swir16", 0.006))},
        coords={"time": times, "y": y, "x": x},
    )  # fmt: skip
    clear = xr.DataArray(np.ones((2, *shape), bool), dims=("time", "y", "x"))
    clear[1, :32] = False
    lc = np.full(shape, WATER, "u1")
    lc[:10] = DARK
    base = xr.DataArray(np.full(shape, WATER, "u1"), dims=("y", "x"))
    out = unit_activity(SITE, tile, dt.date(2017, 5, 1), bands, clear,
                        xr.DataArray(lc, dims=("y", "x")), base)  # fmt: skip
    quay = out["facilities"]["quay"]
    assert quay["area_px"] == 64 * 64 and quay["coal_px"] == 640 and quay["berth_px"] == 0
    assert [s["date"] for s in out["scenes"]] == ["2017-05-03", "2017-05-13"]
    assert [s["facilities"]["quay"]["water_clear"] for s in out["scenes"]] == [4096, 2048]
    json.dumps(out, allow_nan=False)  # plain JSON


def _clear_scenes(times, green, nir, swir, y, x) -> tuple[xr.Dataset, xr.DataArray]:
    """Scenes of the three bands the activity reads at `times`, every pixel clear."""
    dims = ("time", "y", "x")
    bands = xr.Dataset(
        {"green": (dims, green), "nir": (dims, nir), "swir16": (dims, swir)},
        coords={"time": np.array(times, "datetime64[ns]"), "y": y, "x": x},
    )
    return bands, xr.DataArray(np.ones(green.shape, bool), dims=dims)


def _one_berth_site(facility: str, epsg: int, x0: float, y0: float, cols, rows) -> Site:
    """A 64 x 64 site whose one facility covers it all and has one berth over the pixel
    `cols` and `rows` (first, last: inclusive)."""
    grid = Grid(epsg, 10, x0, y0, 64, 64)
    outline = box(x0 + 10 * cols[0], y0 - 10 * (rows[1] + 1), x0 + 10 * (cols[1] + 1),
                  y0 - 10 * rows[0])  # fmt: skip
    return Site(f"{facility}test", f"{facility} test", grid, 64,
                facilities=((facility, facility.title(), grid.footprint_lonlat()),),
                berths=((facility, (grid.to_lonlat(outline),)),))  # fmt: skip


def test_berth_pixels_are_those_that_showed_water_in_a_clear_scene():
    """A ship lying in the same place in most scenes reads "built" in the baseline and in
    the month's median: its pixels stay berth pixels because one scene showed water there;
    a pier in the berth outline, never water, is left out with the pixels beside it."""
    site = _one_berth_site("pier", 32651, 709160, 4289200, cols=(10, 19), rows=(10, 29))
    grid, tile = site.grid, site.tile("x00y00")
    y, x = grid.xy_coords()[::-1]
    nir = np.full((3, 64, 64), WATER_NIR, "f4")
    ndsi = np.full((3, 64, 64), WATER_NDSI, "f4")
    nir[:, 10:30, 10:12], ndsi[:, 10:30, 10:12] = 0.2, -0.1  # a pier, every scene
    nir[:2, 12:25, 14:17], ndsi[:2, 12:25, 14:17] = SHIP_NIR, SHIP_NDSI  # a ship, 2 of 3
    green = np.full((3, 64, 64), 0.08, "f4")
    swir = green * (1 - ndsi) / (1 + ndsi)
    bands, clear = _clear_scenes(
        ["2017-05-03T02:18", "2017-05-13T02:18", "2017-05-23T02:18"], green, nir, swir, y, x
    )
    built = np.full((64, 64), WATER, "u1")
    built[10:30, 10:12] = BUILT
    built[12:25, 14:17] = BUILT  # where the ship lies most days
    lc = xr.DataArray(built, dims=("y", "x"))
    out = unit_activity(site, tile, dt.date(2017, 5, 1), bands, clear, lc, lc)
    pier = out["facilities"]["pier"]
    # the berth's 10 x 20 pixels less the pier in it (never water); its edges lie on
    # open water and stay
    assert pier["berth_px"] == 20 * 10 - 20 * 2, pier
    found = [[o[0] for o in s["facilities"]["pier"]["objects"]] for s in out["scenes"]]
    assert found == [[39], [39], []]


def test_a_ship_in_the_months_only_clear_scene_is_counted():
    """Under heavy cloud a month may have one clear scene. A ship lying in it where ships
    lie most days (the baseline and the month read "built" there) never shows water that
    month; one scene cannot tell it from a structure, so its pixels stay berth pixels and
    it is counted (issue 18: sound-port's ferries, in months with one clear scene)."""
    site = _one_berth_site("pier", 32651, 709160, 4289200, cols=(10, 19), rows=(10, 29))
    grid, tile = site.grid, site.tile("x00y00")
    y, x = grid.xy_coords()[::-1]
    nir = np.full((2, 64, 64), WATER_NIR, "f4")
    ndsi = np.full((2, 64, 64), WATER_NDSI, "f4")
    nir[:, 12:25, 14:17], ndsi[:, 12:25, 14:17] = SHIP_NIR, SHIP_NDSI  # in both scenes
    green = np.full((2, 64, 64), 0.08, "f4")
    swir = green * (1 - ndsi) / (1 + ndsi)
    bands, clear = _clear_scenes(["2017-05-03T02:18", "2017-05-13T02:18"], green, nir, swir, y, x)
    built = np.full((64, 64), WATER, "u1")
    built[12:25, 14:17] = BUILT  # where the ship lies most days
    lc = xr.DataArray(built, dims=("y", "x"))
    cloudy = clear.copy()
    cloudy[1] = False  # the second scene under cloud: one clear scene
    one = unit_activity(site, tile, dt.date(2017, 5, 1), bands, cloudy, lc, lc)
    assert one["facilities"]["pier"]["berth_px"] == 20 * 10
    assert [o[0] for o in one["scenes"][0]["facilities"]["pier"]["objects"]] == [39]
    # seen in two clear scenes and never water, the same pixels are taken for a structure
    two = unit_activity(site, tile, dt.date(2017, 5, 1), bands, clear, lc, lc)
    assert two["facilities"]["pier"]["berth_px"] == 20 * 10 - 39
    assert all(not s["facilities"]["pier"]["objects"] for s in two["scenes"])


def _looks_of_baseline(site, ship_scenes: int, scenes: int, pier: bool = False) -> dict:
    """The baseline's looks at the berth of `site` (:func:`_one_berth_site`, berth rows
    10-29, columns 10-19), computed from `scenes` clear baseline scenes of open water with
    the ship of the tests lying at rows 12-24, columns 14-16 in the first `ship_scenes` of
    them (and a pier along columns 10-11 in every one when `pier`)."""
    tile = site.tile("x00y00")
    y, x = site.grid.xy_coords()[::-1]
    nir = np.full((scenes, 64, 64), WATER_NIR, "f4")
    ndsi = np.full((scenes, 64, 64), WATER_NDSI, "f4")
    if pier:
        nir[:, 10:30, 10:12], ndsi[:, 10:30, 10:12] = 0.2, -0.1
    nir[:ship_scenes, 12:25, 14:17], ndsi[:ship_scenes, 12:25, 14:17] = SHIP_NIR, SHIP_NDSI
    green = np.full((scenes, 64, 64), 0.08, "f4")
    swir = green * (1 - ndsi) / (1 + ndsi)
    times = [f"2016-{m:02d}-03T02:18" for m in range(1, scenes + 1)]
    bands, clear = _clear_scenes(times, green, nir, swir, y, x)
    base = np.full((64, 64), WATER, "u1")
    base[12:25, 14:17] = BUILT  # the baseline's median: a ship lies there most days
    if pier:
        base[10:30, 10:12] = BUILT
    return berth_looks(site, tile, bands, clear, base)


def _a_month_moored_at_the_pier(site, scenes: int, ship_cols: slice):
    """(bands, clear, landcover) of a month of `scenes` clear scenes of the berth of `site`
    (:func:`_one_berth_site`, rows 10-29, columns 10-19) with a pier along its columns
    10-11 and one ship moored at rows 12-24, `ship_cols`, in every scene."""
    y, x = site.grid.xy_coords()[::-1]
    nir = np.full((scenes, 64, 64), WATER_NIR, "f4")
    ndsi = np.full((scenes, 64, 64), WATER_NDSI, "f4")
    nir[:, 10:30, 10:12], ndsi[:, 10:30, 10:12] = 0.2, -0.1
    nir[:, 12:25, ship_cols], ndsi[:, 12:25, ship_cols] = SHIP_NIR, SHIP_NDSI
    green = np.full((scenes, 64, 64), 0.08, "f4")
    swir = green * (1 - ndsi) / (1 + ndsi)
    times = [f"2017-05-{3 + 10 * i:02d}T02:18" for i in range(scenes)]
    bands, clear = _clear_scenes(times, green, nir, swir, y, x)
    lc = np.full((64, 64), WATER, "u1")
    lc[12:25, ship_cols] = lc[10:30, 10:12] = BUILT
    return bands, clear, xr.DataArray(lc, dims=("y", "x"))


def test_the_baseline_counts_its_clear_looks_and_water_at_each_berth_pixel():
    """The baseline's looks at the berths: every berth pixel (and no other) with its clear
    scenes and those that showed water; where a ship lay in 7 of 10 scenes, 3 of water."""
    site = _one_berth_site("pier", 32651, 709160, 4289200, cols=(10, 19), rows=(10, 29))
    looks = _looks_of_baseline(site, ship_scenes=7, scenes=10)
    clear, water = looks_grid(looks, (64, 64))
    assert looks["tile"] == "x00y00" and len(looks["berths"]["rows"]) == 20 * 10
    assert (clear[10:30, 10:20] == 10).all() and clear.sum() == 10 * 20 * 10
    assert (water[12:25, 14:17] == 3).all()
    assert water[10:30, 10:20].sum() == 10 * (200 - 39) + 3 * 39
    assert json.loads(json.dumps(looks)) == looks  # stored as JSON as it is


def test_a_ship_lying_in_every_clear_scene_of_a_month_is_counted_where_ships_came_and_went():
    """A ship moored for a month lies in all its clear scenes and never shows water there,
    like a structure; but its pixels showed water in the baseline year, when ships came and
    went: they stay berth pixels and it is counted in each scene (issue 18: pier-mini's
    pier, two and three clear scenes of one ship in a month). A pier in the same berth
    outline, never water in the baseline either, is still left out; so is a ship that lay
    there in every clear scene of the baseline year too (nothing tells it from the port)."""
    site = _one_berth_site("pier", 32651, 709160, 4289200, cols=(10, 19), rows=(10, 29))
    tile = site.tile("x00y00")
    bands, clear, lc = _a_month_moored_at_the_pier(site, 3, ship_cols=slice(14, 17))
    month = dt.date(2017, 5, 1)
    pier = 20 * 2  # its two columns (the water beside it stays)
    looks = _looks_of_baseline(site, ship_scenes=6, scenes=10, pier=True)
    kept = unit_activity(site, tile, month, bands, clear, lc, lc, baseline=looks)
    assert kept["facilities"]["pier"]["berth_px"] == 20 * 10 - pier
    assert [[o[0] for o in s["facilities"]["pier"]["objects"]] for s in kept["scenes"]] == [
        [39]
    ] * 3
    # without the baseline's looks the month alone decides: three looks, never water
    alone = unit_activity(site, tile, month, bands, clear, lc, lc)
    assert alone["facilities"]["pier"]["berth_px"] == 20 * 10 - pier - 39
    assert all(not s["facilities"]["pier"]["objects"] for s in alone["scenes"])
    # a ship that lay there in every baseline scene too is part of the port
    moored = _looks_of_baseline(site, ship_scenes=10, scenes=10, pier=True)
    always = unit_activity(site, tile, month, bands, clear, lc, lc, baseline=moored)
    assert always["facilities"]["pier"]["berth_px"] == alone["facilities"]["pier"]["berth_px"]


def test_a_ship_moored_against_a_pier_all_month_keeps_its_pixels_beside_the_pier():
    """The pixels beside a structure are left out unless they show water: the shore's
    mixed pixels never do. A ship moored against the pier in every clear scene of a month
    hides the water beside the pier that month, but those pixels showed water in the
    baseline year, when ships came and went: the ship keeps them, whole and one ship
    (pier-mini seed 0, August-October 2021, with the ships' own pixels kept but not those
    beside the pier: hulls lost a column along the pier, 3 "ships" counted for 2)."""
    site = _one_berth_site("pier", 32651, 709160, 4289200, cols=(10, 19), rows=(10, 29))
    tile = site.tile("x00y00")
    bands, clear, lc = _a_month_moored_at_the_pier(site, 2, ship_cols=slice(12, 15))
    looks = _looks_of_baseline(site, ship_scenes=6, scenes=10, pier=True)  # ship elsewhere
    month = dt.date(2017, 5, 1)
    out = unit_activity(site, tile, month, bands, clear, lc, lc, baseline=looks)
    assert out["facilities"]["pier"]["berth_px"] == 20 * 10 - 20 * 2  # less the pier alone
    assert [[o[0] for o in s["facilities"]["pier"]["objects"]] for s in out["scenes"]] == [[39]] * 2


def test_berth_pixels_beside_land_are_left_out_and_those_on_open_water_kept():
    """A berth drawn along a quay: its pixels beside the quay are mixed with concrete and
    left out; its other edges lie on open water, where the ships lie, and stay (a 35 m
    berth is three or four pixels across: shrinking it all round left a line)."""
    site = _one_berth_site("quay", 32651, 709160, 4289200, cols=(10, 29), rows=(10, 13))
    base = np.full((64, 64), WATER, "u1")
    base[:10] = BUILT  # the quay, north of the berth
    pixels = facility_pixels(site, site.tile("x00y00"), base)[0]
    rows, cols = np.nonzero(pixels.berths)
    assert pixels.berths.sum() == 3 * 20
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (11, 13, 10, 29)


def test_ships_on_clear_sea_water_are_counted():
    """Clear sea water is as dark in the SWIR as in the NIR: its NDSI (MNDWI) is the ratio
    of two small numbers, 0.35-0.62 in real coastal Sentinel-2 scenes (Aberystwyth's
    coastal sea: 0.02-0.03 in every band beyond the red, ``tests/scenario/
    test_class_spectra.py``). Water is what is dark in the NIR like the tile's open water:
    a ship lying where the baseline reads "built" is found in the scene it is there, the
    berth is empty in the other, and neither scene is taken for fog; a third, under fog
    the mask missed (white: water and berths alike NIR 0.09, NDSI 0.35), is unseen."""
    site = _one_berth_site("ferry", 32630, 346800, 6256500, cols=(10, 19), rows=(10, 29))
    grid = site.grid
    tile = site.tile("x00y00")
    y, x = grid.xy_coords()[::-1]
    rng = np.random.default_rng(0)
    green = np.full((2, 64, 64), 0.06, "f4")
    nir = rng.uniform(0.02, 0.03, (2, 64, 64)).astype("f4")
    swir = rng.uniform(0.015, 0.026, (2, 64, 64)).astype("f4")  # NDSI 0.40-0.60
    nir[0, 12:25, 14:16], swir[0, 12:25, 14:16] = SHIP_NIR, 0.12  # a ship, first scene
    green, nir, swir = (np.concatenate([a, np.full((1, 64, 64), v, "f4")])
                        for a, v in ((green, 0.1), (nir, 0.09), (swir, 0.048)))  # fmt: skip
    bands, clear = _clear_scenes(
        ["2021-06-04T11:33", "2021-06-14T11:33", "2021-06-24T11:33"], green, nir, swir, y, x
    )
    base = np.full((64, 64), WATER, "u1")
    base[12:25, 14:16] = BUILT  # where the ship lies most days
    lc = xr.DataArray(base, dims=("y", "x"))
    doc = unit_activity(site, tile, dt.date(2021, 6, 1), bands, clear, lc, lc)
    assert doc["facilities"]["ferry"]["berth_px"] == 20 * 10  # all on open water
    series = vessel_series([doc])
    assert series["vessels"].tolist()[:2] == [1, 0] and np.isnan(series["vessels"][2])
    assert series["sizes"].tolist() == [[26], [], []]


@pytest.fixture
def store(tmp_path):
    from tests.store_jobs import CALENDAR

    return Store(tmp_path / "site.zarr").create(SITE, CALENDAR)


ACTIVITY = doc("x00y00", "2017-05", "2017-05-03", "quay", 60, 60, [[12, 1, 1, 2, 6]])


def test_activity_is_stored_with_its_unit_and_rewritten_to_the_same_bytes(store):
    tile = SITE.tile("x00y00")
    unit = Unit(dt.date(2017, 5, 1), "x00y00")
    store.write_unit(unit, unit_ds(tile, unit.month), {"code": "t"}, activity=ACTIVITY)
    path = store.url + "/nampo/activity/x00y00/2017-05.json"
    first = Path(path).read_bytes()
    [stored] = store.activity()
    assert stored["unit"] == "x00y00/2017-05" and stored["scenes"] == ACTIVITY["scenes"]
    store.write_unit(unit, unit_ds(tile, unit.month), {"code": "t"}, activity=ACTIVITY)
    assert Path(path).read_bytes() == first
    # a unit without its record (killed before it) has no activity to read
    store._delete("nampo/units/x00y00/2017-05.json")
    assert store.activity() == []
    # rewritten without activity: the old one does not stay beside the new data
    store.write_unit(unit, unit_ds(tile, unit.month), {"code": "t"})
    assert store.activity() == []


def test_a_baselines_looks_are_stored_with_it_and_are_not_a_months_activity(store):
    """The baseline's looks at the berths are stored with the baseline, read back by its
    tile while its record stands, left out of the months' activity, and not left beside a
    baseline rewritten without them."""
    from nampo.products.variables import BASELINE

    tile = SITE.tile("x00y00")
    looks = {"tile": "x00y00", "berths": {"rows": [3], "cols": [4], "clear": [9], "water": [2]}}
    assert store.baseline_activity(tile) is None
    store.write_baseline(tile, unit_ds(tile, None, BASELINE), {"code": "t"}, activity=looks)
    path = Path(store.url + "/nampo/activity/x00y00/baseline.json")
    first = path.read_bytes()
    assert store.baseline_activity("x00y00") == {"unit": "x00y00/baseline", **looks}
    assert store.activity() == []
    store.write_baseline(tile, unit_ds(tile, None, BASELINE), {"code": "t"}, activity=looks)
    assert path.read_bytes() == first
    store._delete("nampo/units/x00y00/baseline.json")  # killed before its record
    assert store.baseline_activity(tile) is None
    store.write_baseline(tile, unit_ds(tile, None, BASELINE), {"code": "t"})
    assert store.baseline_activity(tile) is None and not path.exists()
    with pytest.raises(StoreError, match="x99y99"):
        store.baseline_activity("x99y99")


def test_activity_that_is_not_json_is_refused_before_anything_is_written(store):
    tile = SITE.tile("x00y00")
    unit = Unit(dt.date(2017, 5, 1), "x00y00")
    with pytest.raises(StoreError, match="activity is not JSON"):
        store.write_unit(unit, unit_ds(tile, unit.month), activity={"bad": float("nan")})
    assert store.done() == set()


# -- the mini scenario's year, against its truth


@pytest.mark.services
def test_mini_vessels_and_ice_meet_the_targets(mini_store, mini_archive, capsys):  # noqa: F811
    args = ["score", "--archive", str(mini_archive.path), "--store", str(mini_store.url), "--json"]
    assert cli.main(args) == 0
    result = json.loads(capsys.readouterr().out)["activity"]
    overall = result["vessels"][0]
    assert overall["facility"] == "overall", result
    assert overall["scenes"] >= 10, result  # the clear scenes of a cloudy year
    assert overall["mean_abs_error"] <= TARGETS["vessel_mae"], result
    assert overall["truth_mean"] > 0.5, result  # ships were there to count
    assert result["ice"]["scenes"] >= 10 and result["ice"]["mean_abs_error"] <= 0.1, result


@pytest.mark.services
def test_each_baseline_stores_its_looks_at_the_berths(mini_store):  # noqa: F811
    """The pipeline's baselines store their looks at the berths: clear looks as many as the
    baseline's clear observations there, water in some of them where ships come and go."""
    with_berths = 0
    for tile in mini_store.site.tiles:
        looks = mini_store.baseline_activity(tile)
        assert looks is not None, tile.id
        b = looks["berths"]
        if not b["rows"]:
            continue
        with_berths += 1
        count = mini_store.read_baseline(tile)["base_clear_count"].values
        assert b["clear"] == count[b["rows"], b["cols"]].tolist(), tile.id
        assert all(0 <= w <= c for w, c in zip(b["water"], b["clear"], strict=True))
        assert sum(b["water"]) > 0, tile.id
    assert with_berths >= 1


@pytest.mark.services
def test_mini_cloudy_scenes_are_not_counted(mini_store, mini_archive):  # noqa: F811
    """Scenes the truth says were mostly cloud over the site never get a vessel count."""
    series = vessel_series(mini_store.activity())
    known = {r.date for r in series.itertuples() if not np.isnan(r.vessels)}
    with open(mini_archive.path / "truth" / "scenes.csv", newline="") as f:
        cloudy = {dt.date.fromisoformat(r["date"]) for r in csv.DictReader(f)
                  if float(r["cloud_fraction"] or 0) > 0.5}  # fmt: skip
    assert cloudy and not (known & cloudy)


@pytest.mark.services
def test_mini_events_are_stored_as_geojson_and_geoparquet(mini_store, mini_site):  # noqa: F811
    import geopandas as gpd

    from nampo.analysis.events import save_events, site_events, stored_events

    _, events = site_events(mini_store, MINI_FIRST, MINI_LAST, mini_site.facilities)
    urls = save_events(mini_store, events)
    assert [u.rsplit("/", 1)[-1] for u in urls] == ["events.parquet", "events.geojson"]
    again = stored_events(mini_store)
    assert [e["id"] for e in again] == [e.id for e in events]
    frame = gpd.read_parquet(urls[0])
    assert frame.crs.to_epsg() == 4326 and list(frame["id"]) == [e.id for e in events]
    assert frame.geometry.iloc[0].equals_exact(events[0].geometry, 1e-9)
    first = Path(urls[0]).read_bytes(), Path(urls[1]).read_bytes()
    save_events(mini_store, events)  # idempotent: the same bytes
    assert (Path(urls[0]).read_bytes(), Path(urls[1]).read_bytes()) == first


@pytest.mark.services
def test_the_main_job_ends_with_events_activity_and_score(mini_store, mini_archive, capsys):  # noqa: F811
    """What `nampo-flows demo` prints after its backfill (flows/cli.py)."""
    from flows.cli import _date_changes, _what_happened
    from nampo.analysis.events import stored_events
    from nampo.settings import Settings

    found = _date_changes("harbour-mini", mini_store.url, Settings())  # before the report
    _what_happened("harbour-mini", mini_store.url, found, mini_archive.path, Settings())
    out = capsys.readouterr().out
    # the sheds, said as an analyst would, with the facility's title and the months
    assert "of new buildings went up at the land north of the quay between" in out, out
    assert "Quay and yard: " in out and "vessels per clear scene" in out, out
    assert "Ice on the river: seen in" in out, out
    assert "recall" in out and "vessels per facility per clear scene" in out, out
    assert len(stored_events(mini_store) or []) > 0
