"""Sites as data in the flows, against the session's real Prefect server, served
deployments, STAC API and multi-process Dask cluster (tests/flows_fixtures.py): the
monitor over several watched sites as child runs, one of them with an unreachable catalog,
and a site checked against the registry when its run starts."""

from __future__ import annotations

import json

import httpx
import pytest

from nampo.io.store import Store
from nampo.run.units import BaselineUnit, Unit, parse_month
from nampo.sites.registry import Registry
from tests.flows_fixtures import (
    OUTLINE_SITE,
    UNREACHABLE_SITE,
    create_run,
    run_logs,
    start_run,
    task_runs,
    wait_for_run,
)

pytestmark = pytest.mark.services

THROUGH = "2021-12"


def child_runs(api: str, parent_id: str) -> dict[str, dict]:
    """The flow runs started inside `parent_id`'s task runs, by name."""
    tasks = task_runs(api, parent_id)
    body = {"flow_runs": {"parent_task_run_id": {"any_": [t["id"] for t in tasks]}}}
    runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30).json()
    return {r["name"]: r for r in runs}


def artifact(api: str, run_id: str, key: str) -> list[dict]:
    body = {"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [run_id]}}}
    [found] = httpx.post(f"{api}/artifacts/filter", json=body, timeout=30).json()
    data = found["data"]
    return json.loads(data) if isinstance(data, str) else data


def test_the_monitor_over_three_sites_survives_one_whose_catalog_is_down(
    prefect, served, cluster, flows_home
):
    api = prefect.api_url
    sites = ["harbour-mini", OUTLINE_SITE, UNREACHABLE_SITE]
    params = {
        "sites": sites,
        "through_month": THROUGH,
        "lookback_months": 1,
        "max_sites_at_once": 2,
        "cluster": cluster,
    }
    run = wait_for_run(api, start_run(api, served["monitor-sites"], params), timeout=900)
    rows = {r["site"]: r for r in artifact(api, run["id"], "sites")}
    # the parent fails at the end, naming the failed site, after the others completed
    assert run["state_type"] == "FAILED", json.dumps(rows)
    assert f"1 of 3 sites failed: {UNREACHABLE_SITE}" in run["state"]["message"], json.dumps(rows)
    logs = run_logs(api, run["id"])
    children = child_runs(api, run["id"])
    assert set(children) == {f"monitor-{s}" for s in sites}, children.keys()
    states = {name: r["state_type"] for name, r in children.items()}
    assert states == {
        "monitor-harbour-mini": "COMPLETED",
        f"monitor-{OUTLINE_SITE}": "COMPLETED",
        f"monitor-{UNREACHABLE_SITE}": "FAILED",
    }, logs
    assert list(rows) == sites
    down = rows[UNREACHABLE_SITE]
    assert down["status"] == "failed" and "catalog" in down["failures"].lower(), down
    registry = Registry(flows_home / "sites")
    for name in ("harbour-mini", OUTLINE_SITE):
        row = rows[name]
        site = registry.site(name)
        expected = {BaselineUnit(t.id).id for t in site.tiles} | {
            Unit(parse_month(THROUGH), t.id).id for t in site.tiles
        }
        store = Store(flows_home / "stores" / f"{name}.zarr")
        assert row["status"] == "completed" and row["store"] == store.url
        assert row["units recomputed"] == len(expected) and row["new scenes"] > 0
        assert store.done() == expected
        assert store.site.grid == site.grid
    assert not (flows_home / "stores" / f"{UNREACHABLE_SITE}.zarr").exists()


def test_a_site_removed_from_the_registry_fails_its_run_before_any_unit(
    prefect, served, flows_home
):
    """The form offered it (the deployments were registered before); the run checks the
    registry when it starts."""
    registry = Registry(flows_home / "sites")
    registry.remove("doomed")
    params = {"site": "doomed", "first_month": THROUGH, "last_month": THROUGH}
    response = create_run(prefect.api_url, served["backfill"], params)
    assert response.status_code == 201, response.text
    run = wait_for_run(prefect.api_url, response.json()["id"])
    assert run["state_type"] == "FAILED"
    message = run["state"]["message"]
    assert "unknown site 'doomed'" in message and OUTLINE_SITE in message, message
    assert task_runs(prefect.api_url, run["id"]) == []
    assert not (flows_home / "stores" / "doomed.zarr").exists()
