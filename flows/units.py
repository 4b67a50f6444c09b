"""Units of work as Prefect task runs on a Dask cluster.

Each tile's baseline is one task run, named by its unit id (``x00y00/baseline``). A tile's
months run as chains: one task run computes up to :data:`CHAIN_MONTHS` consecutive months
of one tile in month order (``x00y00/2017-01..2017-12``; a one-month chain is named by its
unit id), logging each unit, and fails naming its failed units; a retry recomputes only
those. Why chains: a month of one tile costs about half a CPU-second, a Prefect task run
on a Dask worker about 0.1-0.2 CPU-s (the engine builds a client with a fresh TLS context
and hydrates the flow's settings for every run, the server records its events), and a
tile's months run one after another anyway (each compares with the month before). The
store's unit of work is unchanged: every unit writes its own chunks and its own record.
The per-unit outcome is the flow's ``units`` table artifact. The task runner is
chosen at run time from the flow's parameters: a Dask scheduler's address, or a local
multi-process cluster. Task runs execute on the Dask workers and report to the same
Prefect API as the flow (workers inherit ``PREFECT_API_URL``; on a remote cluster the
operator sets it, see docs/deploy.md).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.utilities.annotations import allow_failure
from prefect_dask import DaskTaskRunner

from nampo.errors import NampoError
from nampo.io.store import Store
from nampo.run import pipeline
from nampo.run.cluster import local_cluster
from nampo.run.pipeline import RunPlan, UnitResult
from nampo.run.units import Unit


class Scenes:
    """A run's scenes as one value Prefect does not look into. A task run walks each of its
    parameters (to resolve futures and record inputs): through a plain list of scenes that
    is thousands of nested STAC dicts, for every unit. (Prefect's ``quote`` is a tuple, which
    Dask unpacks on the way.)"""

    __slots__ = ("items",)

    def __init__(self, items: list) -> None:
        self.items = items


RETRIES = 2
"""Attempts per task run after a failure (a flaky catalog or object store, a lost worker);
a retried chain recomputes only its units that are not done in this run."""

CHAIN_MONTHS = 12
"""Months of one tile per task run: a year of a site's backfill is one task run a tile."""


class UnitsFailed(RuntimeError):
    """Some units of a chain failed (each was tried once in this attempt)."""


@task(name="baseline", retries=RETRIES, retry_delay_seconds=2, cache_policy=NONE)
def baseline_task(site, tile_id: str, scenes: Scenes, location, loader: str, run_id: str) -> dict:
    result = pipeline.run_baseline(site, tile_id, scenes.items, location, loader, run_id)
    get_run_logger().info("%s: %d scenes in %.1f s", result.unit_id, result.scenes, result.seconds)
    return asdict(result)


@task(name="months", retries=RETRIES, retry_delay_seconds=2, cache_policy=NONE)
def months_task(
    site, units: list[Unit], scenes: Scenes, location, loader: str, run_id: str
) -> list[dict]:
    """The chain's months in order. A failed unit does not stop the later ones (they fold
    the months before them from the scenes instead); the task run fails at the end, naming
    the failed units, and its retry skips the units this run has done."""
    log = get_run_logger()
    store = Store(location)
    results, failed = [], []
    for unit in units:
        if _done_in_run(store, unit.id, run_id):  # done by an earlier attempt of this chain
            results.append(asdict(UnitResult(unit.id, "done")))
            continue
        try:
            result = pipeline.run_month(site, unit, scenes.items, location, loader, run_id)
        except Exception as err:  # noqa: BLE001 - reported per unit, then raised for the chain
            log.error("%s failed: %s: %s", unit.id, type(err).__name__, err)
            failed.append(f"{unit.id} ({type(err).__name__}: {err})")
            continue
        log.info("%s: %d scenes in %.1f s", result.unit_id, result.scenes, result.seconds)
        results.append(asdict(result))
    if failed:
        raise UnitsFailed(f"{len(failed)} of {len(units)} units failed: {'; '.join(failed)}")
    return results


def _done_in_run(store: Store, unit_id: str, run_id: str) -> bool:
    try:
        return store.record(unit_id).get("run") == run_id
    except NampoError:
        return False


def chains(units: list[Unit], size: int = CHAIN_MONTHS) -> list[list[Unit]]:
    """The months of each tile in month order, cut into runs of at most `size`; the runs
    in the order they should start: by their first month, then in the order `units` gives
    the tiles (the plan's: largest tile first).

    Why that order: the scheduler starts ready task runs in submission order, and a worker
    keeps the files it opened (``nampo.io.cube.OPEN_FILES``, a few hundred). Every tile reads the
    same scenes, so the workers should go through the tiles of one period before the next
    period. In tile order a worker went through all periods of one tile, then of the next:
    each period's files pushed out the others', and every unit opened all its files again."""
    rank: dict[str, int] = {}
    for unit in units:
        rank.setdefault(unit.tile_id, len(rank))
    by_tile: dict[str, list[Unit]] = {}
    for unit in sorted(units, key=lambda u: u.month):
        by_tile.setdefault(unit.tile_id, []).append(unit)
    runs = [ms[i : i + size] for ms in by_tile.values() for i in range(0, len(ms), size)]
    return sorted(runs, key=lambda run: (run[0].month, rank[run[0].tile_id]))


def chain_name(chain: list[Unit]) -> str:
    first, last = chain[0], chain[-1]
    return first.id if len(chain) == 1 else f"{first.id}..{last.month:%Y-%m}"


def task_runner(cluster: str | None, workers: int) -> DaskTaskRunner:
    """Dask at `cluster` (a scheduler address), or a local cluster of `workers` processes
    on loopback, one thread each (a unit is single-threaded numpy work)."""
    if cluster:
        return DaskTaskRunner(address=cluster)
    return DaskTaskRunner(cluster_class=local_cluster, cluster_kwargs={"workers": workers})


def run_plan(plan: RunPlan, runner: DaskTaskRunner) -> list[UnitResult]:
    """Submit the plan's baselines and month chains as task runs and wait for all of them.

    A chain waits for the run's baselines and for its tile's chain before it. Those waits
    are for speed only (a month then reads the month before back from the store rather than
    computing it again, and the workers' open files serve one period at a time): a failed
    chain does not stop the next one, nor does another tile's failed baseline
    (``allow_failure``); a failed baseline of its own tile does.
    """
    log = get_run_logger()
    results = list(plan.skipped)
    with runner:
        client = runner.client  # the PrefectDaskClient the runner started
        # The scene list goes to the workers once; every task refers to it.
        [scenes] = client.scatter([Scenes(plan.scenes)], broadcast=True, hash=False)
        args = (plan.location, plan.loader, plan.run_id)
        futures: dict[str, tuple[Any, list[str]]] = {}  # task run name -> (future, unit ids)
        for tid in plan.baselines:
            uid = pipeline.baseline_id(tid)
            t = baseline_task.with_options(task_run_name=uid)
            futures[uid] = (runner.submit(t, _params(t, plan.site, tid, scenes, *args)), [uid])
        bases = {tid: futures[pipeline.baseline_id(tid)][0] for tid in plan.baselines}
        before: dict[str, Any] = {}  # tile -> its last chain's future
        for chain in chains(plan.months):
            tile = chain[0].tile_id
            # All of the run's baselines first, as the library runs them: a chain between
            # baselines would push their files out of the workers' open files. A failed
            # baseline stops its own tile's months only.
            wait = [f if t == tile else allow_failure(f) for t, f in bases.items()]
            if (prev := before.get(tile)) is not None:
                wait.append(allow_failure(prev))
            t = months_task.with_options(task_run_name=chain_name(chain))
            fut = runner.submit(t, _params(t, plan.site, chain, scenes, *args), wait_for=wait)
            futures[chain_name(chain)] = (fut, [u.id for u in chain])
            before[tile] = fut
        log.info(
            "run %s: %d units to compute in %d task runs, %d already complete",
            plan.run_id,
            len(plan.baselines) + len(plan.months),
            len(futures),
            len(plan.skipped),
        )
        for fut, unit_ids in futures.values():
            fut.wait()
            state = fut.state
            if state.is_completed():
                got = fut.result()
                results.extend(UnitResult(**r) for r in (got if isinstance(got, list) else [got]))
            else:
                results.extend(_after_failure(plan, unit_ids, f"{state.name}: {state.message}"))
    return results


def _after_failure(plan: RunPlan, unit_ids: list[str], error: str) -> list[UnitResult]:
    """A failed task run's units: done if this run wrote their record before the failure."""
    store = Store(plan.location)
    return [
        UnitResult(uid, "done") if _done_in_run(store, uid, plan.run_id)
        else UnitResult(uid, "failed", error=error)
        for uid in unit_ids
    ]  # fmt: skip


def _params(t, *args) -> dict[str, Any]:
    names = list(t.fn.__code__.co_varnames[: t.fn.__code__.co_argcount])
    return dict(zip(names, args, strict=True))
