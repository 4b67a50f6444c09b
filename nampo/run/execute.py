"""The library's executor: a run's units in this process, or as Dask tasks on a cluster,
in the order and grouping of :mod:`nampo.run.schedule`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from nampo.grid import Grid
from nampo.io.cube import Reading
from nampo.io.scenes import NormalisedItem
from nampo.io.store import Store, StoreLocation
from nampo.run.cluster import fit_to_workers
from nampo.run.plan import CatalogSpec, RunPlan, StalePolicy, plan_run
from nampo.run.results import RunReport, UnitResult, after_failure, finish_run
from nampo.run.schedule import LIBRARY_CHAIN_MONTHS, Chain, Schedule, schedule, strips
from nampo.run.units import BaselineUnit
from nampo.run.work import raise_failed, run_baseline, run_units
from nampo.sites import Site

__all__ = ["BASELINE_FAILED", "execute", "process"]

BASELINE_FAILED = "the tile's baseline failed"
"""The error of the months of a tile whose baseline failed (they do not run)."""

Progress = Callable[[UnitResult, int, int], None]


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
    progress: Progress | None = None,
    stale: StalePolicy = "recompute",
    reading: Reading | None = None,
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
    retries : attempts per task after a failure (on a cluster).
    progress : called with each unit's result, the number finished and the total.
    stale : units written by an older product version: ``recompute`` or ``leave``.
    reading : the operator's read settings (``Reading.from_settings``; default: nampo's).
    """
    plan = plan_run(
        site, first, last, store=store, spec=spec, loader=loader, force=force, stale=stale,
        reading=reading,
    )  # fmt: skip
    return execute(plan, client=client, retries=retries, progress=progress)


def execute(
    plan: RunPlan,
    *,
    client=None,
    retries: int = 2,
    progress: Progress | None = None,
    **extra: Any,
) -> RunReport:
    """Run a plan's units (in this process, or on the cluster of `client`), then write
    the run's metadata; `extra` adds fields to it."""
    results: list[UnitResult] = []

    def report(r: UnitResult) -> None:
        results.append(r)
        if progress:
            progress(r, len(results), plan.total)

    for r in plan.skipped:
        report(r)
    # One month a task, month by month across the site (a worker's strip on a cluster):
    # each month's files are opened and read ahead once per worker for all its tiles
    # (docs/run.md, "Month by month in the library").
    tasks = schedule(plan, LIBRARY_CHAIN_MONTHS)
    if client is None:
        _in_process(plan, tasks, report)
    else:
        _on_cluster(plan, tasks, client, retries, report)
    return finish_run(plan, results, **extra)


def _stopped(chain: Chain) -> list[UnitResult]:
    return [UnitResult(u.id, "failed", error=BASELINE_FAILED) for u in chain.units]


def _in_process(plan: RunPlan, tasks: Schedule, report: Callable[[UnitResult], None]) -> None:
    """The schedule's tasks one after another, no retries."""
    args = (plan.scenes, plan.location, plan.reading, plan.run_id)
    failed: set[BaselineUnit] = set()
    for base in tasks.baselines:
        try:
            result = run_baseline(plan.site, base, *args)
        except Exception as exc:  # noqa: BLE001 - a unit's failure is reported, not fatal
            result = UnitResult(base.id, "failed", error=f"{type(exc).__name__}: {exc}")
            failed.add(base)
        report(result)
    for chain in tasks.chains:
        if tasks.stopped_by(chain) in failed:
            for r in _stopped(chain):
                report(r)
            continue
        run_units(plan.site, chain.units, *args, on_result=report)


def _chain_task(
    site: Site,
    chain: Chain,
    scenes: Sequence[NormalisedItem],
    location: StoreLocation,
    reading: Reading,
    run_id: str,
    ahead: Grid | None = None,
) -> list[UnitResult]:
    """A chain as one Dask task: fails naming its failed units once every unit was tried,
    so that Dask retries it (a retry computes only the units not done in this run).
    `ahead`: the part of the site whose blocks the worker reads ahead (its strip)."""
    results = run_units(site, chain.units, scenes, location, reading, run_id, ahead=ahead)
    raise_failed(chain, results)
    return results


def _why(fut) -> str:
    exc = fut.exception() if fut.status == "error" else None
    return f"{type(exc).__name__}: {exc}" if exc else f"task {fut.status}"


def _on_cluster(
    plan: RunPlan, tasks: Schedule, client, retries: int, report: Callable[[UnitResult], None]
) -> None:
    """The schedule's tasks on the cluster of `client`: the baselines, then the chains, a
    tile's next chain submitted when the one before it has ended (whatever its outcome)."""
    from distributed import as_completed

    plan = fit_to_workers(plan, client)

    # Send the scene list to the workers once; every task of the run shares it. The
    # future is held until the run ends (a released one would be deleted on the workers).
    [scenes] = client.scatter([plan.scenes], broadcast=True, hash=False)
    site, run_id = plan.site, plan.run_id
    args = (scenes, plan.location, plan.reading, run_id)

    def submit(fn, unit_or_chain, name: str, *extra, **options):
        return client.submit(
            fn, site, unit_or_chain, *args, *extra, key=f"{name}-{run_id}", retries=retries,
            pure=False, **options,
        )  # fmt: skip

    # Each worker computes the chains of one strip of the site's tile rows (preferably:
    # another worker may take them when it has nothing else), and reads ahead only the
    # blocks of its strip, not those of the tiles the other workers compute.
    workers = sorted(client.scheduler_info()["workers"])
    own = {
        tile: (strip.grid, worker)
        for strip, worker in zip(strips(site, len(workers)), workers, strict=False)
        for tile in strip.tiles
    }

    failed: set[BaselineUnit] = set()
    bases = {submit(run_baseline, b, b.id): b for b in tasks.baselines}
    for fut in as_completed(bases):
        if fut.status == "finished":
            report(fut.result())
        else:
            failed.add(bases[fut])
            report(UnitResult(bases[fut].id, "failed", error=_why(fut)))

    following: dict[Chain, Chain] = {}  # a chain -> its tile's next chain
    for chain in tasks.chains:
        if (before := tasks.previous(chain)) is not None:
            following[before] = chain
    running: dict[Any, Chain] = {}
    queue = as_completed()

    def start(chain: Chain | None) -> None:
        while chain is not None and tasks.stopped_by(chain) in failed:
            for r in _stopped(chain):
                report(r)
            chain = following.get(chain)
        if chain is not None:
            if chain.tile_id in own:
                ahead, worker = own[chain.tile_id]
                fut = submit(
                    _chain_task, chain, chain.name, ahead, workers=[worker],
                    allow_other_workers=True,
                )  # fmt: skip
            else:
                fut = submit(_chain_task, chain, chain.name)
            running[fut] = chain
            queue.add(fut)

    for chain in tasks.chains:
        if tasks.previous(chain) is None:
            start(chain)
    for fut in queue:
        chain = running.pop(fut)
        if fut.status == "finished":
            for r in fut.result():
                report(r)
        else:
            for r in after_failure(plan.location, chain.units, run_id, _why(fut)):
                report(r)
        start(following.get(chain))
