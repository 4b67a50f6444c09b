"""A run's schedule (:mod:`nampo.run.schedule`) as Prefect task runs on a Dask cluster:
the task wrappers, the task runner, and the submission of the schedule's waits
(docs/run.md)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.utilities.annotations import allow_failure
from prefect_dask import DaskTaskRunner

from nampo.io.cube import Reading
from nampo.run import work
from nampo.run.cluster import fit_to_workers, local_cluster
from nampo.run.plan import RunPlan
from nampo.run.results import UnitResult, after_failure
from nampo.run.schedule import Chain, schedule
from nampo.run.units import AnyUnit, BaselineUnit

__all__ = ["RETRIES", "Scenes", "baseline_task", "months_task", "run_plan", "task_runner"]


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


def _log_result(result: UnitResult) -> None:
    log = get_run_logger()
    if result.status == "failed":
        log.error("%s failed: %s", result.unit_id, result.error)
    else:
        log.info("%s: %d scenes in %.1f s", result.unit_id, result.scenes, result.seconds)


@task(name="baseline", retries=RETRIES, retry_delay_seconds=2, cache_policy=NONE)
def baseline_task(
    site, unit: BaselineUnit, scenes: Scenes, location, reading: Reading, run_id: str
) -> dict:
    result = work.run_baseline(site, unit, scenes.items, location, reading, run_id)
    _log_result(result)
    return asdict(result)


@task(name="months", retries=RETRIES, retry_delay_seconds=2, cache_policy=NONE)
def months_task(
    site, chain: Chain, scenes: Scenes, location, reading: Reading, run_id: str
) -> list[dict]:
    """The chain's months in order; the task run fails at the end, naming the failed units,
    and its retry skips the units this run has done."""
    results = work.run_chain(
        site, chain, scenes.items, location, reading, run_id, on_result=_log_result
    )
    work.raise_failed(chain, results)
    return [asdict(r) for r in results]


def task_runner(cluster: str | None, workers: int) -> DaskTaskRunner:
    """Dask at `cluster` (a scheduler address), or a local cluster of `workers` processes
    on loopback, one thread each (a unit is single-threaded numpy work)."""
    if cluster:
        return DaskTaskRunner(address=cluster)
    return DaskTaskRunner(cluster_class=local_cluster, cluster_kwargs={"workers": workers})


def run_plan(plan: RunPlan, runner: DaskTaskRunner) -> list[UnitResult]:
    """Submit the plan's schedule as task runs and wait for all of them: a chain waits for
    the run's baselines and its tile's chain before it, and does not run when its own
    tile's baseline failed (``allow_failure`` on the other waits)."""
    log = get_run_logger()
    results = list(plan.skipped)
    tasks = schedule(plan)
    with runner:
        client = runner.client  # the PrefectDaskClient the runner started
        plan = fit_to_workers(plan, client)  # GDAL's cache and the read-ahead fit the workers
        # The scene list goes to the workers once; every task refers to it.
        [scenes] = client.scatter([Scenes(plan.scenes)], broadcast=True, hash=False)
        args = (plan.location, plan.reading, plan.run_id)
        futures: list[tuple[Any, tuple[AnyUnit, ...]]] = []  # (future, its units)
        bases = {}
        for base in tasks.baselines:
            t = baseline_task.with_options(task_run_name=base.id)
            bases[base] = runner.submit(t, _params(t, plan.site, base, scenes, *args))
            futures.append((bases[base], (base,)))
        chained: dict[Chain, Any] = {}
        for chain in tasks.chains:
            own = tasks.stopped_by(chain)
            wait = [f if b == own else allow_failure(f) for b, f in bases.items()]
            if (before := tasks.previous(chain)) is not None:
                wait.append(allow_failure(chained[before]))
            t = months_task.with_options(task_run_name=chain.name)
            fut = runner.submit(t, _params(t, plan.site, chain, scenes, *args), wait_for=wait)
            chained[chain] = fut
            futures.append((fut, chain.units))
        log.info(
            "run %s: %d units to compute in %d task runs, %d already complete",
            plan.run_id,
            len(plan.baselines) + len(plan.months),
            len(futures),
            len(plan.skipped),
        )
        for fut, units in futures:
            fut.wait()
            state = fut.state
            if state.is_completed():
                got = fut.result()
                results.extend(UnitResult(**r) for r in (got if isinstance(got, list) else [got]))
            else:
                why = f"{state.name}: {state.message}"
                results.extend(after_failure(plan.location, units, plan.run_id, why))
    return results


def _params(t, *args) -> dict[str, Any]:
    names = list(t.fn.__code__.co_varnames[: t.fn.__code__.co_argcount])
    return dict(zip(names, args, strict=True))
