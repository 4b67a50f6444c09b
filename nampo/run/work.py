"""What a worker does for one unit: read the tile's scenes, composite them, compute the
products and write the unit's chunks, then its record.

Each function takes plain values (the site, the unit, the scenes, the store's location),
so it runs the same in-process, on a local multi-process cluster or on a remote one.
"""

from __future__ import annotations

import datetime as dt
import time
import typing
from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from nampo.analysis import activity
from nampo.errors import NampoError
from nampo.grid import Grid
from nampo.io.cube import Reading, read_cube, skipped_scenes
from nampo.io.scenes import NormalisedItem
from nampo.io.store import Store, StoreLocation
from nampo.products import brightmask, classes, composite, indices
from nampo.products.reflectance import merge_same_day, to_reflectance
from nampo.products.variables import BASELINE, COMPOSITE_BANDS, LAST_CLEAR_MONTHS, MONTHLY
from nampo.products.version import PRODUCT_VERSION
from nampo.run.results import UnitResult, done_in_run
from nampo.run.schedule import Chain, Sweep
from nampo.run.units import BaselineUnit, Unit, add_months, month_end
from nampo.sites import Site, Tile

__all__ = [
    "CODE_VERSION",
    "LAST",
    "UnitsFailed",
    "composite_of",
    "mask_bands",
    "raise_failed",
    "read_bands",
    "read_composite",
    "run_baseline",
    "run_month",
    "run_units",
]

CODE_VERSION = "nampo-0.1"

LAST = (*(f"last_{b}" for b in COMPOSITE_BANDS), "last_age")
"""The carried composite of a month: its latest clear observation per pixel."""


class UnitsFailed(RuntimeError):
    """Some units of a chain failed (each was tried once in this attempt)."""


def _in_window(scene: NormalisedItem, first: dt.date, last: dt.date) -> bool:
    return first <= scene.datetime.date() <= last


def _xy_only(ds: xr.Dataset) -> xr.Dataset:
    return ds.drop_vars([c for c in ds.coords if c not in ("y", "x")])


def mask_bands(scenes: Sequence[NormalisedItem]) -> list[str]:
    """The mask band to read with the scenes: the one they all have (``scl`` for
    Sentinel-2 L2A, ``qa_pixel`` for Landsat), else none (Sentinel-2 L1C, or a mix of
    collections: then no scene is masked; see ``cube.to_reflectance``)."""
    found = {s.mask_band for s in scenes}
    band = found.pop() if len(found) == 1 else None
    return [band] if band is not None else []


def read_bands(
    site: Site,
    tile: Tile,
    scenes: Sequence[NormalisedItem],
    reading: Reading,
    ahead: Grid | None = None,
):
    """The scenes over one tile, read here: per-scene reflectance bands (time, y, x), which
    observations are clear, which were observed at all, and the scenes that could not be
    read. `ahead`: the part of the site whose blocks are read ahead when a remote file is
    opened (the tiles this worker computes; None: the whole site)."""
    grid = site.tile_grid(tile)
    # This runs inside a task already: read the tile's cube here, single-threaded, into
    # memory (each asset opened once), and go on in numpy: a Dask graph per step of a
    # one-tile cube cost more than the steps themselves.
    # Remote assets: each file's blocks under `ahead` are read when the worker opens it,
    # for this tile and the next tiles this worker computes (docs/cube.md, "Reading from
    # the cloud"); signed right before the read when the catalog's hrefs need it.
    raw = read_cube(
        scenes,
        grid,
        [*COMPOSITE_BANDS, *mask_bands(scenes)],
        loader=reading.loader,
        gdal=reading.gdal,
        sign=reading.sign,
        prefetch=ahead if ahead is not None else site.grid,
        remote_threads=reading.read_threads,
        prefetch_mb=reading.read_ahead_mib,
    )
    skipped = skipped_scenes(raw)
    # Cloud-flagged values are kept: brightmask.clear takes back bright surfaces' flags.
    refl = to_reflectance(raw, scenes, mask_classes=brightmask.MASKED_EXCEPT_CLOUD)
    del raw  # a year of a tile's DNs is ~70 MB: not held while the days are merged
    refl = merge_same_day(refl)
    bands = xr.Dataset({b: refl["reflectance"].sel(band=b, drop=True) for b in COMPOSITE_BANDS})
    finite = typing.cast(xr.DataArray, np.isfinite(refl["reflectance"])).all("band")
    valid = brightmask.clear(refl["scl"], bands["blue"]) & finite
    observed = refl["scl"] > 0
    return bands, valid, observed, skipped


def composite_of(
    bands: xr.Dataset, valid, observed, peak: bool = False, bands_only: bool = False
) -> xr.Dataset:
    """Median composite (with indices unless `bands_only`) of bands already read;
    `peak`: add ``ndvi_peak``."""
    comp = composite.median_composite(bands, valid, observed)
    if not bands_only:
        comp = composite.with_indices(comp)
    if peak:
        comp["ndvi_peak"] = indices.ndvi_peak(bands, valid)
    return _xy_only(comp)


def read_composite(
    site: Site,
    tile: Tile,
    scenes: Sequence[NormalisedItem],
    reading: Reading,
    peak: bool = False,
    bands_only: bool = False,
    ahead: Grid | None = None,
) -> tuple[xr.Dataset, dict]:
    """Median composite (with indices and class) of the scenes over one tile, read and
    computed here, and the scenes that could not be read. `peak`: add ``ndvi_peak``
    (baseline); `bands_only`: the bands and counts, no indices (a month folded into
    ``last_*``); `ahead`: see :func:`read_bands`."""
    bands, valid, observed, skipped = read_bands(site, tile, scenes, reading, ahead)
    return composite_of(bands, valid, observed, peak, bands_only), skipped


def _record(run_id: str, used: Sequence[NormalisedItem], skipped: dict) -> dict:
    return {
        "run": run_id,
        "scenes": sorted(s.id for s in used if s.id not in skipped),
        "skipped_scenes": skipped,
        "code": CODE_VERSION,
        "product_version": PRODUCT_VERSION,
    }


def run_baseline(
    site: Site,
    unit: BaselineUnit,
    scenes: Sequence[NormalisedItem],
    location: StoreLocation,
    reading: Reading,
    run_id: str,
) -> UnitResult:
    """One tile's baseline unit: the composite of the site's baseline period."""
    t0 = time.perf_counter()
    tile = site.tile(unit.tile_id)
    assert site.baseline is not None  # the plan refused a site without one
    first, last = site.baseline
    mine = [s for s in scenes if _in_window(s, first, month_end(last))]
    bands, valid, observed, skipped = read_bands(site, tile, mine, reading)
    comp = composite_of(bands, valid, observed, peak=True)
    comp["landcover"] = classes.landcover(comp, comp["ndvi_peak"])  # seasonal vegetation
    ds = xr.Dataset()
    for v in BASELINE:
        name = v.name.removeprefix("base_")
        src = comp["clear_count"] if name == "clear_count" else comp[name]
        ds[v.name] = src.astype(v.dtype)
    # what the month units remember of the baseline year at the berths: where ships come
    # and go, and what never showed water (structures)
    looks = activity.berth_looks(site, tile, bands, valid, ds["base_landcover"].values)
    Store(location).write_baseline(tile, ds, _record(run_id, mine, skipped), activity=looks)
    return UnitResult(unit.id, "done", len(mine), skipped, time.perf_counter() - t0)


def _stored_last(store: Store, unit: Unit, like: xr.Dataset) -> xr.Dataset | None:
    """A done unit's carried composite (:data:`LAST`) read back from the store (only
    those 7 of its variables: reading all 33 was a third of a month unit's store I/O)."""
    try:
        store.record(unit.id)
    except NampoError:
        return None
    ds = _xy_only(store.read_unit(unit, LAST))
    return ds.assign_coords(y=like["y"], x=like["x"])


def _last_clear(
    site: Site,
    tile: Tile,
    store: Store,
    unit: Unit,
    scenes: Sequence[NormalisedItem],
    reading: Reading,
    like: xr.Dataset,
    ahead: Grid | None = None,
) -> xr.Dataset:
    """The carried composite of the month before `unit` (what cva_prev compares with): read
    back from the store when that unit is done, else folded from the composites of the
    LAST_CLEAR_MONTHS months before, newest first until every pixel has a clear month
    (the older ones cannot change the result then). Either way the same values."""
    stored = _stored_last(store, unit.previous, like)
    if stored is not None:
        return stored
    comps: list[xr.Dataset] = []
    for back in range(1, LAST_CLEAR_MONTHS + 1):
        month = add_months(unit.month, -back)
        mine = [s for s in scenes if _in_window(s, month, month_end(month))]
        if mine:
            comp, _ = read_composite(site, tile, mine, reading, bands_only=True, ahead=ahead)
            comp = comp[list(COMPOSITE_BANDS)]
        else:
            comp = xr.Dataset({b: xr.full_like(like[b], np.nan) for b in COMPOSITE_BANDS})
        comps.append(comp.assign_coords(y=like["y"], x=like["x"]))
        if all(bool(c.notnull().all()) for c in comps[-1].data_vars.values()):
            break
    last: xr.Dataset | None = None
    for comp in reversed(comps):  # oldest first
        last = composite.carry_forward(comp, last)
    assert last is not None  # LAST_CLEAR_MONTHS >= 1
    return last


def run_month(
    site: Site,
    unit: Unit,
    scenes: Sequence[NormalisedItem],
    location: StoreLocation,
    reading: Reading,
    run_id: str,
    ahead: Grid | None = None,
) -> UnitResult:
    """One (tile, month) unit. When the month before is done (earlier in its chain), its
    carried composite is read back from the store instead of being computed again (half
    the reads or less); either way the values are the same: composites are deterministic.
    `ahead`: see :func:`read_bands`."""
    t0 = time.perf_counter()
    tile = site.tile(unit.tile_id)
    store = Store(location)
    now = [s for s in scenes if _in_window(s, unit.month, month_end(unit.month))]
    bands, valid, observed, skipped = read_bands(site, tile, now, reading, ahead)
    current = composite_of(bands, valid, observed)
    base = store.read_baseline(tile)
    baseline = xr.Dataset({str(k).removeprefix("base_"): base[k] for k in base.data_vars})
    baseline = _xy_only(baseline).assign_coords(y=current["y"], x=current["x"])
    current["landcover"] = classes.landcover(current, baseline["ndvi_peak"])
    # vessels and ice are seen in single scenes: counted here, from the scenes just read
    # (and released before the months before are read)
    seen = activity.unit_activity(
        site,
        tile,
        unit.month,
        bands,
        valid,
        current["landcover"],
        base["base_landcover"],
        baseline=store.baseline_activity(tile),
    )
    del bands, valid, observed
    last = _last_clear(site, tile, store, unit, scenes, reading, current, ahead)
    previous = composite.carried_composite(last)
    metrics = composite.change_metrics(current, previous, baseline)
    ds = xr.Dataset()
    merged = current.merge(metrics).merge(composite.carry_forward(current, last))
    for v in MONTHLY:
        ds[v.name] = merged[v.name].astype(v.dtype)
    store.write_unit(unit, ds, _record(run_id, now, skipped), activity=seen)
    return UnitResult(unit.id, "done", len(now), skipped, time.perf_counter() - t0)


def run_units(
    site: Site,
    units: Sequence[Unit],
    scenes: Sequence[NormalisedItem],
    location: StoreLocation,
    reading: Reading,
    run_id: str,
    on_result: Callable[[UnitResult], None] | None = None,
    ahead: Grid | None = None,
) -> list[UnitResult]:
    """Month units in the order given (a chain's months; a sweep's, month by month across
    its strip: :class:`~nampo.run.schedule.Sweep`), each unit's result passed to
    `on_result` as it ends. A failed unit does not stop the later ones (they fold the
    months before them from the scenes instead); a unit this run has done already (an
    earlier attempt of the task) is not computed again. A tile's month should come after
    its month before (then read back from the store rather than computed again)."""
    store = Store(location)
    results = []
    for unit in units:
        if done_in_run(store, unit, run_id):
            result = UnitResult(unit.id, "done")
        else:
            try:
                result = run_month(site, unit, scenes, location, reading, run_id, ahead)
            except Exception as exc:  # noqa: BLE001 - a unit's failure is reported, not fatal
                result = UnitResult(unit.id, "failed", error=f"{type(exc).__name__}: {exc}")
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results


def raise_failed(chain: Chain | Sweep, results: Sequence[UnitResult]) -> None:
    """Raise :class:`UnitsFailed` naming the task's failed units, if any (so that the
    executor retries the task)."""
    failed = [f"{r.unit_id} ({r.error})" for r in results if r.status == "failed"]
    if failed:
        n = len(chain.units)
        raise UnitsFailed(f"{len(failed)} of {n} units failed: {'; '.join(failed)}")
