"""Grouping a change map's pixels into events, on a tiny literal change map."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from shapely.geometry import box

from nampo.analysis.dating import BRIGHT, CONSTRUCTION, DRAINAGE, NEW_TANK, OUTPUTS
from nampo.analysis.events import EventParams, find_events, read_geojson, summary, to_geojson
from nampo.grid import Grid
from nampo.products.classes import BARE, BUILT, WATER

GRID = Grid(32651, 10.0, 709160.0, 4289200.0, 20, 12)
TIMES = pd.date_range("2016-01-01", periods=24, freq="MS")


def change_map(blocks):
    """blocks: (rows, cols, type, before, after, last_before, first_after, confidence)."""
    data = {k: np.zeros(GRID.shape, dt) for k, dt in OUTPUTS.items()}
    data["last_before"][:] = -1
    data["first_after"][:] = -1
    for rows, cols, typ, b, a, lb, fa, conf in blocks:
        data["type"][rows, cols] = typ
        data["class_before"][rows, cols] = b
        data["class_after"][rows, cols] = a
        data["last_before"][rows, cols] = lb
        data["first_after"][rows, cols] = fa
        data["confidence"][rows, cols] = conf
        data["magnitude"][rows, cols] = 0.1
    x, y = GRID.xy_coords()
    return xr.Dataset(
        {k: (("y", "x"), v) for k, v in data.items()},
        coords={"y": y, "x": x, "time": TIMES.values},
    )


def facility(rows, cols):
    """A facility outline (lon/lat) covering pixel rows/cols [start, stop)."""
    x0, y0, r = GRID.x0, GRID.y0, GRID.resolution
    return GRID.to_lonlat(
        box(x0 + cols[0] * r, y0 - rows[1] * r, x0 + cols[1] * r, y0 - rows[0] * r)
    )


FACILITIES = [
    ("yard", "Yard", facility((0, 6), (0, 10))),
    ("pond", "Pond", facility((6, 12), (0, 20))),
]


def test_connected_pixels_of_one_type_are_one_event():
    cm = change_map([
        (slice(1, 4), slice(1, 5), CONSTRUCTION, BARE, BUILT, 5, 6, 1.0),   # 12 px
        (slice(8, 11), slice(2, 12), DRAINAGE, WATER, BARE, 3, 9, 0.8),     # 30 px
    ])  # fmt: skip
    events = find_events(cm, GRID, FACILITIES)
    # by date: the roof about 30 June, the drainage about mid-July
    assert [(e.type, e.pixels) for e in events] == [("construction", 12), ("drainage", 30)]
    build, drain = events
    assert build.area_m2 == 1200.0
    assert (build.class_before, build.class_after) == ("bare", "built")
    assert build.window_start == dt.date(2016, 6, 15)  # middle of the last month before
    assert build.window_end == dt.date(2016, 7, 15)  # middle of the first month after
    assert build.window_start < build.date < build.window_end
    assert (build.facility, drain.facility) == ("yard", "pond")
    outline = GRID.from_lonlat(build.geometry)  # back in metres: the 4 x 3 pixels
    assert outline.area == pytest.approx(1200.0, rel=1e-6)
    assert outline.bounds == pytest.approx(
        (GRID.x0 + 10, GRID.y0 - 40, GRID.x0 + 50, GRID.y0 - 10), abs=1e-3
    )
    assert [e.id for e in events] == ["E001", "E002"]
    assert 0 < build.confidence < 1 and build.confidence < drain.confidence + 0.5


def test_adjacent_pixels_of_two_types_are_two_events():
    cm = change_map([
        (slice(1, 4), slice(1, 4), CONSTRUCTION, BARE, BUILT, 5, 6, 1.0),
        (slice(1, 4), slice(4, 7), NEW_TANK, BUILT, BRIGHT, 5, 6, 1.0),
    ])  # fmt: skip
    assert sorted(e.type for e in find_events(cm, GRID)) == ["construction", "new_tank"]


def test_one_object_changed_at_two_distant_times_is_two_events():
    cm = change_map([
        (slice(1, 4), slice(1, 4), CONSTRUCTION, BARE, BUILT, 2, 3, 1.0),
        (slice(1, 4), slice(4, 7), CONSTRUCTION, BARE, BUILT, 17, 18, 1.0),
    ])  # fmt: skip
    events = find_events(cm, GRID, params=EventParams(max_gap_days=120))
    assert len(events) == 2 and all(e.pixels == 9 for e in events)
    assert len(find_events(cm, GRID, params=EventParams(max_gap_days=600))) == 1


def test_a_gradual_change_stays_one_event():
    # a front crossing a pond one column a month: no gap between neighbouring dates
    blocks = [
        (slice(6, 11), slice(c, c + 1), DRAINAGE, WATER, BARE, c, c + 1, 1.0) for c in range(14)
    ]
    (event,) = find_events(change_map(blocks), GRID)
    assert event.pixels == 70
    assert event.window_start == dt.date(2016, 1, 15)
    assert event.window_end == dt.date(2017, 3, 15)


def test_small_objects_are_dropped():
    cm = change_map([(slice(1, 2), slice(1, 4), CONSTRUCTION, BARE, BUILT, 5, 6, 1.0)])
    assert find_events(cm, GRID) == []
    assert len(find_events(cm, GRID, params=EventParams(min_pixels=3))) == 1


def test_geojson_and_summary(tmp_path):
    cm = change_map([(slice(1, 4), slice(1, 5), CONSTRUCTION, BARE, BUILT, 5, 6, 1.0)])
    events = find_events(cm, GRID, FACILITIES)
    fc = to_geojson(events, tmp_path / "events.geojson")
    assert fc["features"][0]["properties"]["window_start"] == "2016-06-15"
    back = read_geojson(tmp_path / "events.geojson")
    assert back[0]["facilities"] == ["yard"]
    assert back[0]["geometry"].equals_exact(events[0].geometry, 1e-9)
    text = summary(events)
    assert "construction" in text and "0.12 ha" in text and "in yard" in text


def event(type_, before, after, area=2000.0):
    from nampo.analysis.events import Event

    day = dt.date(2017, 6, 15)
    return Event("E001", type_, before, after, int(area / 100), area, dt.date(2017, 5, 15),
                 dt.date(2017, 7, 15), day, "yard", ("yard",), 0.9, 0.1, None)  # fmt: skip


def test_sentences_say_what_was_measured():
    from nampo.analysis.events import describe

    titles = {"yard": "Coal yard"}
    said = describe(event("coal_removed", "dark", "built", 12600), titles)
    assert said.startswith("Coal was cleared from 1.3 ha, down to paved or built ground at "
                           "the coal yard between May and July 2017"), said  # fmt: skip
    assert "bare ground" in describe(event("coal_removed", "dark", "bare"))
    # a brightness step on a surface that stays built: never "from built to built"
    up = describe(event("construction", "built", "built"))
    down = describe(event("unclassified", "built", "built"))
    assert "built to built" not in up + down
    assert up.startswith("2,000 m² of built ground became brighter") and "containers" in up
    assert down.startswith("2,000 m² of built ground became darker"), down
    # a class change keeps its own sentence
    assert describe(event("construction", "bare", "built")).startswith(
        "2,000 m² of new buildings went up"
    )
    assert "from water to bare" in describe(event("unclassified", "water", "bare"))
