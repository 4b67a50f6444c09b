"""The flows' ``run_plan`` with stand-ins for the units' work, run in a process of its own
by ``tests/flows/test_flows.py`` (``python -m tests.flows.sweep_flow ARGS``, pointed at the
session's Prefect server by its environment).

The Dask cluster is two one-thread workers in this process (threads, so that the
stand-ins reach them): a month unit records on which worker and with which read-ahead band
it ran (one of them fails), a baseline does nothing, but one tile's baseline fails. Prints
JSON: the flow run's id, the run's results and what the months recorded."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from dataclasses import asdict

from prefect import flow
from prefect.runtime import flow_run
from prefect_dask import DaskTaskRunner

import flows.units
from flows.units import run_plan
from nampo.io.store import Store
from nampo.run import work
from nampo.run.cluster import local_cluster
from nampo.run.plan import CatalogSpec, plan_run
from nampo.run.results import UnitResult
from nampo.scenario.known_sites import load_site

RAN: list[dict] = []
"""What the month units' stand-in recorded, in the order they ran."""
_lock = threading.Lock()


def _month_unit(failing: str):
    def month_unit(site, unit, scenes, location, reading, run_id, ahead=None) -> UnitResult:
        from distributed import get_worker

        band = None if ahead is None else [ahead.y0, ahead.height]
        with _lock:
            RAN.append({"unit": unit.id, "worker": get_worker().address, "ahead": band})
        time.sleep(0.05)  # a unit takes a while: the other worker could take the next one
        if unit.id == failing:
            raise RuntimeError("this unit fails")
        return UnitResult(unit.id, "done")

    return month_unit


def _failing_baseline(tile: str):
    def baseline(site, unit, *args, **kwargs) -> UnitResult:
        if unit.tile_id == tile:
            raise RuntimeError("this tile's baseline fails")
        return UnitResult(unit.id, "done")

    return baseline


def _month(text: str) -> dt.date:
    return dt.date.fromisoformat(text + "-01")


@flow(name="sweep-test")
def sweep_test(site_name: str, first: str, last: str, stac_url: str, store: str) -> dict:
    """The flows' run_plan over the period, on two in-process workers (module-level, so
    that the task runs' context pickles by reference)."""
    site = load_site(site_name)
    spec = CatalogSpec("local", stac_url)
    plan = plan_run(site, _month(first), _month(last), store=Store(store), spec=spec)
    runner = DaskTaskRunner(
        cluster_class=local_cluster,
        cluster_kwargs={
            "workers": 2, "processes": False, "protocol": "tcp://", "dashboard_address": None,
        },
    )  # fmt: skip
    results = run_plan(plan, runner)
    return {"flow_run": str(flow_run.id), "results": [asdict(r) for r in results]}


def main(
    site_name: str, first: str, last: str, stac_url: str, store: str, tile: str, unit: str
) -> None:
    """`tile`: the tile whose baseline fails; `unit`: the month unit that fails (every
    attempt). A task run a strip and month (not 12), so that a strip's sweeps follow one
    another."""
    work.run_baseline = _failing_baseline(tile)  # type: ignore[assignment]
    work.run_month = _month_unit(unit)  # type: ignore[assignment]
    flows.units.CHAIN_MONTHS = 1
    out = sweep_test(site_name, first, last, stac_url, store)
    print(json.dumps({**out, "ran": RAN}))


if __name__ == "__main__":
    main(*sys.argv[1:])
