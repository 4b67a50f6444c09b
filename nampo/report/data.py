"""What a site report shows, as numbers read from the store (no drawing here).

:func:`gather` reads a store once and returns a :class:`ReportData`: which units are
complete and which are missing, the events and their change map, a recent cloud-free
composite, the before/after composites of each event, each facility's monthly series and,
when its caller hands it a :data:`Scorer`, the events' score. The drawing, the page and
the tests all read the same numbers from it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from rasterio.features import rasterize

from nampo.analysis.dating import ChangeParams
from nampo.analysis.events import Event, site_events
from nampo.products.variables import CLASSES, LAST_CLEAR_MONTHS
from nampo.products.version import PRODUCT_VERSION, is_stale
from nampo.run.units import BaselineUnit, Unit, month_end, months, unit_from_id
from nampo.sites import Site

__all__ = [
    "Scorer",
    "MIN_COVER",
    "CHIP_PAD_M",
    "CHIP_MIN_M",
    "ACTIVITY",
    "Coverage",
    "Composite",
    "FacilitySeries",
    "ReportData",
    "coverage",
    "Months",
    "overview",
    "chip_window",
    "chips",
    "facility_mask",
    "facility_series",
    "activity_series",
    "gather",
]

Scorer = Callable[[list[Event], tuple[dt.date, dt.date]], dict]
"""Scores the report's events over its period (first and last day): a JSON-ready dict the
page shows (``nampo.evaluation.score.ScoreResult.to_dict()``)."""

MIN_COVER = 0.98
"""A composite month for the overview: the latest whose carried-forward composite
(``last_*``: the latest clear month of each pixel among 6) covers this share of the site."""
CHIP_PAD_M = 150.0
"""Margin around an event's outline in its chips."""
CHIP_MIN_M = 400.0
"""Smallest side of a chip: a 400 m2 event still shows its neighbourhood."""
ACTIVITY = {
    "vessels": ("vessel count", "vessels at the berths per clear scene"),
    "ice_fraction": ("ice fraction", "share of the open water covered by ice per clear scene"),
}
"""Activity series a store may hold per facility (:mod:`nampo.analysis.activity`): name -> label,
meaning."""


@dataclass
class Coverage:
    """Which units of the store are complete."""

    months: list[dt.date]
    """Every month from the first to the last with a completed unit (empty: none)."""
    done: set[str]
    tiles: list[str]
    missing: list[str]
    """What is missing, one line each (tile and month ranges)."""

    def complete(self, tiles: list[str], month: dt.date) -> bool:
        return all(f"{t}/{month:%Y-%m}" in self.done for t in tiles)


@dataclass
class Composite:
    """A true-colour composite of (part of) the grid."""

    month: dt.date
    rgb: np.ndarray
    """(rows, cols, 3) red, green, blue reflectance (NaN: no clear month among 6)."""
    bounds: tuple[float, float, float, float]
    """(xmin, ymin, xmax, ymax) in the grid's CRS."""
    cover: float
    """Share of the pixels with a clear month among the 6."""
    from_month: float
    """Share of the pixels clear in `month` itself (the rest are carried forward)."""


@dataclass
class FacilitySeries:
    name: str
    title: str
    pixels: int
    tiles: list[str]
    months: list[dt.date]
    class_ha: dict[str, list[float | None]]
    """Area of each land-cover class (hectares) per month; None: month not complete."""
    unseen_ha: list[float | None]
    """Area without a clear observation in the month."""
    clear_obs: list[float | None]
    """Median number of clear observations of the facility's pixels."""
    all_obs: list[float | None]
    """Median number of observations (any sky)."""
    activity: dict[str, tuple[list[dt.date], list[float]]] = field(default_factory=dict)
    """Activity series found in the store (:data:`ACTIVITY`): dates of the clear scenes
    and their values."""
    missing_months: list[dt.date] = field(default_factory=list)
    in_store: set[str] = field(default_factory=set)
    """Activity series the store holds for some facility (a facility without berths has
    no vessel count even then)."""


@dataclass
class ReportData:
    site: Site
    store_url: str
    coverage: Coverage
    notes: list[str]
    """What the report cannot show, and why."""
    events: list[Event] = field(default_factory=list)
    change: xr.Dataset | None = None
    overview: Composite | None = None
    chips: dict[str, tuple[Composite, Composite]] = field(default_factory=dict)
    facilities: list[FacilitySeries] = field(default_factory=list)
    score: dict | None = None
    generated: str = ""
    events_seconds: tuple[float, float] = (0.0, 0.0)
    """Wall-clock and CPU seconds of getting the events and their change map (reading the
    stored ones, or dating the changes)."""
    events_source: str = ""
    """Where the events come from: the store's stored events, or dated by the report (and
    why)."""

    @property
    def period(self) -> tuple[dt.date, dt.date] | None:
        m = self.coverage.months
        return (m[0], m[-1]) if m else None


def coverage(store, site: Site) -> Coverage:
    done = store.done()
    tiles = [t.id for t in site.tiles]
    done_months = sorted({u.month for u in map(unit_from_id, done) if isinstance(u, Unit)})
    period = months(done_months[0], done_months[-1]) if done_months else []
    missing = []
    for t in tiles:
        if period and BaselineUnit(t).id not in done:
            missing.append(f"tile {t}: baseline")
        gaps = [m for m in period if Unit(m, t).id not in done]
        if gaps and len(gaps) == len(period):
            missing.append(f"tile {t}: every month")
        elif gaps:
            missing.append(f"tile {t}: {_ranges(gaps)}")
    return Coverage(period, done, tiles, missing)


def _ranges(ms: list[dt.date]) -> str:
    """2016-03..2016-05, 2017-01 (consecutive months joined)."""
    out, start, prev = [], ms[0], ms[0]
    for m in ms[1:] + [None]:
        if m is not None and (m.year * 12 + m.month) - (prev.year * 12 + prev.month) == 1:
            prev = m
            continue
        out.append(f"{start:%Y-%m}" if start == prev else f"{start:%Y-%m}..{prev:%Y-%m}")
        if m is not None:
            start = prev = m
    return ", ".join(out)


class Months:
    """Whole-grid reads of one month's carried-forward composite, each read once."""

    def __init__(self, ds: xr.Dataset, calendar: tuple[dt.date, ...]) -> None:
        self.ds = ds
        self.index = {m: i for i, m in enumerate(calendar)}
        self._cache: dict[dt.date, tuple[np.ndarray, np.ndarray]] = {}

    def rgb(self, month: dt.date) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols, 3) reflectance and the months each pixel is carried (255: none)."""
        if month not in self._cache:
            sub = self.ds[["last_red", "last_green", "last_blue", "last_age"]].isel(
                time=self.index[month]
            ).load()  # fmt: skip
            rgb = np.stack([sub[f"last_{b}"].values for b in ("red", "green", "blue")], -1)
            self._cache[month] = (rgb, sub["last_age"].values)
        return self._cache[month]


def overview(mon: Months, cov: Coverage, site: Site) -> Composite | None:
    """The latest month whose composite covers :data:`MIN_COVER` of the site (else the
    best covered of the last few), among months every tile has completed."""
    full = [m for m in cov.months if cov.complete(cov.tiles, m)]
    candidates = (full or cov.months)[::-1][:LAST_CLEAR_MONTHS]
    best = None
    for m in candidates:
        c = _composite(mon, m, site, None)
        if best is None or c.cover > best.cover + 1e-9:
            best = c
        if c.cover >= MIN_COVER:
            break
    return best


def _composite(mon: Months, month: dt.date, site: Site, window) -> Composite:
    rgb, age = mon.rgb(month)
    g = site.grid
    if window is None:
        rows, cols = (0, g.height), (0, g.width)
    else:
        rows, cols = window
    rgb, age = rgb[slice(*rows), slice(*cols)], age[slice(*rows), slice(*cols)]
    r = g.resolution
    bounds = (g.x0 + cols[0] * r, g.y0 - rows[1] * r, g.x0 + cols[1] * r, g.y0 - rows[0] * r)
    seen = age < 255
    return Composite(month, rgb, bounds, float(seen.mean()), float((age == 0).mean()))


def chip_window(site: Site, event: Event) -> tuple[tuple[int, int], tuple[int, int]]:
    """Pixel rows and columns of an event's chips: its outline plus a margin, at least
    :data:`CHIP_MIN_M` a side, inside the grid."""
    g = site.grid
    xmin, ymin, xmax, ymax = g.from_lonlat(event.geometry).bounds
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    half = max(xmax - xmin + 2 * CHIP_PAD_M, ymax - ymin + 2 * CHIP_PAD_M, CHIP_MIN_M) / 2
    c0 = int(np.floor((cx - half - g.x0) / g.resolution))
    c1 = int(np.ceil((cx + half - g.x0) / g.resolution))
    r0 = int(np.floor((g.y0 - cy - half) / g.resolution))
    r1 = int(np.ceil((g.y0 - cy + half) / g.resolution))
    return (max(r0, 0), min(r1, g.height)), (max(c0, 0), min(c1, g.width))


def chips(mon: Months, site: Site, events: list[Event]) -> dict[str, tuple[Composite, Composite]]:
    """Before and after composites of each event: the carried-forward composite of the
    month of its window's start (each pixel's latest clear month up to it, still before
    the change) and of its end (each of its pixels has been seen changed by then)."""
    out = {}
    for e in events:
        w = chip_window(site, e)
        before = _composite(mon, e.window_start.replace(day=1), site, w)
        after = _composite(mon, e.window_end.replace(day=1), site, w)
        out[e.id] = (before, after)
    return out


def facility_mask(site: Site, outline) -> np.ndarray:
    """Pixels whose centre lies in a facility's outline (lon/lat)."""
    g = site.grid
    return rasterize(
        [(g.from_lonlat(outline), 1)], out_shape=g.shape, transform=g.transform, dtype="uint8"
    ).astype(bool)


def facility_series(
    ds: xr.Dataset, cov: Coverage, site: Site, activity: dict | None = None
) -> list[FacilitySeries]:
    """Each facility's monthly class areas, unseen area and observation counts."""
    if not cov.months or not site.facilities:
        return []
    sel = ds.sel(time=slice(np.datetime64(cov.months[0], "D"), np.datetime64(cov.months[-1], "D")))
    arrays = {v: sel[v].values for v in ("landcover", "clear_count", "obs_count")}
    px_ha = site.grid.resolution**2 / 1e4
    out = []
    for name, title, outline in site.facilities:
        mask = facility_mask(site, outline)
        tiles = [
            t.id for t in site.tiles if mask[slice(*t.rows), slice(*t.cols)].any()
        ]  # fmt: skip
        lc = arrays["landcover"][:, mask]
        counts = np.stack([(lc == c).sum(axis=1) for c in (0, *CLASSES)], axis=1)
        ok = [cov.complete(tiles, m) for m in cov.months]

        def per_month(values, ok=ok):
            return [float(v) if good else None for v, good in zip(values, ok, strict=True)]

        series = FacilitySeries(
            name, title, int(mask.sum()), tiles, list(cov.months),
            {cls: per_month(counts[:, i + 1] * px_ha) for i, cls in enumerate(CLASSES.values())},
            per_month(counts[:, 0] * px_ha),
            per_month(_median(arrays["clear_count"][:, mask])),
            per_month(_median(arrays["obs_count"][:, mask])),
            missing_months=[m for m, good in zip(cov.months, ok, strict=True) if not good],
        )  # fmt: skip
        series.activity = (activity or {}).get(name, {})
        series.in_store = {a for per in (activity or {}).values() for a in per}
        out.append(series)
    return out


def _median(a: np.ndarray) -> np.ndarray:
    return np.median(a, axis=1) if a.shape[1] else np.full(a.shape[0], np.nan)


def activity_series(store) -> dict[str, dict[str, tuple[list[dt.date], list[float]]]]:
    """Per facility and activity (:data:`ACTIVITY`): the dates of the scenes clear enough
    to count and their values, from the store's activity records (:mod:`nampo.analysis.activity`);
    empty when the store (or this version of nampo) has none."""
    try:
        from nampo.analysis import activity as act
    except ImportError:
        return {}
    read = getattr(store, "activity", None)
    docs = read() if read is not None else []
    if not docs:
        return {}
    out: dict[str, dict] = {}
    for name, frame in (
        ("vessels", act.vessel_series(docs)),
        ("ice_fraction", act.ice_series(docs)),
    ):
        frame = frame.dropna(subset=[name])
        for facility, rows in frame.groupby("facility"):
            out.setdefault(facility, {})[name] = (
                list(rows["date"]), [float(v) for v in rows[name]]
            )  # fmt: skip
    return out


def gather(
    store,
    site: Site,
    change: ChangeParams = ChangeParams(),  # noqa: B008 (frozen)
    score: Scorer | None = None,
) -> ReportData:
    """Everything the report shows, read from `store` (`site` gives its facilities,
    `change` the parameters of change dating, `score` the events' score when given)."""
    cov = coverage(store, site)
    data = ReportData(site, store.url, cov, notes=[])
    data.generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if not cov.months:
        data.notes.append(
            "The store has no completed month yet: no composite, event or series to show "
            "(run `nampo process` or the backfill flow first)."
        )
        return data
    if cov.missing:
        data.notes.append(
            f"The store is partly processed: {len(cov.missing)} tiles miss units "
            "(listed under Coverage); what they cover is blank or left out."
        )
    stale = sorted(u for u, r in store.records().items() if is_stale(r))
    if stale:
        data.notes.append(
            f"{len(stale)} units of this store were written by an older product version "
            f"than this one ({PRODUCT_VERSION}): what they show may differ from today's "
            "product (`nampo store status`; a backfill or monitoring run recomputes them)."
        )
    ds = store.open()
    mon = Months(ds, store.calendar)
    data.overview = view = overview(mon, cov, site)
    assert view is not None  # the store has a completed month
    if view.cover < MIN_COVER:
        data.notes.append(
            f"The overview composite covers {view.cover:.0%} of the site: the rest "
            "had no clear observation in the 6 months up to it."
        )
    needed = change.min_before + change.min_after
    if len(cov.months) < needed:
        data.notes.append(
            f"Change dating needs at least {needed} months; the store has {len(cov.months)}: "
            "no events yet."
        )
    else:
        from nampo.report.stored import change_from_events, current_events

        t0, c0 = time.perf_counter(), time.process_time()
        stored, data.events_source = current_events(store, cov.months[0], cov.months[-1])
        if stored is not None:
            # the stored events' outlines, rasterised: no second dating of every pixel
            data.events, data.change = stored, change_from_events(stored, site.grid)
        else:
            data.change, data.events = site_events(
                store, cov.months[0], cov.months[-1], site.facilities, change
            )
        data.events_seconds = (time.perf_counter() - t0, time.process_time() - c0)
        data.chips = chips(mon, site, data.events)
    data.facilities = facility_series(ds, cov, site, activity_series(store))
    if not site.facilities:
        data.notes.append("The site has no facilities: no per-facility series.")
    found = {a for f in data.facilities for a in f.activity}
    for name, (label, _) in ACTIVITY.items():
        if name not in found and site.facilities:
            data.notes.append(f"{label.capitalize()}: not in this store.")
    if score is not None:
        data.score = score(data.events, (cov.months[0], month_end(cov.months[-1])))
    return data
