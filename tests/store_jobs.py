"""What tests/io/test_store.py's worker processes run, and the data they write.

Kept apart from the test module so that spawned workers import little (no pytest, moto,
boto3 or rasterio): each worker starts in about a second.
"""

from __future__ import annotations

import os
import time
from datetime import date

import numpy as np
import xarray as xr

from nampo.grid import Grid
from nampo.io.store import Store, StoreLocation
from nampo.products.variables import MONTHLY
from nampo.run.units import Unit, months
from nampo.sites import Site, Tile

SITE = Site("teststore", "Store test site", Grid(32651, 10, 709160, 4289200, 120, 120), 64)
"""Four tiles: 64 x 64, 64 x 56, 56 x 64 and 56 x 56 pixels (the last row and column are
narrower, as on real sites)."""

CALENDAR = months(date(2017, 1, 1), date(2018, 12, 1))


def unit_ds(tile: Tile, month: date | None, variables=MONTHLY) -> xr.Dataset:
    """Deterministic products of one unit (the same in every process), NaNs included."""
    rng = np.random.default_rng([tile.ix, tile.iy, month.toordinal() if month else 0])
    data = {}
    for v in variables:
        if v.dtype == "float32":
            a = rng.normal(0.2, 0.1, tile.shape).astype("float32")
            a[rng.random(tile.shape) < 0.1] = np.nan
        else:
            a = rng.integers(0, 7, tile.shape).astype(v.dtype)
        data[v.name] = (("y", "x"), a)
    x, y = SITE.tile_grid(tile).xy_coords()
    return xr.Dataset(data, coords={"y": y, "x": x})


def ready(pause: float) -> int:
    time.sleep(pause)
    return os.getpid()


def job(location: StoreLocation, action: str, unit_ids: list[str], start_at: float) -> int:
    """Create the store or write units, starting at `start_at` (the other worker too)."""
    store = Store(location)
    time.sleep(max(0.0, start_at - time.time()))
    if action == "create":
        store.create(SITE, CALENDAR)
    for uid in unit_ids:
        unit = Unit.from_id(uid)
        store.write_unit(unit, unit_ds(SITE.tile(unit.tile_id), unit.month), {"pid": os.getpid()})
    return os.getpid()
