"""Change metrics tell the truth: for each event of a scenario's ground truth, the class and
index changes of its pixels appear in the stored products in the months the truth says
(the method: tests/truth_harness.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window
from scipy import ndimage

from nampo.io.store import Store
from nampo.run.execute import process
from nampo.run.plan import CatalogSpec
from nampo.run.units import add_months, month_end, months
from nampo.scenario import spectra
from nampo.scenario.model import LandCover
from nampo.services import pgstac
from nampo.sites import Site
from tests.truth_harness import (
    AGREEMENT,
    CHECKS,
    LAND_EVENTS,
    MIN_CLEAN,
    Event,
    Plan,
    Truth,
    baseline_months,
    class_share,
    classes_seen,
    day_of_year,
    median,
    mini_months,
    plan_event,
    product,
    summer,
    uniform,
)

pytestmark = pytest.mark.services


def check_all(aspect: str, plans: list[tuple[Truth, Store, Plan]], baseline) -> None:
    if aspect == "cva_prev":
        plans = [p for p in plans if p[2].steps]
        if not plans:
            pytest.skip("gradual events only: no step change for cva_prev to peak at")
    found = [CHECKS[aspect](truth, store, plan, baseline) for truth, store, plan in plans]
    print("\n".join(map(str, found)))
    assert not any(f.problems for f in found), "\n".join(map(str, found))


def xfail(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


MINI_KNOWN: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize(
    "aspect, event_type",
    [
        pytest.param(a, t, marks=[xfail(MINI_KNOWN[a, t])] if (a, t) in MINI_KNOWN else [])
        for a in CHECKS
        for t in LAND_EVENTS
    ],
)
def test_land_cover_event(aspect, event_type, mini_truth, mini_store, mini_site):
    """One aspect of each event of the type, in the months the truth says."""
    events = mini_truth.of_type(event_type)
    assert events, f"the mini scenario has no {event_type} event"
    plans = [(mini_truth, mini_store, plan_event(mini_truth, ev, mini_months())) for ev in events]
    check_all(aspect, plans, baseline_months(mini_site))


def water_interior(truth: Truth) -> np.ndarray:
    """Pixels that are water, with all their neighbours, at the period's start and end."""
    code = LandCover.water.code
    water = (truth.raster[2] == code) & (truth.raster[3] == code)
    return uniform(water.astype(np.uint8)) & water


def test_river_ice_shows_where_and_when_the_truth_froze_it(mini_truth, mini_store):
    """In each month, river pixels frozen in at least two thirds of their clean scenes are
    ice in the class map, and those never frozen are water (the ice grows from the shore
    in a fixed order, so a pixel is frozen whenever the ice fraction passes its rank)."""
    [ice] = mini_truth.of_type("seasonal_ice")
    river = mini_truth.footprint(ice.geometry) & water_interior(mini_truth)
    ice_code, water_code = LandCover.ice.code, LandCover.water.code
    found, frozen_months = [], []
    for m in mini_months():
        t, ds = mini_truth.month(m), product(mini_store, m)
        seen = river & (t.n_clean >= MIN_CLEAN)
        seen &= t.counts[ice_code] + t.counts[water_code] == t.n_clean  # no ship
        frozen = seen & (3 * t.counts[ice_code] >= 2 * t.n_clean)
        open_ = seen & (t.counts[ice_code] == 0)
        fractions = [
            float(s["ice_fraction"])
            for s in mini_truth.scenes_in(m, month_end(m))
            if np.mean(mini_truth.clean(s)[river]) >= 0.5
        ]
        line = f"{m:%Y-%m}: ice_fraction of clean scenes {np.round(fractions, 2).tolist()}"
        for label, mask, cls in (("frozen", frozen, "ice"), ("open", open_, "water")):
            if mask.sum() >= 20:
                share = class_share(ds, mask, cls)
                line += f"; {label} {int(mask.sum())} px: {share:.0%} {cls}"
                if share < AGREEMENT:
                    found.append(f"{line} ({classes_seen(ds, mask)})")
        if fractions and np.median(fractions) >= 0.5 and frozen.sum() >= 20:
            frozen_months.append(m)
        print(line)
    # Not vacuous: some month's clean scenes have most of the river frozen (scenes.csv).
    assert frozen_months, "no month in which the truth froze half of the river"
    assert not found, "\n".join(found)


def test_ships_at_berths_leave_no_trace_in_monthly_classes(mini_truth, mini_store):
    """Ships moor at the berths on half of the scenes, drawn afresh each scene: a monthly
    median takes them out, so berth pixels with a ship in fewer than half of the
    observations the SCL leaves clear stay water in the class map."""
    [ships] = mini_truth.of_type("vessel_visits")
    berths = mini_truth.footprint(ships.geometry) & water_interior(mini_truth)
    ice_code, ship_code = LandCover.ice.code, LandCover.ship.code
    found, with_ships = [], []
    for m in mini_months():
        t, ds = mini_truth.month(m), product(mini_store, m)
        total = t.counts_unflagged.sum(0)
        calm = berths & (t.n_clean >= MIN_CLEAN) & (t.counts_unflagged[ice_code] == 0)
        calm &= 2 * t.counts_unflagged[ship_code] < total
        if calm.sum() < 20:
            continue
        visited = calm & (t.counts_unflagged[ship_code] > 0)
        share = class_share(ds, calm, "water")
        line = (
            f"{m:%Y-%m}: {share:.0%} of {int(calm.sum())} berth px water; a ship was on "
            f"{int(visited.sum())} of them in a clear scene"
        )
        print(line)
        if visited.sum() >= 20:
            with_ships.append(m)
        if share < AGREEMENT:
            found.append(f"{line} ({classes_seen(ds, calm)})")
    assert len(with_ships) >= 3, f"ships were in clear scenes in only {with_ships}"
    assert not found, "\n".join(found)


def test_unchanged_vegetation_keeps_its_class_in_every_clean_month(mini_truth, mini_store):
    """Pure vegetation pixels no event touches are vegetation in every clean month, dormant
    (November-April, NDVI 0.2-0.3) or not: the class map reports no change over fields."""
    raster = mini_truth.raster
    code = LandCover.vegetation.code
    veg = (raster[2] == code) & (raster[3] == code)
    veg &= uniform(veg.astype(np.uint8)) & (raster[0] == 0)
    found = []
    for m in mini_months():
        if not mini_truth.month(m).is_clean(veg):
            continue
        ds = product(mini_store, m)
        share = class_share(ds, veg, "vegetation")
        line = (
            f"{m:%Y-%m} (greenness {spectra.greenness(day_of_year(m)):.2f}): {share:.0%} of "
            f"{int(veg.sum())} px vegetation, NDVI {median(ds, 'ndvi', veg):.2f}"
        )
        print(line)
        if share < AGREEMENT:
            found.append(f"{line} ({classes_seen(ds, veg)})")
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------------------
# Nampo: a window of the grid around each event, and only the months its checks read

LATTICE_PX = 6
"""Windows start on the 60 m lattice of the site grid, so every band's pixels are those
of the full grid."""
WINDOW_MARGIN_PX = 12
NAMPO_EVENTS = (
    "drainage",
    "construction",
    "reclamation",
    "storage",
    "pier",
    "coal_cover",
    "new_tank",
)


def event_window(truth: Truth, mask: np.ndarray) -> Window:
    """The pixels' bounding box with a margin, on the lattice, inside the grid."""
    rows, cols = np.nonzero(mask)
    g = truth.grid

    def span(lo: int, hi: int, size: int) -> tuple[int, int]:
        lo = max(0, (lo - WINDOW_MARGIN_PX) // LATTICE_PX * LATTICE_PX)
        hi = min(size, -(-(hi + 1 + WINDOW_MARGIN_PX) // LATTICE_PX) * LATTICE_PX)
        return lo, hi

    r0, r1 = span(rows.min(), rows.max(), g.height)
    c0, c1 = span(cols.min(), cols.max(), g.width)
    return Window(c0, r0, c1 - c0, r1 - r0)


def runs(ms: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Months grouped into runs of consecutive ones: (first, last)."""
    out: list[list[dt.date]] = []
    for m in sorted(set(ms)):
        if out and add_months(out[-1][1], 1) == m:
            out[-1][1] = m
        else:
            out.append([m, m])
    return [(a, b) for a, b in out]


def process_window(site: Site, truth: Truth, name: str, ms, spec, root: Path) -> Store:
    """The window as a site of one tile, its baseline and the given months processed."""
    sub = dataclasses.replace(
        site,
        name=f"{site.name}-{name}",
        grid=truth.subgrid,
        tile_px=max(truth.shape),
        facilities=(),
    )
    store = Store(root / f"{name}.zarr")
    for first, last in runs(ms):
        report = process(sub, first, last, store=store, spec=spec)
        assert not report.failed, report.failed
    return store


def sub_pixel_plan(truth: Truth, event: Event, available: list[dt.date]):
    """For an event below the pixel size: the pixels its outline touches and their
    neighbours, and the latest clean month before its start and the first after its end
    (both in summer when vegetation is among them: dormant vegetation reads as bare)."""
    near = ndimage.binary_dilation(truth.footprint(event.geometry, all_touched=True))
    green = bool(np.any(truth.raster[2][near] == LandCover.vegetation.code))

    def ok(m: dt.date) -> bool:
        return truth.month(m).is_clean(near) and (summer(m) or not green)

    start, end = event.start.replace(day=1), event.end.replace(day=1)
    before = [m for m in available if m < start and ok(m)][-1]
    after = next(m for m in available if m > end and ok(m))
    return near, before, after


@pytest.fixture(scope="module")
def nampo(nampo_archive, nampo_stac_api, tmp_path_factory) -> dict:
    """Every land-cover event of the Nampo truth processed in a window of its own: the
    site's baseline (2015-07..2016-06) and only the months the event's checks read."""
    stac_api = nampo_stac_api
    pgstac.load(stac_api, nampo_archive.path)
    site = Site.from_scenario(nampo_archive.scenario, baseline_months=12)
    truth = Truth.read(nampo_archive.path, site.grid)
    spec = CatalogSpec("local", stac_api.url)
    period = nampo_archive.scenario.period
    available = months(period.start, period.end)
    root = tmp_path_factory.mktemp("nampo-truth")
    out: dict = {"baseline": baseline_months(site), "events": {}, "small": {}}
    for ev in truth.events.values():
        if ev.type in NAMPO_EVENTS:
            cut = truth.cut(event_window(truth, truth.majority(ev)))
            plan = plan_event(cut, ev, available)
            out["events"][ev.id] = (
                cut,
                process_window(site, cut, ev.id, plan.months, spec, root),
                plan,
            )
        elif ev.type == "equipment":
            cut = truth.cut(event_window(truth, truth.footprint(ev.geometry, all_touched=True)))
            near, before, after = sub_pixel_plan(cut, ev, available)
            store = process_window(site, cut, ev.id, [before, after], spec, root)
            out["small"][ev.id] = (cut, store, near, before, after)
    return out


NAMPO_KNOWN: dict[tuple[str, str], str] = {}


@pytest.mark.slow
@pytest.mark.parametrize(
    "aspect, event_type",
    [
        pytest.param(a, t, marks=[xfail(NAMPO_KNOWN[a, t])] if (a, t) in NAMPO_KNOWN else [])
        for a in CHECKS
        for t in NAMPO_EVENTS
    ],
)
def test_nampo_event(aspect, event_type, nampo):
    plans = [v for v in nampo["events"].values() if v[2].event.type == event_type]
    assert plans, f"the Nampo scenario has no {event_type} event"
    check_all(aspect, plans, nampo["baseline"])


@pytest.mark.slow
def test_nampo_objects_below_the_pixel_size_claim_no_change(nampo):
    """The fourth crane (opaque parts 10 m x 8 m) has no pixel in events.tif: the class
    map must not change around it between a clean month before it and one after."""
    assert nampo["small"], "no event below the pixel size in the Nampo truth"
    for key, (cut, store, near, before, after) in nampo["small"].items():
        assert not cut.own(cut.events[key]).any()  # the truth claims no pixel
        pb, pa = product(store, before), product(store, after)
        changed = int(np.sum(pb["landcover"].values[near] != pa["landcover"].values[near]))
        print(
            f"{key}: {int(near.sum())} px, {before:%Y-%m} [{classes_seen(pb, near)}] -> "
            f"{after:%Y-%m} [{classes_seen(pa, near)}]; cva_base {median(pa, 'cva_base', near):.3f}"
        )
        assert changed == 0, f"{key}: {changed} of {int(near.sum())} px changed class"
