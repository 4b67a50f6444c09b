"""A site from an outline alone: its grid is derived (UTM zone of its centre, 10 m, origin
on a fixed 60 m lattice) and covers the outline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from shapely.geometry import box

from nampo.errors import NampoError
from nampo.grid import SNAP_M, Grid, grid_for_outline, utm_epsg
from nampo.sites import Site

BASELINE = (dt.date(2016, 11, 1), dt.date(2016, 11, 1))


def test_utm_zone_of_the_centre():
    assert utm_epsg(2.33, 48.82) == 32631  # Paris
    assert utm_epsg(-47.98, -15.83) == 32723  # Aguas Claras, southern hemisphere
    assert utm_epsg(-122.03, 37.32) == 32610  # Cupertino
    with pytest.raises(ValueError):
        utm_epsg(200.0, 0.0)


def test_grid_covers_the_outline_on_the_lattice():
    outline = box(2.3101, 48.7976, 2.3555, 48.8451)
    g = grid_for_outline(outline)
    assert (g.epsg, g.resolution) == (32631, 10.0)
    assert g.x0 % SNAP_M == 0 and g.y0 % SNAP_M == 0
    assert (g.width * 10) % SNAP_M == 0 and (g.height * 10) % SNAP_M == 0
    assert g.footprint_lonlat().contains(outline)
    # the smallest such grid: shrinking it by one lattice step on a side uncovers the outline
    n = int(SNAP_M // g.resolution)
    for side in range(4):
        cols = (n if side == 0 else 0, g.width - (n if side == 1 else 0))
        rows = (n if side == 2 else 0, g.height - (n if side == 3 else 0))
        smaller = Grid(
            g.epsg, g.resolution, g.x0 + cols[0] * 10, g.y0 - rows[0] * 10,
            cols[1] - cols[0], rows[1] - rows[0],
        )  # fmt: skip
        assert not smaller.footprint_lonlat().contains(outline)
    # the same outline always gives the same grid; a shifted one keeps the lattice
    assert grid_for_outline(outline) == g
    moved = grid_for_outline(box(2.3102, 48.7977, 2.3556, 48.8452))
    assert (moved.x0 - g.x0) % SNAP_M == 0 and (moved.y0 - g.y0) % SNAP_M == 0


def test_site_from_geojson_outline(shared: Path):
    path = shared / "data" / "oscd" / "paris" / "paris.geojson"
    if not path.is_file():
        pytest.skip("OSCD data not available")
    site = Site.from_outline("paris", json.loads(path.read_text()), baseline=BASELINE, tile_px=128)
    assert site.grid.epsg == 32631
    assert site.baseline == BASELINE
    assert len(site.tiles) == -(-site.grid.width // 128) * -(-site.grid.height // 128)
    [(name, _, poly)] = site.facilities
    assert name == "paris" and site.footprint_lonlat.contains(poly)


def test_bad_outlines_are_named():
    with pytest.raises(NampoError, match="not a GeoJSON outline"):
        Site.from_outline("x", {"type": "Feature"}, baseline=BASELINE)
    with pytest.raises(NampoError, match="empty"):
        Site.from_outline("x", {"type": "Polygon", "coordinates": []}, baseline=BASELINE)
