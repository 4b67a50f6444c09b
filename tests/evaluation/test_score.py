"""Scoring events against a small hand-made truth folder (events.geojson + events.tif)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from shapely.geometry import box, mapping

from nampo import cli
from nampo.evaluation.score import score
from nampo.grid import Grid

GRID = Grid(32651, 10.0, 709160.0, 4289200.0, 40, 30)
EPOCH = dt.date(1970, 1, 1)


def pixels(rows, cols):
    """Outline (lon/lat) of pixel rows/cols [start, stop)."""
    x0, y0, r = GRID.x0, GRID.y0, GRID.resolution
    return GRID.to_lonlat(
        box(x0 + cols[0] * r, y0 - rows[1] * r, x0 + cols[1] * r, y0 - rows[0] * r)
    )


TRUTH = [
    # number, id, type, rows, cols, day of change
    (1, "roofs", "construction", (2, 7), (2, 12), dt.date(2017, 6, 1)),  # 50 px
    (2, "pier", "pier", (10, 16), (2, 7), dt.date(2017, 9, 1)),  # 30 px
    (3, "crane", "equipment", (20, 20), (30, 30), dt.date(2016, 5, 1)),  # no pixel
    (4, "ships", "vessel_visits", (20, 25), (0, 10), None),
]


@pytest.fixture
def archive(tmp_path):
    (tmp_path / "truth").mkdir()
    number = np.zeros(GRID.shape, "int32")
    day = np.zeros(GRID.shape, "int32")
    features = []
    for n, ident, kind, rows, cols, when in TRUTH:
        if kind != "vessel_visits":
            number[slice(*rows), slice(*cols)] = n
            if when:
                day[slice(*rows), slice(*cols)] = (when - EPOCH).days
        geom = pixels(rows, cols) if rows[0] != rows[1] else pixels((20, 21), (30, 31)).centroid
        if kind == "equipment":
            geom = geom.buffer(0.00003)
        features.append(
            {"type": "Feature", "geometry": mapping(geom),
             "properties": {"number": n, "id": ident, "type": kind, "area_m2": 0}}
        )  # fmt: skip
    (tmp_path / "truth" / "events.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    profile = dict(driver="GTiff", width=GRID.width, height=GRID.height, count=4, dtype="int32",
                   crs=GRID.crs, transform=GRID.transform)  # fmt: skip
    with rasterio.open(tmp_path / "truth" / "events.tif", "w", **profile) as dst:
        dst.write(np.stack([number, day, number * 0, number * 0]))
    return tmp_path


def event(ident, kind, rows, cols, date):
    n = (rows[1] - rows[0]) * (cols[1] - cols[0])
    return {"id": ident, "type": kind, "area_m2": n * 100.0, "date": date.isoformat(),
            "geometry": pixels(rows, cols)}  # fmt: skip


EVENTS = [
    event("E1", "construction", (2, 7), (2, 12), dt.date(2017, 6, 11)),  # the roofs, +10 d
    event("E2", "reclamation", (10, 15), (2, 7), dt.date(2017, 7, 23)),  # 25/30 of the pier
    event("E3", "drainage", (2, 7), (20, 25), dt.date(2017, 1, 1)),  # nothing there
    event("E4", "construction", (19, 21), (29, 31), dt.date(2016, 6, 1)),  # on the crane
]


def test_recall_precision_timing_and_area(archive):
    s = score(EVENTS, archive)
    overall = s.rows()[0]
    assert overall["truth"] == 2  # land-cover events with pixels, >= 2,000 m2
    assert overall["recall"] == 1.0
    assert overall["events"] == 3 and overall["true_events"] == 2  # E4 is 400 m2
    assert overall["precision"] == pytest.approx(2 / 3)
    assert overall["median_timing_error_days"] == pytest.approx((10 + 40) / 2)
    assert overall["median_area_error_pct"] == pytest.approx((0 + 100 * 5 / 30) / 2)
    assert overall["type_agreement"] == 1.0  # a pier is found as reclamation
    rows = {r["type"]: r for r in s.rows()}
    assert rows["reclamation"]["truth"] == 1 and rows["reclamation"]["recall"] == 1.0
    assert rows["drainage"]["precision"] == 0.0
    assert s.subpixel_claims == ["crane"]
    assert s.to_dict()["false_events"] == ["E3", "E4"]


def test_a_truth_event_barely_touched_is_missed(archive):
    thin = [event("E1", "construction", (2, 3), (2, 12), dt.date(2017, 6, 1))]  # 10 of 50 px
    s = score(thin, archive, min_area=0)
    roofs = next(m for m in s.matches if m.truth.id == "roofs")
    assert roofs.events and not roofs.detected  # assigned (all its pixels are roofs)...
    assert s.rows()[0]["precision"] == 1.0  # ...so not a false event, but under 25 %


def test_mixed_edge_pixels_next_to_a_truth_event_are_not_false(archive):
    ring = [event("E1", "drainage", (7, 8), (2, 12), dt.date(2017, 6, 1))]  # just below
    s = score(ring, archive, min_area=0)
    assert s.assigned == [1]
    far = [event("E1", "drainage", (8, 9), (2, 12), dt.date(2017, 6, 1))]  # two px away
    assert score(far, archive, min_area=0).assigned == [None]


def test_period_keeps_truth_events_dated_in_it(archive):
    s = score(EVENTS, archive, period=(dt.date(2017, 8, 1), dt.date(2018, 1, 1)))
    assert [m.truth.id for m in s.matches] == ["pier"]


def test_score_command_on_an_events_file(archive, tmp_path, capsys):
    from nampo.analysis.events import to_geojson

    fc = to_geojson([])
    fc["features"] = [
        {"type": "Feature", "geometry": mapping(e["geometry"]),
         "properties": {k: v for k, v in e.items() if k != "geometry"}}
        for e in EVENTS
    ]  # fmt: skip
    path = tmp_path / "events.geojson"
    path.write_text(json.dumps(fc))
    assert cli.main(["score", "--archive", str(archive), "--events", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0]["recall"] == 1.0
    assert cli.main(["score", "--archive", str(archive), "--events", str(path)]) == 0
    text = capsys.readouterr().out
    assert "overall" in text and "false events: E3" in text and "claimed: crane" in text


def test_score_command_errors(tmp_path, capsys):
    assert cli.main(["score", "--archive", str(tmp_path), "--events", "x.geojson"]) == 2
    assert "not a scenario archive" in capsys.readouterr().err
