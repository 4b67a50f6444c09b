"""Units of work as Prefect task runs on a Dask cluster.

Each (tile, month) unit and each tile's baseline is one task run named by its unit id, so
the Prefect UI lists every unit with its state, retries and errors. The task runner is
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

from nampo import pipeline
from nampo.pipeline import RunPlan, UnitResult
from nampo.units import Unit


class Scenes:
    """A run's scenes as one value Prefect does not look into. A task run walks each of its
    parameters (to resolve futures and record inputs): through a plain list of scenes that
    is thousands of nested STAC dicts, for every unit. (Prefect's ``quote`` is a tuple, which
    Dask unpacks on the way.)"""

    __slots__ = ("items",)

    def __init__(self, items: list) -> None:
        self.items = items


RETRIES = 2
"""Attempts per unit after a failure (a flaky catalog or object store, a lost worker)."""


@task(name="baseline", retries=RETRIES, retry_delay_seconds=2, cache_policy=NONE)
def baseline_task(site, tile_id: str, scenes: Scenes, location, loader: str, run_id: str) -> dict:
    result = pipeline.run_baseline(site, tile_id, scenes.items, location, loader, run_id)
    get_run_logger().info("%s: %d scenes in %.1f s", result.unit_id, result.scenes, result.seconds)
    return asdict(result)


@task(name="month", retries=RETRIES, retry_delay_seconds=2, cache_policy=NONE)
def month_task(site, unit: Unit, scenes: Scenes, location, loader: str, run_id: str) -> dict:
    result = pipeline.run_month(site, unit, scenes.items, location, loader, run_id)
    get_run_logger().info("%s: %d scenes in %.1f s", result.unit_id, result.scenes, result.seconds)
    return asdict(result)


def task_runner(cluster: str | None, workers: int) -> DaskTaskRunner:
    """Dask at `cluster` (a scheduler address), or a local cluster of `workers` processes
    on loopback, one thread each (a unit is single-threaded numpy work)."""
    if cluster:
        return DaskTaskRunner(address=cluster)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0",
        },
    )


def run_plan(plan: RunPlan, runner: DaskTaskRunner) -> list[UnitResult]:
    """Submit the plan's units as task runs and wait for all of them.

    A month waits for its tile's baseline, and for the month before on its tile when the
    run computes that too (it then reads that composite back from the store rather than
    computing it again). That wait is for speed only: a failed previous month does not
    stop the next one (``allow_failure``), a failed baseline does.
    """
    log = get_run_logger()
    results = list(plan.skipped)
    with runner:
        client = runner.client  # the PrefectDaskClient the runner started
        # The scene list goes to the workers once; every task refers to it.
        [scenes] = client.scatter([Scenes(plan.scenes)], broadcast=True, hash=False)
        args = (plan.location, plan.loader, plan.run_id)
        futures: dict[str, Any] = {}
        for tid in plan.baselines:
            uid = pipeline.baseline_id(tid)
            t = baseline_task.with_options(task_run_name=uid)
            futures[uid] = runner.submit(t, _params(t, plan.site, tid, scenes, *args))
        for unit in plan.months:
            wait = []
            if (base := futures.get(pipeline.baseline_id(unit.tile_id))) is not None:
                wait.append(base)
            if (prev := plan.previous_in_run(unit)) is not None:
                wait.append(allow_failure(futures[prev.id]))
            t = month_task.with_options(task_run_name=unit.id)
            futures[unit.id] = runner.submit(
                t, _params(t, plan.site, unit, scenes, *args), wait_for=wait
            )
        log.info(
            "run %s: %d units submitted, %d already complete",
            plan.run_id,
            len(futures),
            len(plan.skipped),
        )
        for uid, fut in futures.items():
            fut.wait()
            state = fut.state
            if state.is_completed():
                results.append(UnitResult(**fut.result()))
            else:
                results.append(UnitResult(uid, "failed", error=f"{state.name}: {state.message}"))
    return results


def _params(t, *args) -> dict[str, Any]:
    names = list(t.fn.__code__.co_varnames[: t.fn.__code__.co_argcount])
    return dict(zip(names, args, strict=True))
