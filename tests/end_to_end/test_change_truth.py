"""Change dating and events on the mini scenario, held against its truth files.

The store is the mini archive's whole year processed once (the fixtures of
``tests/truth_harness.py``); what is expected comes from ``truth/events.geojson`` and
``truth/events.tif``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from scipy import ndimage
from shapely.geometry import shape

from nampo import cli
from nampo.analysis.dating import change_map
from nampo.analysis.events import find_events, read_geojson, site_events
from nampo.evaluation.score import EXPECTED_TYPE, NOT_LAND, read_truth
from tests.truth_harness import MINI_FIRST, MINI_LAST

pytestmark = pytest.mark.services

TARGETS = {"recall": 0.9, "precision": 0.9, "timing_days": 30, "area_pct": 20, "vessel_mae": 0.5}
"""Issue 5's targets for events of at least 2,000 m2, and for vessels counted per facility
per clear scene (mean absolute error)."""


@pytest.fixture(scope="module")
def truth(mini_archive):
    with rasterio.open(mini_archive.path / "truth" / "events.tif") as src:
        bands = src.read()
    features = json.loads((mini_archive.path / "truth" / "events.geojson").read_text())
    return bands, features["features"]


@pytest.fixture(scope="module")
def mini_changes(mini_store, mini_site):  # noqa: F811
    return site_events(mini_store, MINI_FIRST, MINI_LAST, mini_site.facilities)


def run_score(args: list[str], capsys) -> dict:
    assert cli.main(["score", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_change_map_runs_tile_by_tile(mini_store, mini_site):  # noqa: F811
    ds = mini_store.open().sel(time=slice(str(MINI_FIRST), str(MINI_LAST)))
    cm = change_map(ds)
    tiles = {t.shape for t in mini_site.tiles}
    assert {(a, b) for a in cm["type"].chunks[0] for b in cm["type"].chunks[1]} == tiles
    assert cm["type"].shape == mini_site.grid.shape


def test_score_meets_the_targets_on_the_mini_scenario(mini_store, mini_archive, tmp_path, capsys):  # noqa: F811
    geojson = tmp_path / "events.geojson"
    result = run_score(
        ["--archive", str(mini_archive.path), "--store", str(mini_store.url),
         "--geojson", str(geojson)],
        capsys,
    )  # fmt: skip
    overall = result["rows"][0]
    assert overall["type"] == "overall" and overall["truth"] > 0
    assert overall["recall"] >= TARGETS["recall"], result
    assert overall["precision"] >= TARGETS["precision"], result
    assert overall["median_timing_error_days"] <= TARGETS["timing_days"], result
    assert overall["median_area_error_pct"] <= TARGETS["area_pct"], result
    assert result["subpixel_claims"] == []
    # the written events score the same from the file
    again = run_score(["--archive", str(mini_archive.path), "--events", str(geojson)], capsys)
    assert again["rows"] == result["rows"]


def test_every_truth_event_is_found_with_its_type(mini_changes, mini_archive):
    cm, events = mini_changes
    from nampo.evaluation.score import score

    result = score([{**e.properties(), "geometry": e.geometry} for e in events], mini_archive.path)
    truth, _ = read_truth(mini_archive.path)
    assert result.matches, "no land-cover truth event with pixels"
    for m in result.matches:  # every size: the mini's tank is 1,200 m2
        assert m.detected, m.truth.id
        assert m.product_type == EXPECTED_TYPE[m.truth.type], m.truth.id
    assert {t.type for t in truth} - set(EXPECTED_TYPE) == set()


def test_events_fall_in_the_truth_events_facility(mini_changes, truth):
    _, events = mini_changes
    _, features = truth
    for f in features:
        p = f["properties"]
        if p["type"] in NOT_LAND or not p["facility"]:
            continue
        outline = shape(f["geometry"])
        inside = [
            e for e in events if e.geometry.intersection(outline).area > 0.5 * e.geometry.area
        ]
        assert inside, p["id"]
        assert all(p["facility"] in e.facilities for e in inside), p["id"]
        assert any(e.facility == p["facility"] for e in inside) or len(inside[0].facilities) > 1


def test_event_dates_fall_in_the_truth_window(mini_changes, truth):
    """Each event's window overlaps the truth event's [start, end], give or take a month."""
    import datetime as dt

    _, events = mini_changes
    _, features = truth
    month = dt.timedelta(days=31)
    for f in features:
        p = f["properties"]
        if p["type"] in NOT_LAND:
            continue
        outline = shape(f["geometry"])
        start, end = (dt.date.fromisoformat(p[k]) for k in ("start", "end"))
        for e in events:
            if e.geometry.intersection(outline).area > 0.5 * e.geometry.area:
                assert e.window_start <= end + month and e.window_end >= start - month, (
                    p["id"], e.id, e.window_start, e.window_end)  # fmt: skip


def test_no_change_away_from_the_truth_events(mini_changes, truth):
    """Pixels two or more pixels away from every truth event (winter-frozen river, grass,
    yards, the old tank) show no lasting change: under 0.3 % of them."""
    cm, _ = mini_changes
    bands, _ = truth
    away = ~ndimage.binary_dilation(bands[0] > 0, iterations=2)
    changed = cm["type"].values > 0
    share = (changed & away).sum() / away.sum()
    assert share < 0.003, f"{share:.2%} of {away.sum()} unchanged pixels changed"


def test_no_change_on_the_frozen_river(mini_changes, truth, mini_archive):
    """No river pixel away from the truth events changes, shore pixels included: a pixel
    mixed of water and summer grass reads built while the grass is green and water from
    the autumn, but its mix moved by less than half the pixel (change dating's rule 10;
    before it, 1-2 such pixels changed built -> water in October 2021)."""
    cm, _ = mini_changes
    bands, features = truth
    ice = [shape(f["geometry"]) for f in features if f["properties"]["type"] == "seasonal_ice"]
    assert ice, "the mini scenario has a frozen river"
    from rasterio.features import rasterize

    grid = read_truth(mini_archive.path)[1]
    river = rasterize(
        [mini_site_grid(mini_archive).from_lonlat(g) for g in ice],
        out_shape=grid["shape"],
        transform=grid["transform"],
    ).astype(bool)
    water = (bands[2] == 1) & (bands[3] == 1)  # water at the start and at the end
    away = ~ndimage.binary_dilation(bands[0] > 0, iterations=2)
    pixels = river & water & away
    assert pixels.sum() > 1000
    assert (cm["type"].values[pixels] > 0).sum() == 0


def mini_site_grid(archive):
    return archive.scenario.site_grid


def test_events_need_a_few_pixels(mini_changes, mini_site):  # noqa: F811
    cm, events = mini_changes
    assert all(e.pixels >= 4 for e in events)
    from nampo.analysis.events import EventParams

    more = find_events(cm, mini_site.grid, mini_site.facilities, EventParams(min_pixels=1))
    assert len(more) >= len(events)


def test_events_geojson_round_trip(mini_changes, tmp_path):
    from nampo.analysis.events import to_geojson

    _, events = mini_changes
    to_geojson(events, tmp_path / "e.geojson")
    back = read_geojson(tmp_path / "e.geojson")
    assert [b["id"] for b in back] == [e.id for e in events]
    for b, e in zip(back, events, strict=True):
        assert b["geometry"].equals_exact(e.geometry, 1e-9)
        assert b["area_m2"] == e.area_m2 and b["type"] == e.type
        assert b["facilities"] == list(e.facilities)
    assert np.isclose(sum(b["area_m2"] for b in back), sum(e.area_m2 for e in events))


@pytest.mark.parametrize(
    "month, reads_as",
    [
        # 11 new pixels (the limit is 14): 7 of them a bad month among the first
        # `min_before` (3) months completing a short before state (built, then bare).
        # Before change dating's rule 10 there were 19 (a strict xfail): 11 mixed pixels
        # read built under the haze, then water, changed by less than half the pixel
        (2, "haze"),
        (2, "shadow"),
        (5, "haze"),
        (5, "shadow"),
        (8, "haze"),
        (8, "shadow"),
    ],
)
def test_a_single_bad_month_adds_no_change(mini_store, mini_changes, month, reads_as):  # noqa: F811
    """One month of the real series replaced by a scene the mask missed: thick haze (every
    pixel bright and grey, read as built or bright) or a cloud shadow (dark, read as
    dark/coal). No pixel that had no change gets one."""
    from nampo.products.classes import BUILT, DARK
    from nampo.products.variables import COMPOSITE_BANDS

    cm, _ = mini_changes
    ds = mini_store.open().sel(time=slice(str(MINI_FIRST), str(MINI_LAST))).load()
    for b in COMPOSITE_BANDS:
        band = ds[b].values
        band[month] = band[month] * 0.5 + 0.2 if reads_as == "haze" else band[month] * 0.3
    ds["landcover"].values[month] = BUILT if reads_as == "haze" else DARK
    bad = change_map(ds)
    new = (bad["type"].values > 0) & (cm["type"].values == 0)
    assert new.sum() <= 0.001 * new.size, f"{new.sum()} pixels changed by one bad month"
