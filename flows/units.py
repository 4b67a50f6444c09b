"""A run's schedule (:mod:`nampo.run.schedule`) as Prefect task runs on a Dask cluster:
the task wrappers, the task runner, and the submission of the schedule's waits and of
each strip's sweeps to its worker (docs/run.md)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import dask
from distributed import as_completed
from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect_dask import DaskTaskRunner

from nampo.io.cube import Reading
from nampo.run import work
from nampo.run.cluster import fit_to_workers, local_cluster
from nampo.run.execute import BASELINE_FAILED
from nampo.run.plan import RunPlan
from nampo.run.results import UnitResult, after_failure
from nampo.run.schedule import CHAIN_MONTHS, Sweep, strips, sweep_before, sweeps
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
a retried sweep recomputes only its units that are not done in this run."""


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
    site, sweep: Sweep, scenes: Scenes, location, reading: Reading, run_id: str
) -> list[dict]:
    """The sweep's months of its strip, month by month (every tile's month, then the next
    month), reading ahead the strip's band; the task run fails at the end, naming the
    failed units, and its retry skips the units this run has done."""
    ahead = sweep.strip.grid if sweep.strip is not None else None
    results = work.run_units(
        site, sweep.units, scenes.items, location, reading, run_id, _log_result, ahead
    )
    work.raise_failed(sweep, results)
    return [asdict(r) for r in results]


def task_runner(cluster: str | None, workers: int) -> DaskTaskRunner:
    """Dask at `cluster` (a scheduler address), or a local cluster of `workers` processes
    on loopback, one thread each (a unit is single-threaded numpy work)."""
    if cluster:
        return DaskTaskRunner(address=cluster)
    return DaskTaskRunner(cluster_class=local_cluster, cluster_kwargs={"workers": workers})


def run_plan(plan: RunPlan, runner: DaskTaskRunner) -> list[UnitResult]:
    """Submit the plan's units as task runs and wait for all of them: the baselines, one
    task run each; once they have ended, the months of the tiles whose baseline did not
    fail, a :class:`~nampo.run.schedule.Sweep` a task run (up to ``CHAIN_MONTHS`` months of
    one worker's strip, month by month), each on its strip's worker (loosely), submitted
    when its strip's sweep before has ended (that one's failure does not stop it).
    docs/run.md, "Month by month in the flows"."""
    log = get_run_logger()
    results = list(plan.skipped)
    with runner:
        client = runner.client  # the PrefectDaskClient the runner started
        plan = fit_to_workers(plan, client)  # GDAL's cache and the read-ahead fit the workers
        # The scene list goes to the workers once; every task refers to it.
        [scenes] = client.scatter([Scenes(plan.scenes)], broadcast=True, hash=False)
        args = (plan.location, plan.reading, plan.run_id)
        bases = {}
        for base in plan.baselines:
            t = baseline_task.with_options(task_run_name=base.id)
            bases[base] = runner.submit(t, _params(t, plan.site, base, scenes, *args))
        # Every month waits for every baseline (docs/run.md): wait here, and leave out the
        # months of a tile whose baseline failed (the other tiles' months run).
        stopped = set()
        for base, fut in bases.items():
            got = _outcome(fut, plan, (base,))
            results.extend(got)
            if got[0].status == "failed":
                stopped.add(base.tile_id)
        months = [u for u in plan.months if u.tile_id not in stopped]
        results.extend(
            UnitResult(u.id, "failed", error=BASELINE_FAILED)
            for u in plan.months
            if u.tile_id in stopped
        )
        # One strip of the site's tiles per worker; its sweeps run on that worker (another
        # may take one when it has nothing else) and read ahead only the strip's band.
        workers = sorted(client.scheduler_info()["workers"])
        cut = strips(plan.site, len(workers))
        worker_of = dict(zip(cut, workers, strict=False))
        order = sweeps(months, cut, CHAIN_MONTHS)
        before = sweep_before(order)
        following = {b: s for s, b in before.items() if b is not None}
        running: dict[Any, tuple[Any, Sweep]] = {}  # Dask future -> (task run, its sweep)
        queue = as_completed(loop=client.loop)

        def start(sweep: Sweep) -> None:
            t = months_task.with_options(task_run_name=sweep.name)
            pin = {}
            if sweep.strip is not None:
                pin = {"workers": [worker_of[sweep.strip]], "allow_other_workers": True}
            # The runner's submit takes no placement: Dask's client.submit merges the
            # annotations of the context into the task's.
            with dask.annotate(**pin):
                fut = runner.submit(t, _params(t, plan.site, sweep, scenes, *args))
            running[fut.wrapped_future] = (fut, sweep)
            queue.add(fut.wrapped_future)

        log.info(
            "run %s: %d units to compute in %d task runs, %d already complete",
            plan.run_id,
            len(plan.baselines) + len(plan.months),
            len(bases) + len(order),
            len(plan.skipped),
        )
        for sweep in order:
            if before[sweep] is None:
                start(sweep)
        # A strip's next sweep is submitted when the one before has ended, whatever its
        # outcome: a failed sweep does not stop the next. (Not Prefect's wait_for with
        # allow_failure: through Dask the annotation is lost, a tuple Dask unpacks, and
        # the upstream failure stopped the waiting task run.)
        for done in queue:
            fut, sweep = running.pop(done)
            results.extend(_outcome(fut, plan, sweep.units))
            if (after := following.get(sweep)) is not None:
                start(after)
    return results


def _outcome(fut, plan: RunPlan, units: tuple[AnyUnit, ...]) -> list[UnitResult]:
    """The results of a task run's units once it has ended: those it returned, else those
    this run wrote before the failure (done) and the others (failed)."""
    fut.wait()
    state = fut.state
    if state.is_completed():
        got = fut.result()
        return [UnitResult(**r) for r in (got if isinstance(got, list) else [got])]
    why = f"{state.name}: {state.message}"
    return after_failure(plan.location, units, plan.run_id, why)


def _params(t, *args) -> dict[str, Any]:
    names = list(t.fn.__code__.co_varnames[: t.fn.__code__.co_argcount])
    return dict(zip(names, args, strict=True))
