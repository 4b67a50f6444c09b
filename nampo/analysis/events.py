"""Events: the changed pixels of a change map (:func:`nampo.analysis.dating.change_map`)
grouped into objects an analyst can read (:class:`Event`: type, outline, area, window,
facility, confidence), written for GIS tools and into the store. The grouping rules:
``docs/change.md``, "Events"."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine
from rasterio.features import shapes
from scipy import ndimage
from shapely.geometry import mapping, shape
from shapely.ops import unary_union

from nampo.analysis.activity.moored import without_moored_ships
from nampo.analysis.dating import CHANGE_CLASSES, TYPES, ChangeParams, change_dates, change_map
from nampo.grid import Grid

__all__ = [
    "Event",
    "EventParams",
    "describe",
    "find_events",
    "read_geojson",
    "save_events",
    "site_events",
    "store_period",
    "stored_events",
    "summary",
    "to_geojson",
    "to_geoparquet",
]

EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class EventParams:
    """How pixels are grouped into events."""

    min_pixels: int = 4
    """Smallest event, in pixels (400 m² at 10 m): fewer are mostly mixed edge pixels."""
    max_gap_days: int = 120
    """Pixels of one object whose change dates leave a larger gap are two events."""


@dataclass(frozen=True)
class Event:
    """One change event of a site."""

    id: str
    """``E`` and a number, in order of date."""
    type: str
    """Change type (:data:`nampo.analysis.dating.TYPES`)."""
    class_before: str
    """Most frequent class of its pixels before (:data:`nampo.analysis.dating.CHANGE_CLASSES`)."""
    class_after: str
    """Most frequent class of its pixels after."""
    pixels: int
    """Number of its pixels."""
    area_m2: float
    """Area of its pixels."""
    window_start: dt.date
    """Middle of the earliest last clear month before the change among its pixels."""
    window_end: dt.date
    """Middle of the latest first clear month after the change among its pixels."""
    date: dt.date
    """Median of its pixels' estimated days of change (halfway through each window)."""
    facility: str | None
    """The site facility its outline overlaps most, if any."""
    facilities: tuple[str, ...]
    """Every facility its outline overlaps, most overlap first (facilities may overlap: a
    new pier lies in its quay and in the river)."""
    confidence: float
    """0-1: mean agreement of its pixels with their before and after states, times a size
    factor (``1 - exp(-pixels / 8)``): small objects are mostly mixed edge pixels."""
    magnitude: float
    """Median change-vector length of the six-band reflectance."""
    geometry: object
    """Outline, shapely (multi)polygon in lon/lat."""

    def properties(self) -> dict:
        d = asdict(self)
        d.pop("geometry")
        d["facilities"] = list(self.facilities)
        for k in ("window_start", "window_end", "date"):
            d[k] = d[k].isoformat()
        return d


def _transform(cm: xr.Dataset) -> Affine:
    x, y = cm["x"].values, cm["y"].values
    res = float(x[1] - x[0]) if x.size > 1 else float(y[0] - y[1])
    return Affine(res, 0.0, float(x[0]) - res / 2, 0.0, -res, float(y[0]) + res / 2)


def _to_date(d: np.datetime64) -> dt.date:
    return dt.date.fromisoformat(str(d.astype("datetime64[D]")))


def find_events(
    cm: xr.Dataset,
    grid: Grid,
    facilities: Sequence[tuple[str, str, object]] = (),
    params: EventParams = EventParams(),  # noqa: B008 (frozen)
) -> list[Event]:
    """Group a computed change map's pixels into events.

    Parameters
    ----------
    cm : a change map (:func:`nampo.analysis.dating.change_map`, computed) over a window of the
        site's grid.
    grid : the site's grid (its CRS; the window is read from ``cm``'s coordinates).
    facilities : ``(name, title, outline in lon/lat)`` of each facility (``Site.facilities``).
    params : grouping parameters.

    Examples
    --------
    >>> events = find_events(change_map(ds).compute(), site.grid, site.facilities)  # doctest: +SKIP
    >>> to_geojson(events, "events.geojson")  # doctest: +SKIP
    """
    transform = _transform(cm)
    res = abs(transform.a)
    typ = cm["type"].values
    before_day, after_day, day = change_dates(cm)
    days = day.astype("int64")  # NaT -> min int, only read where typ > 0
    fac = [(name, grid.from_lonlat(outline)) for name, _, outline in facilities]
    found = []
    for code in np.unique(typ[typ > 0]):
        labels, n = ndimage.label(typ == code, structure=EIGHT)
        for sl_index, sl in enumerate(ndimage.find_objects(labels)):
            comp = labels[sl] == sl_index + 1
            for part in _split_in_time(comp, days[sl], params.max_gap_days):
                sub, m = ndimage.label(part, structure=EIGHT)
                for k in range(1, m + 1):
                    mask = sub == k
                    if mask.sum() < params.min_pixels:
                        continue
                    found.append(
                        _event(cm, sl, mask, int(code), transform, res, grid, fac,
                               (before_day[sl], after_day[sl], day[sl]))
                    )  # fmt: skip
    found.sort(key=lambda e: (e.date, -e.area_m2))
    return [_renumber(e, i + 1) for i, e in enumerate(found)]


def _split_in_time(comp: np.ndarray, days: np.ndarray, gap: int) -> list[np.ndarray]:
    d = np.sort(np.unique(days[comp]))
    cuts = np.flatnonzero(np.diff(d) > gap)
    if cuts.size == 0:
        return [comp]
    edges = [d[0], *(d[c + 1] for c in cuts), d[-1] + 1]
    return [comp & (days >= lo) & (days < hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def _majority(values: np.ndarray) -> int:
    return int(np.bincount(values.astype("int64")).argmax())


def _event(cm, sl, mask, code, transform, res, grid: Grid, fac, dates) -> Event:
    before_day, after_day, day = (d[mask] for d in dates)
    window = transform @ Affine.translation(sl[1].start, sl[0].start)
    polys = [shape(g) for g, v in shapes(mask.astype("uint8"), mask=mask, transform=window) if v]
    outline = unary_union(polys)
    overlap = sorted(((outline.intersection(f).area, name) for name, f in fac), reverse=True)
    inside = tuple(name for area, name in overlap if area > 0)
    conf = cm["confidence"].values[sl][mask]
    n = int(mask.sum())
    return Event(
        id="",
        type=TYPES[code],
        class_before=CHANGE_CLASSES[_majority(cm["class_before"].values[sl][mask])],
        class_after=CHANGE_CLASSES[_majority(cm["class_after"].values[sl][mask])],
        pixels=n,
        area_m2=float(n * res * res),
        window_start=_to_date(before_day.min()),
        window_end=_to_date(after_day.max()),
        date=_to_date(np.sort(day)[len(day) // 2]),
        facility=inside[0] if inside else None,
        facilities=inside,
        confidence=round(float(np.mean(conf)) * (1 - float(np.exp(-n / 8))), 3),
        magnitude=round(float(np.nanmedian(cm["magnitude"].values[sl][mask])), 4),
        geometry=grid.to_lonlat(outline),
    )


def _renumber(e: Event, i: int) -> Event:
    from dataclasses import replace

    return replace(e, id=f"E{i:03d}")


def to_geojson(events: Iterable[Event], path: str | Path | None = None) -> dict:
    """A GeoJSON FeatureCollection of events (lon/lat), written to `path` when given."""
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": e.id, "properties": e.properties(),
             "geometry": mapping(e.geometry)}
            for e in events
        ],
    }  # fmt: skip
    if path is not None:
        Path(path).write_text(json.dumps(fc, indent=1))
    return fc


def read_geojson(path: str | Path) -> list[dict]:
    """The features of an events GeoJSON file (properties and shapely geometry)."""
    features = json.loads(Path(path).read_text())["features"]
    return [{**f["properties"], "geometry": shape(f["geometry"])} for f in features]


def summary(events: Iterable[Event]) -> str:
    """The events as an analyst reads them, one line each."""
    lines = []
    for e in events:
        where = f" in {e.facility}" if e.facility else ""
        lines.append(
            f"{e.id} {e.type:13s} {e.area_m2 / 1e4:7.2f} ha{where}: {e.class_before} -> "
            f"{e.class_after} between {e.window_start:%d %b %Y} and {e.window_end:%d %b %Y} "
            f"(about {e.date:%d %b %Y}), confidence {e.confidence:.2f}"
        )
    return "\n".join(lines)


def store_period(store) -> tuple[dt.date, dt.date]:
    """First and last month with a completed unit in a store."""
    from nampo.errors import NampoError
    from nampo.run.units import Unit, unit_from_id

    done = sorted(u.month for u in map(unit_from_id, store.done()) if isinstance(u, Unit))
    if not done:
        raise NampoError(f"{store.url} has no completed month yet: run `nampo process` first")
    return done[0], done[-1]


def site_events(
    store,
    first: dt.date | None = None,
    last: dt.date | None = None,
    facilities: Sequence[tuple[str, str, object]] = (),
    change: ChangeParams = ChangeParams(),  # noqa: B008 (frozen)
    grouping: EventParams = EventParams(),  # noqa: B008 (frozen)
) -> tuple[xr.Dataset, list[Event]]:
    """The change map (computed, tile by tile on the current Dask scheduler) and the events
    of a store over a period (default: every month it has computed). The months in which
    ships lay on a berth pixel in most of the scenes read are gaps there (the store's
    activity; :func:`nampo.analysis.activity.moored.without_moored_ships`).

    Examples
    --------
    >>> cm, events = site_events(Store("nampo.zarr"), facilities=site.facilities)  # doctest: +SKIP
    >>> print(summary(events))  # doctest: +SKIP
    """
    if first is None or last is None:
        f, la = store_period(store)
        first, last = first or f, last or la
    ds = store.open().sel(time=slice(np.datetime64(first, "D"), np.datetime64(last, "D")))
    # a month in which ships lay on a berth pixel in most of its scenes says nothing about
    # the ground there (rule 1 of change dating, activity/moored.py)
    ds = without_moored_ships(ds, store.activity())
    cm = change_map(ds, change).compute()
    return cm, find_events(cm, store.site.grid, facilities, grouping)


def to_geoparquet(events: Iterable[Event], path: str | Path | None = None) -> bytes:
    """The events as GeoParquet (lon/lat, EPSG:4326; one row per event, the properties of
    :func:`to_geojson` as columns, dates as dates), written to `path` when given.

    GIS tools read it directly (QGIS, GDAL's Parquet driver, DuckDB, geopandas).
    """
    import io

    import geopandas as gpd

    events = list(events)
    rows = [e.properties() for e in events]
    columns = [f.name for f in Event.__dataclass_fields__.values() if f.name != "geometry"]
    frame = gpd.GeoDataFrame(
        rows or None,
        columns=columns,
        geometry=[e.geometry for e in events],
        crs="EPSG:4326",
    )
    for k in ("window_start", "window_end", "date"):
        frame[k] = [dt.date.fromisoformat(v) for v in frame[k]] if rows else frame[k]
    frame["facilities"] = [", ".join(e.facilities) for e in events]
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def save_events(store, events: Sequence[Event]) -> list[str]:
    """Write the events into the store (``nampo/events/events.geojson`` and
    ``events.parquet``, see docs/store.md), replacing earlier ones; returns their URLs."""
    geojson = json.dumps(to_geojson(events), indent=1).encode()
    return store.write_events({"events.parquet": to_geoparquet(events), "events.geojson": geojson})


def stored_events(store) -> list[dict] | None:
    """The events last saved into a store (properties and shapely geometry), or None."""
    raw = store.events_file("events.geojson")
    if raw is None:
        return None
    return [
        {**f["properties"], "geometry": shape(f["geometry"])} for f in json.loads(raw)["features"]
    ]


_PHRASES = {
    "construction": "{size} of new buildings went up",
    "reclamation": "{size} of new ground (a quay, pier or fill) was built out into the water",
    "drainage": "{size} of water was drained",
    "coal_cover": "coal covered {size} of {before} ground",
    "coal_removed": "coal was cleared from {size}, down to {after} ground",
    "new_tank": "a new storage tank ({size}) was built",
    "demolition": "{size} of buildings or cover was cleared",
    "unclassified": "{size} changed from {before} to {after}",
}
# A surface built before and after that stepped in brightness (change dating's rule 7):
# what is measured is a brighter or darker built surface at 10 m, not what stands on it.
# A roof on a paved yard and containers stacked on it both brighten it alike (roofs and
# containers reflect more than asphalt or worn concrete), so the sentence names both.
_STEPS = {
    "construction": "{size} of built ground became brighter, as a new roof or containers "
    "stacked on a paved yard make it",
    "unclassified": "{size} of built ground became darker, as a roof taken down, a yard "
    "emptied of containers or new dark paving make it",
}
_GROUND = {"built": "paved or built", "bright": "paved or built"}
"""How a class reads as the ground under coal (a pad and a roof are both ``built``)."""


def _size(area_m2: float) -> str:
    return f"{area_m2 / 1e4:.1f} ha" if area_m2 >= 1e4 else f"{area_m2:,.0f} m²"


def _months(a: dt.date, b: dt.date) -> str:
    if (a.year, a.month) == (b.year, b.month):
        return f"in {a:%B %Y}"
    if a.year == b.year:
        return f"between {a:%B} and {b:%B %Y}"
    return f"between {a:%B %Y} and {b:%B %Y}"


def describe(e: Event, titles: dict[str, str] | None = None) -> str:
    """One event as an analyst would say it: "4.1 ha of new buildings went up at the
    former smeltery site between May and September 2017 (confidence 0.98)".

    titles : facility name -> title (``{name: title for name, title, _ in site.facilities}``).
    """
    phrases = _PHRASES
    if e.class_before == e.class_after and e.class_after in ("built", "bright"):
        phrases = {**_PHRASES, **_STEPS}
    after = _GROUND.get(e.class_after, e.class_after) if e.type == "coal_removed" else e.class_after
    what = phrases.get(e.type, phrases["unclassified"]).format(
        size=_size(e.area_m2), before=e.class_before, after=after
    )
    where = ""
    if e.facility:
        title = (titles or {}).get(e.facility, e.facility.replace("_", " "))
        where = f" at the {title[:1].lower()}{title[1:]}"
    return (
        f"{what[:1].upper()}{what[1:]}{where} {_months(e.window_start, e.window_end)} "
        f"(confidence {e.confidence:.2f})"
    )
