"""The truth harness: what the stored products of a scenario archive should show, read from
the archive's truth (used by tests/end_to_end/test_pipeline_truth.py and the tests that
share its processed mini store).

Change metrics tell the truth: for each event of a scenario's ground truth, the class and
index changes of its pixels appear in the stored products in the months the truth says.

Everything expected is read from the archive's truth files (``truth/events.geojson``,
``truth/events.tif``, ``truth/scenes.csv``, ``truth/scenes/*.tif``) and from the renderer's
spectral library (:mod:`nampo.scenario.spectra`), never from the store under test:

- an event's pixels are those its geometry covers for more than half (as ``events.tif``
  counts them), that the truth shows in the event's old class before and in its new class
  after (a later event may have changed them again), narrowed to *pure* pixels whose
  neighbourhood is one class before and one class after: a 10 m pixel next to an edge
  still mixes its neighbours' 20 m SWIR bands (and every band's blur and
  misregistration), which is not what a class rule can be asked about;
- the months compared are *clean* over those pixels: at least two scenes in the month
  with no cloud, fog, shadow or cirrus over them by the truth rasters, so the median
  composite is not one hazy observation. "Before" is the latest clean month before the
  event starts, "after" the first clean month after it ends;
- the class a pixel should get is the scenario's class, mapped to the product's classes
  (:data:`PRODUCT_CLASS`);
- the expected direction and size of each index change comes from the classes' spectra,
  over the spectral variety of each class (its alternate end-member's share, one standard
  deviation either side), so that an object at either end of its class's range passes;
- a step change (``step`` and ``per_object`` events: the start when it clears the ground,
  and each pixel's day of change) must make ``cva_prev`` peak in its month or the next,
  above the months around it that compare two months with a clean scene each.

Each event type gets one test per aspect (classes, indices, cva_prev), so that a product
defect in one aspect is marked where it is (``xfail(strict=True)`` with the measured
numbers) without hiding the others.

The fast tests process the whole year of the mini archive once (about a minute); the slow
tests process, for each land-cover event of the Nampo scenario, a window of the Nampo grid
around it and only the months its checks read.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.features import rasterize
from rasterio.windows import Window
from scipy import ndimage
from shapely.geometry import shape

from nampo.grid import Grid
from nampo.io.store import Store
from nampo.products import indices
from nampo.products.variables import CLASSES, COMPOSITE_BANDS
from nampo.run.execute import process
from nampo.run.plan import CatalogSpec
from nampo.run.units import add_months, month_end, months
from nampo.scenario import spectra
from nampo.scenario.model import LandCover
from nampo.services import pgstac
from nampo.sites import Site

MINI_FIRST, MINI_LAST = dt.date(2021, 7, 1), dt.date(2022, 6, 1)  # the archive's year
TILE_PX = 64

CLEAN_CLOUD_PCT = 10
"""A scene is clean over a pixel when the truth's cloud (and fog) opacity there is below
10 % and its shadow below 10 %: the SCL flags only opacity >= 30 % and shadow >= 45 %,
so a scene it leaves clear may still be hazy; a clean one shows the ground."""
CLEAN_SHADOW_PCT = 10
SCL_CLOUD_PCT, SCL_SHADOW_PCT = 30, 45
"""What the renderer's SCL leaves unflagged (docs/scenario.md): the observations the
median composite takes."""
MIN_CLEAN = 2
"""Clean scenes a month needs over an event's pixels to be compared: with one, the
composite is that scene alone, with whatever haze the SCL let through."""
AGREEMENT = 0.8
"""Share of an event's pure pixels that must get the class the truth says. A class map
read as areas ("2.2 ha of new roofs") is of little use with more than one pixel in five
wrong, on pixels that are pure and in clean months."""
INDEX_STEP = 0.1
"""An index is checked when the classes' spectra move it by at least 0.1 (ten times the
month-to-month change of unchanged pixels' medians, about 0.01), in the same direction
over the classes' whole variety."""
BRIGHTNESS_STEP = 0.03
"""Brightness (mean reflectance of the six bands) is checked when the spectra move it by
at least 0.03: several times the scene-wide gain and per-class variation (+-3 % each of
reflectances around 0.15)."""
SHARE_OF_EXPECTED = 0.5
"""A measured change must have the spectra's sign and at least half the change the spectra
give at the least favourable ends of both classes' variety."""
MIN_PIXELS = 3
"""Fewest pixels a check is made on (the new tanks are 40-50 m circles)."""
SUMMER_GREENNESS = 0.8

PRODUCT_CLASS = {
    "water": "water",
    "vegetation": "vegetation",  # at its summer peak only: see summer()
    "bare": "bare",
    "paved": "built",
    "pier": "built",
    "roof": "built",
    "containers": "built",
    "tank": "built",
    "coal": "dark",
    "ice": "ice",
}
"""The product class each scenario class should get."""
PRODUCT_CODE = {name: code for code, name in CLASSES.items()}
N_TRUTH_CLASSES = max(c.code for c in LandCover) + 1
LAND_EVENTS = ("drainage", "construction", "pier", "coal_cover", "new_tank")
STEP_PROGRESS = ("step", "per_object")
BRIGHTNESS = "brightness"
CHECKED = ("ndvi", "mndwi", "ndbi", "dark", BRIGHTNESS)
EPOCH = dt.date(1970, 1, 1)


# --------------------------------------------------------------------------------------
# The truth of an archive, on a window of its grid


@dataclass(frozen=True)
class Event:
    number: int
    id: str
    type: str
    start: dt.date
    end: dt.date
    area_m2: float
    class_before: str | None
    class_after: str | None
    progress: str | None
    geometry: object  # shapely, lon/lat

    @classmethod
    def from_feature(cls, feature: dict) -> Event:
        p = feature["properties"]
        return cls(
            p["number"],
            p["id"],
            p["type"],
            dt.date.fromisoformat(p["start"]),
            dt.date.fromisoformat(p["end"]),
            p["area_m2"],
            p["class_before"],
            p["class_after"],
            p["progress"],
            shape(feature["geometry"]),
        )


@dataclass
class MonthTruth:
    n_clean: np.ndarray
    """Clean scenes per pixel."""
    stable: np.ndarray
    """The truth class where every clean scene of the month agrees, else 0."""
    counts: np.ndarray
    """(class code, rows, cols): clean scenes showing each class."""
    counts_unflagged: np.ndarray
    """Same over the scenes the SCL leaves clear."""

    def is_clean(self, mask: np.ndarray) -> bool:
        return bool(mask.any()) and float(np.median(self.n_clean[mask])) >= MIN_CLEAN


@dataclass
class Truth:
    """An archive's truth files, cut to a window of its site grid."""

    path: Path
    grid: Grid
    """The site grid of the archive."""
    window: Window
    events: dict[str, Event]
    scenes: list[dict]
    _stack: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _months: dict[dt.date, MonthTruth] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, path: Path, grid: Grid) -> Truth:
        features = json.loads((path / "truth" / "events.geojson").read_text())["features"]
        events = {f["properties"]["id"]: Event.from_feature(f) for f in features}
        with open(path / "truth" / "scenes.csv", newline="") as f:
            scenes = list(csv.DictReader(f))
        for s in scenes:
            s["date"] = dt.date.fromisoformat(s["date"])
        return cls(path, grid, Window(0, 0, grid.width, grid.height), events, scenes)

    def cut(self, window: Window) -> Truth:
        return Truth(self.path, self.grid, window, self.events, self.scenes)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.window.height), int(self.window.width)

    @property
    def subgrid(self) -> Grid:
        """The window as a grid of its own (same CRS, resolution and pixel lattice)."""
        g, w = self.grid, self.window
        return Grid(
            g.epsg,
            g.resolution,
            g.x0 + w.col_off * g.resolution,
            g.y0 - w.row_off * g.resolution,
            int(w.width),
            int(w.height),
        )

    @cached_property
    def raster(self) -> np.ndarray:
        """events.tif: event number, day of change, class at the period's start and end."""
        with rasterio.open(self.path / "truth" / "events.tif") as src:
            return src.read(window=self.window)

    def of_type(self, event_type: str) -> list[Event]:
        return [e for e in self.events.values() if e.type == event_type]

    def own(self, event: Event) -> np.ndarray:
        """Pixels events.tif gives the event (not overwritten by a later event)."""
        return self.raster[0] == event.number

    def change_day(self) -> np.ndarray:
        return self.raster[1]

    def footprint(self, geometry, all_touched: bool = False) -> np.ndarray:
        """A lon/lat geometry rasterized on the window (pixel-centre rule)."""
        g = self.subgrid
        return rasterize(
            [g.from_lonlat(geometry)],
            out_shape=g.shape,
            transform=g.transform,
            all_touched=all_touched,
        ).astype(bool)

    def majority(self, event: Event) -> np.ndarray:
        """Pixels more than half covered by the event's geometry: 3 or 4 of their 5 m
        cells, as events.tif counts them, whatever later events drew over them."""
        fine = self.subgrid.refine(2)
        cells = rasterize(
            [fine.from_lonlat(event.geometry)], out_shape=fine.shape, transform=fine.transform
        )
        h, w = self.shape
        return cells.reshape(h, 2, w, 2).sum((1, 3)) >= 3

    def scene(self, take: str) -> np.ndarray:
        """(4, rows, cols) truth of a datatake: class, cloud %, shadow %, covered."""
        if take not in self._stack:
            with rasterio.open(self.path / "truth" / "scenes" / f"{take}.tif") as src:
                self._stack[take] = src.read(window=self.window)
        return self._stack[take]

    def scenes_in(self, first: dt.date, last: dt.date) -> list[dict]:
        return [s for s in self.scenes if first <= s["date"] <= last]

    def clean(self, s: dict) -> np.ndarray:
        """Pixels the scene shows with no cloud, fog, shadow or cirrus."""
        a = self.scene(s["datatake"])
        ok = (a[3] == 1) & (a[1] < CLEAN_CLOUD_PCT) & (a[2] < CLEAN_SHADOW_PCT)
        return ok & (s["cirrus"] != "True")

    def unflagged(self, s: dict) -> np.ndarray:
        """Pixels the SCL leaves clear (cirrus scenes left out: the truth has no per-pixel
        cirrus, and the SCL masks cirrus pixels)."""
        a = self.scene(s["datatake"])
        ok = (a[3] == 1) & (a[1] < SCL_CLOUD_PCT) & (a[2] < SCL_SHADOW_PCT)
        return ok & (s["cirrus"] != "True")

    def month(self, month: dt.date) -> MonthTruth:
        if month in self._months:
            return self._months[month]
        n_clean = np.zeros(self.shape, int)
        first = np.zeros(self.shape, np.uint8)
        stable = np.ones(self.shape, bool)
        counts = np.zeros((N_TRUTH_CLASSES, *self.shape), int)
        counts_unflagged = np.zeros_like(counts)
        for s in self.scenes_in(month, month_end(month)):
            cls = self.scene(s["datatake"])[0]
            ok, seen = self.clean(s), self.unflagged(s)
            first = np.where(ok & (n_clean == 0), cls, first)
            stable &= ~ok | (n_clean == 0) | (cls == first)
            n_clean += ok
            for code in range(N_TRUTH_CLASSES):
                counts[code] += ok & (cls == code)
                counts_unflagged[code] += seen & (cls == code)
        stable_class = np.where(stable & (n_clean > 0), first, 0).astype(np.uint8)
        out = MonthTruth(n_clean, stable_class, counts, counts_unflagged)
        self._months[month] = out
        return out


def uniform(classes: np.ndarray, radius: int = 1) -> np.ndarray:
    """Pixels whose neighbourhood (radius in pixels) holds one class, and a class (not 0)."""
    size = 2 * radius + 1
    lo = ndimage.minimum_filter(classes, size=size, mode="nearest")
    hi = ndimage.maximum_filter(classes, size=size, mode="nearest")
    return (lo == hi) & (classes > 0)


def day_of_year(month: dt.date) -> int:
    return month.replace(day=15).timetuple().tm_yday


def summer(month: dt.date) -> bool:
    """Vegetation near its summer peak in mid-month, by the renderer's phenology. The class
    rules need it: dormant vegetation (winter stubble, dry grass) has an NDVI of about
    0.25 in the spectral library, under the vegetation rule's 0.4, and reads as bare
    (see test_unchanged_vegetation_keeps_its_class_in_every_clean_month)."""
    return spectra.greenness(day_of_year(month)) >= SUMMER_GREENNESS


# --------------------------------------------------------------------------------------
# What the spectra say


def spectrum(cls: str, month: dt.date, share: float | None = None) -> xr.Dataset:
    """The class's reflectance in the composite bands: its main spectrum mixed with its
    alternate end-member (at the base share unless given); vegetation at mid-month's
    phenology."""
    cover = LandCover(cls)
    table = spectra.class_table(spectra.greenness(day_of_year(month)))
    alt, base, _ = spectra.alternate_tables()
    share = float(base[cover.code]) if share is None else share
    refl = (1 - share) * table[cover.code] + share * alt[cover.code]
    return xr.Dataset(
        {b: xr.DataArray(np.float32(refl[spectra.BAND_INDEX[b]])) for b in COMPOSITE_BANDS}
    )


def spectrum_over(cls: str, period: Iterable[dt.date], share: float | None = None) -> xr.Dataset:
    """Band-wise median of the class's spectra over months (what a baseline's median sees)."""
    return xr.concat([spectrum(cls, m, share) for m in period], "m").median("m")


def variety(cls: str) -> list[float]:
    """Alternate shares one standard deviation either side of the class's base share."""
    _, base, spread = spectra.alternate_tables()
    code = LandCover(cls).code
    b, s = float(base[code]), float(spread[code])
    return [float(np.clip(b - s, 0, 1)), float(np.clip(b + s, 0, 1))]


def index_values(ds: xr.Dataset) -> dict[str, float]:
    out = {k: float(v) for k, v in indices.all_indices(ds).data_vars.items()}
    out[BRIGHTNESS] = float(indices.brightness(ds))
    return out


def expected_changes(cls_b: str, months_b: list[dt.date], cls_a: str, month_a: dt.date):
    """{index: (typical change, least change)} of the indices the spectra move by at least
    the step, in one direction over both classes' variety; `months_b` is the month before
    (or the baseline's months, whose median the baseline holds)."""
    typ = (
        index_values(spectrum_over(cls_a, [month_a])),
        index_values(spectrum_over(cls_b, months_b)),
    )
    corners = [
        (
            index_values(spectrum_over(cls_a, [month_a], sa)),
            index_values(spectrum_over(cls_b, months_b, sb)),
        )
        for sa, sb in itertools.product(variety(cls_a), variety(cls_b))
    ]
    out = {}
    for name in CHECKED:
        step = typ[0][name] - typ[1][name]
        ends = [a[name] - b[name] for a, b in corners]
        big = abs(step) >= (BRIGHTNESS_STEP if name == BRIGHTNESS else INDEX_STEP)
        if big and all(np.sign(e) == np.sign(step) for e in ends):
            out[name] = (step, min(abs(e) for e in ends))
    return out


def spectral_distance(a: xr.Dataset, b: xr.Dataset) -> float:
    return float(np.sqrt(sum((a[x] - b[x]) ** 2 for x in COMPOSITE_BANDS)))


# --------------------------------------------------------------------------------------
# What the store says


def product(store: Store, month: dt.date) -> xr.Dataset:
    ds = store.open().sel(time=np.datetime64(month, "ns")).load()
    ds[BRIGHTNESS] = indices.brightness(ds)
    return ds


def class_share(ds: xr.Dataset, mask: np.ndarray, cls: str) -> float:
    return float(np.mean(ds["landcover"].values[mask] == PRODUCT_CODE[PRODUCT_CLASS[cls]]))


def classes_seen(ds: xr.Dataset, mask: np.ndarray) -> str:
    counts = np.bincount(ds["landcover"].values[mask], minlength=len(CLASSES) + 1)
    names = {0: "no data", **CLASSES}
    return ", ".join(f"{names[c]} {n}" for c, n in enumerate(counts) if n)


def nanmedian(values: np.ndarray) -> float:
    """Median of the finite values; NaN (quietly) when there are none."""
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def median(ds: xr.Dataset, name: str, mask: np.ndarray) -> float:
    return nanmedian(ds[name].values[mask])


# --------------------------------------------------------------------------------------
# Checks of one land-cover event


@dataclass
class Plan:
    """The months an event's checks read, chosen from the truth alone."""

    event: Event
    before: dt.date
    """The latest clean month before the start (for vegetation: a summer one)."""
    not_yet: dt.date
    """The latest clean month before the start, any season: the new class is not there."""
    after: dt.date
    """The first clean month after the end."""
    steps: list[dt.date]
    """Months around a step-like change (empty for gradual events)."""

    @property
    def months(self) -> list[dt.date]:
        return sorted({self.before, self.not_yet, self.after, *self.steps})


def plan_event(truth: Truth, event: Event, available: list[dt.date]) -> Plan:
    """The months to compare. When the event starts (ends) too near the first (last)
    available month for a clean month before (after) it, the first clean month from its
    start (the last one up to its end) in which the truth still (already) shows the old
    (new) class on most of its pixels: a gradual event's pixels change each on its day."""
    mine = truth.majority(event)
    start, end = event.start.replace(day=1), event.end.replace(day=1)

    def ok(m: dt.date, cls: str, season: bool = True) -> bool:
        t = truth.month(m)
        if not t.is_clean(mine) or (season and cls == "vegetation" and not summer(m)):
            return False
        return float(np.mean(t.stable[mine] == LandCover(cls).code)) >= 0.5

    def latest_before(season: bool) -> dt.date:
        cls = event.class_before
        found = [m for m in available if m < start and ok(m, cls, season)]
        return (
            found[-1] if found else next(m for m in available if m >= start and ok(m, cls, season))
        )

    found = [m for m in available if m > end and ok(m, event.class_after)]
    after = (
        found[0] if found else [m for m in available if m <= end and ok(m, event.class_after)][-1]
    )
    steps = []
    if event.progress in STEP_PROGRESS:
        steps = [m for m in months(add_months(start, -2), add_months(end, 2)) if m in available]
    return Plan(event, latest_before(True), latest_before(False), after, steps)


@dataclass
class Findings:
    event: Event
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.lines.append(text)

    def check(self, ok: bool, text: str) -> None:
        self.lines.append(("ok    " if ok else "WRONG ") + text)
        if not ok:
            self.problems.append(text)

    def __str__(self) -> str:
        e = self.event
        head = f"{e.id} ({e.type}, {e.class_before} -> {e.class_after}, {e.start}..{e.end})"
        return "\n  ".join([head, *self.lines])


def pixels_of(truth: Truth, event: Event, plan: Plan, found: Findings):
    """(was, now, radius): the event's pixels the truth shows in its old class in the month
    before, in its new class in the month after, and both; pure ones when there are
    enough (2 pixels of margin, else 1: the radius), else all of them."""
    tb, ta = truth.month(plan.before), truth.month(plan.after)
    code_b, code_a = LandCover(event.class_before).code, LandCover(event.class_after).code
    mine = truth.majority(event)
    for radius in (2, 1, 0):
        pure = mine
        if radius:
            pure = mine & uniform(tb.stable, radius) & uniform(ta.stable, radius)
        was, now = pure & (tb.stable == code_b), pure & (ta.stable == code_a)
        if (was & now).sum() >= MIN_PIXELS:
            break
    found.note(
        f"pixels {int(mine.sum())}, pure within {radius} px {int(pure.sum())}; "
        f"before {plan.before:%Y-%m} ({int(was.sum())} px {event.class_before}), "
        f"after {plan.after:%Y-%m} ({int(now.sum())} px {event.class_after})"
    )
    # The months were chosen for this: a failure here is the test's, not the product's.
    assert (was & now).sum() >= MIN_PIXELS, str(found)
    return was, now, radius


def check_classes(truth: Truth, store: Store, plan: Plan, baseline: list[dt.date]) -> Findings:
    """The old class before, the new one after, not the new one before the start, and the
    area that took the new class against the truth's."""
    ev = plan.event
    found = Findings(ev)
    was, now, radius = pixels_of(truth, ev, plan, found)
    pb, pa = product(store, plan.before), product(store, plan.after)
    for label, ds, mask, cls in (
        ("before", pb, was, ev.class_before),
        ("after", pa, now, ev.class_after),
    ):
        share = class_share(ds, mask, cls)
        found.check(
            share >= AGREEMENT,
            f"{label}: {share:.0%} of {int(mask.sum())} px are {PRODUCT_CLASS[cls]} "
            f"(need {AGREEMENT:.0%}); product: {classes_seen(ds, mask)}",
        )
    if PRODUCT_CLASS[ev.class_before] != PRODUCT_CLASS[ev.class_after]:
        t = truth.month(plan.not_yet)
        early = truth.majority(ev) & (t.stable == LandCover(ev.class_before).code)
        if radius:
            early &= uniform(t.stable, radius)
        ds = product(store, plan.not_yet)
        share = class_share(ds, early, ev.class_after)
        found.check(
            share <= 1 - AGREEMENT,
            f"not yet {PRODUCT_CLASS[ev.class_after]} in {plan.not_yet:%Y-%m}: {share:.0%} of "
            f"{int(early.sum())} px already are; product: {classes_seen(ds, early)}",
        )

    # Area: pixels that take the new class between the two months (where no later event
    # drew over the event), with a margin for mixed edge pixels either way.
    own, mine = truth.own(ev), truth.majority(ev)
    if (
        PRODUCT_CLASS[ev.class_before] != PRODUCT_CLASS[ev.class_after]
        and own.sum() >= 0.9 * mine.sum()
    ):
        t = truth.month(plan.not_yet)
        zone = ndimage.binary_dilation(mine, iterations=2)
        zone &= (t.stable == LandCover(ev.class_before).code) | mine
        code = PRODUCT_CODE[PRODUCT_CLASS[ev.class_after]]
        ds = product(store, plan.not_yet)
        new = zone & (pa["landcover"].values == code) & (ds["landcover"].values != code)
        area = float(new.sum()) * truth.grid.resolution**2
        found.check(
            abs(area / ev.area_m2 - 1) <= 1 - AGREEMENT,
            f"area turned {PRODUCT_CLASS[ev.class_after]} {plan.not_yet:%Y-%m} -> "
            f"{plan.after:%Y-%m}: {area:,.0f} m2 (truth {ev.area_m2:,.0f} m2)",
        )
    return found


def check_indices(truth: Truth, store: Store, plan: Plan, baseline: list[dt.date]) -> Findings:
    """Index changes between the month before and the month after, and against the
    baseline, in the spectra's direction and size; cva_base grows."""
    ev = plan.event
    found = Findings(ev)
    was, now, _ = pixels_of(truth, ev, plan, found)
    both = was & now
    pb, pa = product(store, plan.before), product(store, plan.after)

    # Index changes between the two months, against the spectra's.
    for name, (step, least) in expected_changes(
        ev.class_before, [plan.before], ev.class_after, plan.after
    ).items():
        got = nanmedian(pa[name].values[both] - pb[name].values[both])
        found.check(
            np.sign(got) == np.sign(step) and abs(got) >= SHARE_OF_EXPECTED * least,
            f"{name} {plan.before:%Y-%m} -> {plan.after:%Y-%m}: {got:+.3f} (spectra "
            f"{step:+.3f}, at least {least:.3f} in size; {median(pb, name, both):.3f} -> "
            f"{median(pa, name, both):.3f})",
        )

    # Against the baseline: on pixels the truth shows in the old class all through it.
    steady = np.ones_like(both)
    for m in baseline:
        t = truth.month(m)
        steady &= (t.stable == LandCover(ev.class_before).code) | (t.n_clean == 0)
    based = both & steady
    if based.sum() >= MIN_PIXELS:
        for name, (step, least) in expected_changes(
            ev.class_before, baseline, ev.class_after, plan.after
        ).items():
            if name == BRIGHTNESS:
                continue  # not stored against the baseline
            got = median(pa, f"d{name}_base", based)
            found.check(
                np.sign(got) == np.sign(step) and abs(got) >= SHARE_OF_EXPECTED * least,
                f"d{name}_base {plan.after:%Y-%m}: {got:+.3f} (spectra {step:+.3f}, at least "
                f"{least:.3f} in size; {int(based.sum())} px)",
            )
        dist = spectral_distance(
            spectrum_over(ev.class_before, baseline), spectrum(ev.class_after, plan.after)
        )
        cb, ca = median(pb, "cva_base", based), median(pa, "cva_base", based)
        found.check(
            ca >= SHARE_OF_EXPECTED * dist and ca > cb,
            f"cva_base {cb:.3f} ({plan.before:%Y-%m}) -> {ca:.3f} ({plan.after:%Y-%m}); "
            f"spectra {dist:.3f}",
        )
    else:
        found.note("no pixel was in the old class all through the baseline: no check against it")
    return found


def check_steps(truth: Truth, store: Store, plan: Plan, baseline: list[dt.date]) -> Findings:
    """Step-like changes, one group of pixels per day of change: cva_prev must peak in the
    month of each change the truth shows, or the next one (the change may come after the
    month's last clear scene), above the other months around it.

    The changes are the event's start when the truth shows the pixels in a new class from
    then on (a ``via`` class: cleared ground), and the group's day of change. The months
    it must stand above are those that compare two months with a clean scene each: with
    only hazy scenes (the SCL lets through opacity under 30 %), cva_prev jumps by itself."""
    ev = plan.event
    found = Findings(ev)
    own = truth.own(ev)
    products = {m: product(store, m) for m in plan.steps}
    for day in np.unique(truth.change_day()[own]):
        group = own & (truth.change_day() == day)
        if group.sum() >= 4 * MIN_PIXELS:  # big enough to leave out its edges
            group &= ndimage.binary_erosion(group)
        if group.sum() < MIN_PIXELS:
            continue
        when = EPOCH + dt.timedelta(days=int(day))
        changes = [when]
        # The first scene from the start that covers the group (cloud or not: the truth
        # class is the ground's) shows whether the start itself changed the ground.
        first = next(
            (
                truth.scene(s["datatake"])[0][group]
                for s in truth.scenes
                if s["date"] >= ev.start and truth.scene(s["datatake"])[3][group].all()
            ),
            None,
        )
        if first is not None and ev.start < when:
            if np.mean(first != LandCover(ev.class_before).code) > 0.5:
                changes.insert(0, ev.start)  # cleared (via) on the start date
        cva = {m: median(products[m], "cva_prev", group) for m in plan.steps}
        clear = {m: median(products[m], "clear_count", group) for m in plan.steps}
        clean = {m: float(np.median(truth.month(m).n_clean[group])) for m in plan.steps}
        reliable = {
            m
            for m in plan.steps
            if np.isfinite(cva[m]) and clean[m] >= 1 and clean.get(add_months(m, -1), 0) >= 1
        }
        listing = ", ".join(
            f"{m:%Y-%m} {cva[m]:.3f} ({clear[m]:.0f} clear, {clean[m]:.0f} clean)"
            for m in plan.steps
        )
        allowed = {d: {d.replace(day=1), add_months(d, 1)} for d in changes}
        for d in changes:
            near = [m for m in plan.steps if abs((m.year - d.year) * 12 + m.month - d.month) <= 2]
            # The change may be seen through haze; other months count against it only
            # when they compare clean months (haze alone makes cva_prev jump).
            mine = [cva[m] for m in near if m in allowed[d] and np.isfinite(cva[m])]
            others = [
                cva[m] for m in near if m in reliable and not any(m in a for a in allowed.values())
            ]
            head = f"cva_prev of the {int(group.sum())} px changed {d}"
            if not mine:
                found.check(
                    False,
                    f"{head}: no cva_prev in "
                    f"{' or '.join(f'{m:%Y-%m}' for m in sorted(allowed[d]))} (cva_prev is NaN "
                    f"after a month with no clear observation): {listing}",
                )
                continue
            found.check(
                all(max(mine) > v for v in others),
                f"{head}: peaks at {max(mine):.3f} in "
                f"{' or '.join(f'{m:%Y-%m}' for m in sorted(allowed[d]))}, above "
                f"{max(others, default=float('nan')):.3f} around: {listing}",
            )
    return found


CHECKS = {"classes": check_classes, "indices": check_indices, "cva_prev": check_steps}
"""The aspects checked of each event, one test each, so that a product defect in one
does not hide the others."""


# --------------------------------------------------------------------------------------
# The mini archive: the whole year, once


@pytest.fixture(scope="module")
def mini_site(mini_archive) -> Site:
    return Site.from_scenario(mini_archive.scenario, tile_px=TILE_PX, baseline_months=3)


@pytest.fixture(scope="module")
def mini_truth(mini_archive, mini_site) -> Truth:
    return Truth.read(mini_archive.path, mini_site.grid)


@pytest.fixture(scope="module")
def mini_store(mini_site, loaded_stac_api, tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("truth") / "mini.zarr")
    spec = CatalogSpec("local", loaded_stac_api.url)
    report = process(mini_site, MINI_FIRST, MINI_LAST, store=store, spec=spec)
    assert not report.failed, report.failed
    return store


def mini_months() -> list[dt.date]:
    return months(MINI_FIRST, MINI_LAST)


def baseline_months(site: Site) -> list[dt.date]:
    return months(*site.baseline)


@pytest.fixture(scope="module")
def nampo_stac_api(stac_home):
    """A STAC API of its own holding only the Nampo archive: the mini archive lies inside
    the Nampo grid, so sharing the session's API would change other tests' searches."""
    state_dir = stac_home / "stac-nampo"
    try:
        yield pgstac.start(state_dir)
    finally:
        pgstac.stop(state_dir)
