"""Process a site over a period: search the catalog once, cut the work into units, run
them in parallel on a Dask cluster, write each unit's chunks and then its record.

Baseline units (one per tile) run first, since every month is compared with them; month
units follow, in any order. Completed units are skipped unless forced, so a re-run does
only what is missing and an interrupted run resumes where it stopped.

Each unit task is a plain function of plain values (the site, the unit, its scenes, the
store's location), so it runs the same in-process, on a local multi-process cluster, or
on a remote cluster given by address.
"""

from __future__ import annotations

import datetime as dt
import time
import typing
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import xarray as xr

from nampo.analysis import activity
from nampo.errors import NampoError
from nampo.io import catalog
from nampo.io.cube import Loader, read_cube, skipped_scenes
from nampo.io.scenes import NormalisedItem
from nampo.io.store import Store, StoreLocation
from nampo.products import brightmask, composite, indices
from nampo.products.reflectance import merge_same_day, to_reflectance
from nampo.products.variables import BASELINE, COMPOSITE_BANDS, LAST_CLEAR_MONTHS, MONTHLY
from nampo.run.units import Unit, add_months, month_end, months
from nampo.sites import Site, Tile

CALENDAR = months(dt.date(2015, 6, 1), dt.date(2035, 12, 1))
"""The fixed monthly calendar of every store: Sentinel-2's first month to 2035."""

CODE_VERSION = "nampo-0.1"

LOADERS = typing.get_args(Loader)


class PipelineError(NampoError):
    """Parameters or inputs that make a run impossible (raised before any unit runs)."""


@dataclass(frozen=True)
class CatalogSpec:
    profile: str = "local"
    url: str | None = None
    max_cloud: float | None = None
    timeout: float = 30.0
    """Seconds each attempt of a catalog request may take (retries follow)."""
    collection: str | None = None
    """Collection to search instead of the profile's (e.g. ``sentinel-2-l1c``)."""


@dataclass(frozen=True)
class UnitResult:
    unit_id: str
    status: str  # "done" | "skipped" | "failed"
    scenes: int = 0
    skipped_scenes: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


@dataclass
class RunReport:
    run_id: str
    results: list[UnitResult]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[UnitResult]:
        return [r for r in self.results if r.status == "failed"]


def baseline_id(tile_id: str) -> str:
    return f"{tile_id}/baseline"


# --------------------------------------------------------------------------------------
# Work of one unit (runs on a worker)


def _in_window(scene: NormalisedItem, first: dt.date, last: dt.date) -> bool:
    return first <= scene.datetime.date() <= last


def _read_scenes(site: Site, tile: Tile, scenes: Sequence[NormalisedItem], loader: str):
    """The scenes over one tile, read here: per-scene reflectance bands (time, y, x), which
    observations are clear, which were observed at all, and the scenes that could not be
    read."""
    grid = site.tile_grid(tile)
    # This runs inside a task already: read the tile's cube here, single-threaded, into
    # memory (each asset opened once), and go on in numpy: a Dask graph per step of a
    # one-tile cube cost more than the steps themselves.
    raw = read_cube(scenes, grid, [*COMPOSITE_BANDS, *mask_bands(scenes)], loader=loader)
    skipped = skipped_scenes(raw)
    # Cloud-flagged values are kept: brightmask.clear takes back bright surfaces' flags.
    refl = to_reflectance(raw, scenes, mask_classes=brightmask.MASKED_EXCEPT_CLOUD)
    del raw  # a year of a tile's DNs is ~70 MB: not held while the days are merged
    refl = merge_same_day(refl)
    bands = xr.Dataset({b: refl["reflectance"].sel(band=b, drop=True) for b in COMPOSITE_BANDS})
    finite = np.isfinite(refl["reflectance"]).all("band")
    valid = brightmask.clear(refl["scl"], bands["blue"]) & finite
    observed = refl["scl"] > 0
    return bands, valid, observed, skipped


def _compose(
    bands: xr.Dataset, valid, observed, peak: bool = False, bands_only: bool = False
) -> xr.Dataset:
    comp = composite.median_composite(bands, valid, observed)
    if not bands_only:
        comp = composite.with_indices(comp)
    if peak:
        comp["ndvi_peak"] = indices.ndvi_peak(bands, valid)
    return comp.drop_vars([c for c in comp.coords if c not in ("y", "x")])


def _composite(
    site: Site,
    tile: Tile,
    scenes: Sequence[NormalisedItem],
    loader: str,
    peak: bool = False,
    bands_only: bool = False,
):
    """Median composite (with indices and class) of the scenes over one tile, computed
    here, and the scenes that could not be read. `peak`: add ``ndvi_peak`` (baseline);
    `bands_only`: the bands and counts, no indices (a month folded into ``last_*``)."""
    bands, valid, observed, skipped = _read_scenes(site, tile, scenes, loader)
    return _compose(bands, valid, observed, peak, bands_only), skipped


def mask_bands(scenes: Sequence[NormalisedItem]) -> list[str]:
    """The mask band to read with the scenes: the one they all have (``scl`` for
    Sentinel-2 L2A, ``qa_pixel`` for Landsat), else none (Sentinel-2 L1C, or a mix of
    collections: then no scene is masked; see ``cube.to_reflectance``)."""
    found = {s.mask_band for s in scenes}
    return [found.pop()] if len(found) == 1 and None not in found else []


def run_baseline(
    site: Site,
    tile_id: str,
    scenes: Sequence[NormalisedItem],
    location: StoreLocation,
    loader: str,
    run_id: str,
) -> UnitResult:
    t0 = time.perf_counter()
    tile = site.tile(tile_id)
    first, last = site.baseline
    mine = [s for s in scenes if _in_window(s, first, month_end(last))]
    comp, skipped = _composite(site, tile, mine, loader, peak=True)
    comp["landcover"] = indices.landcover(comp, comp["ndvi_peak"])  # seasonal vegetation
    ds = xr.Dataset()
    for v in BASELINE:
        name = v.name.removeprefix("base_")
        src = comp["clear_count"] if name == "clear_count" else comp[name]
        ds[v.name] = src.astype(v.dtype)
    record = {
        "run": run_id,
        "scenes": sorted(s.id for s in mine if s.id not in skipped),
        "skipped_scenes": skipped,
        "code": CODE_VERSION,
    }
    Store(location).write_baseline(tile, ds, record)
    return UnitResult(baseline_id(tile_id), "done", len(mine), skipped, time.perf_counter() - t0)


def _stored_last(store: Store, unit: Unit, like: xr.Dataset) -> xr.Dataset | None:
    """A done unit's carried composite (:data:`LAST`) read back from the store (only
    those 7 of its variables: reading all 33 was a third of a month unit's store I/O)."""
    try:
        store.record(unit.id)
    except NampoError:
        return None
    ds = store.read_unit(unit, LAST)
    ds = ds.drop_vars([c for c in ds.coords if c not in ("y", "x")])
    return ds.assign_coords(y=like["y"], x=like["x"])


LAST = (*(f"last_{b}" for b in COMPOSITE_BANDS), "last_age")
"""The carried composite of a month: its latest clear observation per pixel."""


def _last_clear(
    site: Site,
    tile: Tile,
    store: Store,
    unit: Unit,
    scenes: Sequence[NormalisedItem],
    loader: str,
    like: xr.Dataset,
) -> xr.Dataset:
    """The carried composite of the month before `unit` (what cva_prev compares with): read
    back from the store when that unit is done, else folded from the composites of the
    LAST_CLEAR_MONTHS months before, newest first until every pixel has a clear month
    (the older ones cannot change the result then). Either way the same values."""
    stored = _stored_last(store, Unit(add_months(unit.month, -1), unit.tile_id), like)
    if stored is not None:
        return stored
    comps: list[xr.Dataset] = []
    for back in range(1, LAST_CLEAR_MONTHS + 1):
        month = add_months(unit.month, -back)
        mine = [s for s in scenes if _in_window(s, month, month_end(month))]
        if mine:
            comp, _ = _composite(site, tile, mine, loader, bands_only=True)
            comp = comp[list(COMPOSITE_BANDS)]
        else:
            comp = xr.Dataset({b: xr.full_like(like[b], np.nan) for b in COMPOSITE_BANDS})
        comps.append(comp.assign_coords(y=like["y"], x=like["x"]))
        if all(bool(c.notnull().all()) for c in comps[-1].data_vars.values()):
            break
    last = None
    for comp in reversed(comps):  # oldest first
        last = composite.carry_forward(comp, last)
    return last


def run_month(
    site: Site,
    unit: Unit,
    scenes: Sequence[NormalisedItem],
    location: StoreLocation,
    loader: str,
    run_id: str,
    after=None,
) -> UnitResult:
    """One (tile, month) unit. `after` is the previous month's task of the same tile when
    it runs in the same run: the scheduler then runs this one after it, and the previous
    carried composite (latest clear month per pixel) is read back from the store instead of
    being computed again (half the reads or less). Either way the values are the same:
    composites are deterministic."""
    t0 = time.perf_counter()
    tile = site.tile(unit.tile_id)
    store = Store(location)
    now = [s for s in scenes if _in_window(s, unit.month, month_end(unit.month))]
    bands, valid, observed, skipped = _read_scenes(site, tile, now, loader)
    current = _compose(bands, valid, observed)
    base = store.read_baseline(tile)
    baseline = xr.Dataset({k.removeprefix("base_"): base[k] for k in base.data_vars})
    baseline = baseline.drop_vars([c for c in baseline.coords if c not in ("y", "x")])
    baseline = baseline.assign_coords(y=current["y"], x=current["x"])
    current["landcover"] = indices.landcover(current, baseline["ndvi_peak"])
    # vessels and ice are seen in single scenes: counted here, from the scenes just read
    # (and released before the months before are read)
    seen = activity.unit_activity(
        site, tile, unit.month, bands, valid, current["landcover"], base["base_landcover"]
    )
    del bands, valid, observed
    last = _last_clear(site, tile, store, unit, scenes, loader, current)
    previous = composite.carried_composite(last)
    metrics = composite.change_metrics(current, previous, baseline)
    ds = xr.Dataset()
    merged = current.merge(metrics).merge(composite.carry_forward(current, last))
    for v in MONTHLY:
        ds[v.name] = merged[v.name].astype(v.dtype)
    record = {
        "run": run_id,
        "scenes": sorted(s.id for s in now if s.id not in skipped),
        "skipped_scenes": skipped,
        "code": CODE_VERSION,
    }
    store.write_unit(unit, ds, record, activity=seen)
    return UnitResult(unit.id, "done", len(now), skipped, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------
# A run (runs on the client)


def validate_period(first: dt.date, last: dt.date) -> None:
    if last < first:
        raise PipelineError(f"period ends ({last:%Y-%m}) before it starts ({first:%Y-%m})")
    if first < CALENDAR[0] or last > CALENDAR[-1]:
        raise PipelineError(
            f"period {first:%Y-%m}..{last:%Y-%m} is outside the store calendar "
            f"{CALENDAR[0]:%Y-%m}..{CALENDAR[-1]:%Y-%m}"
        )


def find_scenes(
    site: Site, first: dt.date, last: dt.date, spec: CatalogSpec
) -> list[NormalisedItem]:
    """Every scene the units of the period need: the period, the LAST_CLEAR_MONTHS months
    before it (the latest clear month cva_prev compares with), and the site's baseline."""
    start = min(add_months(first, -LAST_CLEAR_MONTHS), site.baseline[0])
    end = max(month_end(last), month_end(site.baseline[1]))
    scenes = catalog.search_scenes(
        spec.profile, spec.url, site.footprint_lonlat, start, end, spec.max_cloud,
        timeout=spec.timeout, collection=spec.collection,
    )  # fmt: skip
    return scenes


@dataclass
class RunPlan:
    """What a run will do, decided on the client before any unit runs: the scenes it
    found, the units it will compute, and those it skips because they are complete."""

    site: Site
    first: dt.date
    last: dt.date
    run_id: str
    location: StoreLocation
    spec: CatalogSpec
    loader: str
    force: bool
    scenes: list[NormalisedItem]
    baselines: list[str]
    """Ids of the tiles whose baseline unit runs (before any month of that tile), largest
    tile first."""
    months: list[Unit]
    """Month units that run, in month order, then largest tile first."""
    skipped: list[UnitResult]
    """Complete units left alone."""

    @property
    def total(self) -> int:
        return len(self.skipped) + len(self.baselines) + len(self.months)

    def previous_in_run(self, unit: Unit) -> Unit | None:
        """The unit of the month before on the same tile, when this run computes it too."""
        prev = Unit(add_months(unit.month, -1), unit.tile_id)
        return prev if prev in self._month_set else None

    @cached_property
    def _month_set(self) -> frozenset[Unit]:
        return frozenset(self.months)


def _ids(site: Site) -> list[str]:
    return [t.id for t in site.tiles]


def _largest_first(site: Site) -> list[Tile]:
    """The site's tiles, most pixels first (then in grid order). A cluster starts ready units
    in the order they were submitted: with the largest first, the small edge tiles (a third
    of a unit's cost at Nampo) fill the gaps at the end of a phase instead of leaving a
    worker idle while another finishes a large one."""
    return sorted(site.tiles, key=lambda t: -t.shape[0] * t.shape[1])


def new_run_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def plan_run(
    site: Site,
    first: dt.date,
    last: dt.date,
    *,
    store: Store,
    spec: CatalogSpec = CatalogSpec(),  # noqa: B008 (frozen)
    loader: str = "stackstac",
    force: bool = False,
    recompute: Collection[str] = (),
    scenes: list[NormalisedItem] | None = None,
    run_id: str | None = None,
) -> RunPlan:
    """Check a run's inputs and decide its units; raises before anything is written when
    the period, the catalog or the store make the run impossible, then creates the store
    (idempotent) so that the units can write their chunks.

    `recompute` names complete units (``x00y00/2017-05``) to compute again although the
    run is not forced; `scenes` skips the catalog search (the caller searched already).
    """
    first, last = first.replace(day=1), last.replace(day=1)
    validate_period(first, last)
    if loader not in LOADERS:
        raise PipelineError(f"unknown loader {loader!r}; choose one of {', '.join(LOADERS)}")
    if site.baseline is None:
        raise PipelineError(f"site {site.name!r} has no baseline period")
    if scenes is None:
        scenes = find_scenes(site, first, last, spec)
    if not scenes:
        raise PipelineError(
            f"the catalog has no scenes of site {site.name!r} for {first:%Y-%m}..{last:%Y-%m} "
            f"(nor its baseline): is the site inside the catalog's coverage?"
        )
    store.check_writable()  # before any unit runs, and after the catalog had its say
    store.create(site, CALENDAR)
    done = set() if force else store.done() - set(recompute)
    tiles = _largest_first(site)
    baselines = [t.id for t in tiles if baseline_id(t.id) not in done]
    skipped = [UnitResult(baseline_id(t), "skipped") for t in _ids(site) if t not in baselines]
    month_units = [Unit(m, t.id) for m in months(first, last) for t in tiles]
    todo = [u for u in month_units if u.id not in done]
    skipped += [UnitResult(u.id, "skipped") for u in month_units if u.id in done]
    return RunPlan(
        site, first, last, run_id or new_run_id(), store.location, spec, loader, force,
        scenes, baselines, todo, skipped,
    )  # fmt: skip


def finish_run(plan: RunPlan, results: Sequence[UnitResult], **extra: Any) -> RunReport:
    """Write the run's metadata (every unit's outcome, the scenes it skipped) to the store,
    after its units; `extra` adds fields (what a monitoring run saw)."""
    Store(plan.location).write_run(
        plan.run_id,
        {
            "site": plan.site.name,
            "first": f"{plan.first:%Y-%m}",
            "last": f"{plan.last:%Y-%m}",
            "loader": plan.loader,
            "force": plan.force,
            "catalog": plan.spec.profile,
            "units": {r.unit_id: r.status for r in results},
            "skipped_scenes": {k: v for r in results for k, v in r.skipped_scenes.items()},
            **extra,
        },
    )
    return RunReport(plan.run_id, list(results))


def process(
    site: Site,
    first: dt.date,
    last: dt.date,
    *,
    store: Store,
    spec: CatalogSpec = CatalogSpec(),  # noqa: B008 (frozen)
    client=None,
    loader: str = "stackstac",
    force: bool = False,
    retries: int = 2,
    progress: Callable[[UnitResult, int, int], None] | None = None,
) -> RunReport:
    """Compute every (tile, month) unit of a period and write it to the store.

    Parameters
    ----------
    site : the site (grid, tiles, baseline).
    first, last : first and last month of the period (any day of the month).
    store : where the products go (created on first use).
    spec : the STAC catalog to search.
    client : a ``distributed.Client`` (any cluster); None runs the units in this process.
    loader : ``stackstac`` (default) or ``odc``.
    force : recompute units that are already complete.
    retries : attempts per unit after a failure (on a cluster).
    progress : called with each unit's result, the number finished and the total.
    """
    plan = plan_run(site, first, last, store=store, spec=spec, loader=loader, force=force)
    return execute(plan, client=client, retries=retries, progress=progress)


def execute(
    plan: RunPlan,
    *,
    client=None,
    retries: int = 2,
    progress: Callable[[UnitResult, int, int], None] | None = None,
    **extra: Any,
) -> RunReport:
    """Run a plan's units (in this process, or on the cluster of `client`), then write
    the run's metadata."""
    results: list[UnitResult] = []

    def report(r: UnitResult) -> None:
        results.append(r)
        if progress:
            progress(r, len(results), plan.total)

    for r in plan.skipped:
        report(r)
    loc, loader, run_id = plan.location, plan.loader, plan.run_id
    shared = plan.scenes
    if client is not None:
        # Send the scene list to the workers once; every task of the run shares it. The
        # future is held until the run ends (a released one would be deleted on the workers).
        [shared] = client.scatter([plan.scenes], broadcast=True, hash=False)
    base_calls = [
        (run_baseline, (plan.site, tid, shared, loc, loader, run_id), baseline_id(tid))
        for tid in plan.baselines
    ]
    _run(base_calls, client, retries, report)
    failed_tiles = {r.unit_id.split("/")[0] for r in results if r.status == "failed"}
    month_calls = []
    for u in plan.months:
        if u.tile_id in failed_tiles:
            report(UnitResult(u.id, "failed", error="the tile's baseline failed"))
            continue
        month_calls.append((run_month, (plan.site, u, shared, loc, loader, run_id), u.id))
    _run(month_calls, client, retries, report)
    return finish_run(plan, results, **extra)


def _run(calls, client, retries: int, report: Callable[[UnitResult], None]) -> None:
    """Run unit calls in order (in process) or on the cluster; month units of one tile are
    chained so that each can read its predecessor's composite from the store."""
    if not calls:
        return
    if client is None:
        for fn, args, uid in calls:
            try:
                report(fn(*args))
            except Exception as exc:  # noqa: BLE001 - a unit's failure is reported, not fatal
                report(UnitResult(uid, "failed", error=f"{type(exc).__name__}: {exc}"))
        return
    from distributed import as_completed

    futures = {}
    last_of_tile = {}
    for fn, args, uid in calls:
        kwargs = {}
        if fn is run_month:
            unit = args[1]
            prev = last_of_tile.get(unit.tile_id)
            if prev is not None and prev[0] == add_months(unit.month, -1):
                kwargs["after"] = prev[1]
        fut = client.submit(
            fn, *args, **kwargs, key=f"{uid}-{args[-1]}", retries=retries, pure=False
        )
        if fn is run_month:
            last_of_tile[args[1].tile_id] = (args[1].month, fut)
        futures[fut] = uid
    for fut in as_completed(futures):
        uid = futures[fut]
        if fut.status == "finished":
            report(fut.result())
        else:
            exc = fut.exception() if fut.status == "error" else None
            why = f"{type(exc).__name__}: {exc}" if exc else f"task {fut.status}"
            report(UnitResult(uid, "failed", error=why))
