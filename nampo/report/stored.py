"""The report's events from the store, when it holds current ones (``nampo events`` and the
main job store them in ``nampo/events/``), and their change map, rasterised from their
outlines onto the site grid - instead of dating every pixel's change again (most of the
report's cost: ``docs/report.md``, "Cost").

"Current" is checked, not assumed: the events file must have been written after the last
completion record of the store (a unit completed later may change the events), and its
events must lie within the store's months. Otherwise the report dates the changes itself.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import shapely
import xarray as xr
from pyproj import Transformer
from rasterio.features import rasterize
from shapely.geometry import shape

from nampo.analysis.dating import TYPES
from nampo.analysis.events import Event
from nampo.grid import Grid
from nampo.run.units import month_end

__all__ = [
    "CODES",
    "current_events",
    "change_from_events",
]

CODES = {t: c for c, t in TYPES.items()}


def _event(props: dict) -> Event:
    p = dict(props)
    for k in ("window_start", "window_end", "date"):
        p[k] = dt.date.fromisoformat(p[k])
    p["facilities"] = tuple(p.get("facilities") or ())
    return Event(**p)


def current_events(store, first: dt.date, last: dt.date) -> tuple[list[Event] | None, str]:
    """The stored events when they are current, else None; and why (for the page)."""
    raw = store.events_file("events.geojson")
    if raw is None:
        return None, "the store holds no events: the report dated the changes itself"
    written, newest = store.events_written_at(), store.last_completed_at()
    if written is None or (newest is not None and written < newest):
        return None, (
            "the store's events were written before its last completed unit: the report "
            "dated the changes itself"
        )
    features = json.loads(raw)["features"]
    events = [_event({**f["properties"], "geometry": shape(f["geometry"])}) for f in features]
    if any(e.window_start < first or e.window_end > month_end(last) for e in events):
        return None, (
            "the store's events fall outside its months: the report dated the changes itself"
        )
    when = dt.datetime.fromtimestamp(written, dt.UTC)
    return events, f"events as stored in the store on {when:%Y-%m-%d %H:%M} UTC"


def change_from_events(events: list[Event], grid: Grid) -> xr.Dataset:
    """The change map of the events: each event's outline rasterised onto the site grid
    (pixels whose centre lies inside; later events over earlier ones) with its type, dates,
    confidence and magnitude. Variables ``type``, ``before``, ``after``, ``day``
    (datetime64[D], NaT outside events), ``confidence``, ``magnitude``."""
    to_grid = Transformer.from_crs("EPSG:4326", f"EPSG:{grid.epsg}", always_xy=True)

    def reproject(geometry):  # lon/lat -> the grid's CRS (shapely.ops.transform is deprecated)
        return shapely.transform(geometry, lambda xy: np.column_stack(to_grid.transform(*xy.T)))

    shape_ = grid.shape
    index = np.zeros(shape_, "int32")  # 1 + the event's position, 0: none
    ordered = sorted(range(len(events)), key=lambda i: events[i].date)
    shapes = [(reproject(events[i].geometry), i + 1) for i in ordered]
    if shapes:
        index = rasterize(shapes, out_shape=shape_, transform=grid.transform, fill=0,
                          dtype="int32")  # fmt: skip
    has = index > 0
    pick = np.clip(index - 1, 0, None)

    def per_event(values, dtype, empty):
        table = np.array(values, dtype) if values else np.zeros(1, dtype)
        return np.where(has, table[pick] if values else empty, np.array(empty, dtype))

    nat = np.datetime64("NaT", "D")

    def days(k):
        return per_event([np.datetime64(getattr(e, k), "D") for e in events], "datetime64[D]", nat)

    res = grid.resolution
    x = grid.x0 + res * (np.arange(shape_[1]) + 0.5)
    y = grid.y0 - res * (np.arange(shape_[0]) + 0.5)
    data = {
        "type": per_event([CODES[e.type] for e in events], "uint8", 0),
        "before": days("window_start"),
        "after": days("window_end"),
        "day": days("date"),
        "confidence": per_event([e.confidence for e in events], "float32", np.nan),
        "magnitude": per_event([e.magnitude for e in events], "float32", np.nan),
    }
    return xr.Dataset({k: (("y", "x"), v) for k, v in data.items()}, coords={"y": y, "x": x})
