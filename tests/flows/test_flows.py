"""The Prefect flows against a real Prefect server on loopback: deployments served by
``python -m flows.deployments``, runs started through the server's API as the UI's custom run
does, units run as task runs on a multi-process Dask cluster given by address."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from flows import prefect_server
from flows.params import CatalogName
from flows.units import RETRIES
from nampo.io import catalog
from nampo.io.store import Store
from nampo.products.variables import ALL
from nampo.run.execute import BASELINE_FAILED, process
from nampo.run.plan import CatalogSpec
from nampo.run.schedule import strips
from nampo.run.units import Unit, unit_from_id
from nampo.scenario.known_sites import load_site
from nampo.services import pgstac
from nampo.sites.registry import Registry
from tests.flows_fixtures import (
    DEPLOYMENTS,
    HELD_BACK_MONTH,
    REPO,
    cancel,
    create_run,
    item_month,
    month,
    run_logs,
    start_run,
    task_runs,
    units_of,
    wait_for_run,
)
from tests.loopback import LoopbackServer, Reply, Seen

pytestmark = pytest.mark.services

SITE = "harbour-mini"
FIRST, LAST = "2021-12", "2022-01"


def arrays(store: Store, first: str, last: str) -> dict[str, np.ndarray]:
    ds = store.open()
    out = {}
    for v in ALL:
        a = ds[v.name]
        if "time" in a.dims:
            a = a.sel(time=slice(first, last))
        out[v.name] = a.values
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name], equal_nan=True), name


@pytest.fixture(scope="module")
def reference(flows_stac, flows_home) -> Store:
    """The same period computed by the library in this process: what every flow run's
    store must equal."""
    store = Store(flows_home / "reference.zarr")
    spec = CatalogSpec("local", flows_stac.url)
    report = process(load_site(SITE), month(FIRST), month(LAST), store=store, spec=spec)
    assert not report.failed, report.failed
    return store


def test_parameter_choices_match_the_library(prefect, served, flows_home):
    assert set(CatalogName.__args__) == set(catalog.PROFILES)
    # the forms' site dropdowns: the sites registered when the deployments were
    registered = Registry(flows_home / "sites").names()
    assert {"harbour-mini", "mini-quay"} <= set(registered)
    for name in ("backfill", "report", "monitor"):
        d = httpx.get(f"{prefect.api_url}/deployments/{served[name]}").json()
        assert d["parameter_openapi_schema"]["properties"]["site"]["enum"] == registered


def backfill_params(store, cluster_address, **extra) -> dict:
    return {
        "site": SITE,
        "first_month": FIRST,
        "last_month": LAST,
        "store": str(store),
        "cluster": cluster_address,
        **extra,
    }


def test_backfill_from_the_api_then_again_skips_every_unit(
    prefect, served, cluster, reference, flows_home
):
    api, dep = prefect.api_url, served["backfill"]
    store = Store(flows_home / "api.zarr")
    response = create_run(api, dep, backfill_params(store.location.url, cluster))
    assert response.status_code == 201, response.text
    run = wait_for_run(api, response.json()["id"])
    assert run["state_type"] == "COMPLETED", run_logs(api, run["id"])
    site = load_site(SITE)
    units = len(site.tiles) * 3  # baseline + two months per tile
    tasks = task_runs(api, run["id"])
    assert units_of(tasks, site) == store.done() and len(store.done()) == units
    # a task run per tile's baseline, one per worker's strip of tiles for the period
    assert len(tasks) == len(site.tiles) + len(strips(site, 2))
    assert all(t["state_type"] == "COMPLETED" for t in tasks)
    assert_same(arrays(store, FIRST, LAST), arrays(reference, FIRST, LAST))
    # Every worker reported to this server: none started a temporary one of its own.
    from distributed import Client

    with Client(cluster) as client:
        apis = client.run(lambda: os.environ.get("PREFECT_API_URL"))
    assert set(apis.values()) == {api}

    again = wait_for_run(api, start_run(api, dep, backfill_params(store.location.url, cluster)))
    assert again["state_type"] == "COMPLETED"
    assert task_runs(api, again["id"]) == []
    runs = store.runs()
    assert len(runs) == 2
    last = runs[max(runs)]
    assert set(last["units"].values()) == {"skipped"} and len(last["units"]) == units
    assert_same(arrays(store, FIRST, LAST), arrays(reference, FIRST, LAST))


def test_a_backfill_runs_each_strip_month_by_month_on_its_worker(prefect_env, flows_stac, tmp_path):
    """The flows run a worker's strip of tiles over a period in one task run, month by
    month (every tile's month, then the next month), on the strip's worker, reading ahead
    the strip's band: each month's files are opened and read ahead once per worker, as in
    the library (docs/run.md). A failed baseline stops its own tile's months only: the
    rest of its strip runs; a failed task run does not stop its strip's next one. (The
    units' work is a stand-in here, and a task run covers one month of a strip, not 12:
    tests/flows/sweep_flow.py.)"""
    tile, failing = "x00y00", f"x01y00/{FIRST}"  # a failed baseline, a failing month unit
    args = [SITE, FIRST, LAST, flows_stac.url, str(tmp_path / "sweeps.zarr"), tile, failing]
    done = subprocess.run(
        [sys.executable, "-m", "tests.flows.sweep_flow", *args],
        cwd=REPO, env={**os.environ, **prefect_env}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    site = load_site(SITE)
    results = {r["unit_id"]: r for r in out["results"]}
    months = [Unit(month(m), t.id) for t in site.tiles for m in (FIRST, LAST)]
    assert set(results) == {f"{t.id}/baseline" for t in site.tiles} | {u.id for u in months}
    for unit in months:
        r = results[unit.id]
        if unit.tile_id == tile:
            assert (r["status"], r["error"]) == ("failed", BASELINE_FAILED)
        elif unit.id == failing:
            assert r["status"] == "failed" and "this unit fails" in r["error"], r
        else:
            assert r["status"] == "done", r
    ran = [(x["worker"], unit_from_id(x["unit"]), x["ahead"]) for x in out["ran"]]
    # The failed baseline's tile never ran; every other month ran, once (the failing one
    # on every attempt: it failed its task run, and the strip's next month still ran).
    assert sorted(u.id for _, u, _ in ran) == sorted(
        [u.id for u in months if u.tile_id != tile] + [failing] * RETRIES
    )
    workers = sorted({w for w, _, _ in ran})
    assert len(workers) == 2
    cut = strips(site, 2)
    own = {
        t: (w, [s.grid.y0, s.grid.height])
        for s, w in zip(cut, workers, strict=True)
        for t in s.tiles
    }
    for worker, unit, ahead in ran:
        assert (worker, ahead) == own[unit.tile_id], unit  # its strip's worker and band
    for worker in workers:
        mine = [u.month for w, u, _ in ran if w == worker]
        assert mine == sorted(mine), worker  # month by month across the strip
    # a task run per baseline, one per strip and month (named by its tiles and month)
    names = sorted(t["name"] for t in task_runs(prefect_env["PREFECT_API_URL"], out["flow_run"]))
    assert names == sorted(
        [f"{t.id}/baseline" for t in site.tiles]
        + [f"x01y00/{m}" for m in (FIRST, LAST)]
        + [f"x00y01..x01y01/{m}" for m in (FIRST, LAST)]
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"last_month": "2022-13"},
        {"first_month": "Dec 2021"},
        {"site": "atlantis"},
        {"catalog": "google"},
        {"max_cloud": 140},
        {"workers": 0},
    ],
)
def test_the_server_refuses_parameters_of_the_wrong_shape(prefect, served, flows_home, bad):
    params = {**backfill_params(flows_home / "never.zarr", None), **bad}
    response = create_run(prefect.api_url, served["backfill"], params)
    assert response.status_code in (409, 422), response.text
    assert next(iter(bad)) in response.text  # the message names the parameter
    assert not (flows_home / "never.zarr").exists()


def test_a_period_ending_before_it_starts_fails_before_any_unit(prefect, served, flows_home):
    store = flows_home / "backwards.zarr"
    params = backfill_params(store, None, first_month="2022-02", last_month="2021-12")
    response = create_run(prefect.api_url, served["backfill"], params)
    assert response.status_code == 201, response.text
    run = wait_for_run(prefect.api_url, response.json()["id"])
    assert run["state_type"] == "FAILED"
    assert "before it starts" in run["state"]["message"]
    assert task_runs(prefect.api_url, run["id"]) == []
    assert not store.exists()


# ------------------------------------------------------------------------- fault tolerance


class FaultyProxy:
    """Forwards to the real STAC API; the searches get faults in turn: a 503, a 429 with
    Retry-After, a stalled answer (longer than the catalog timeout), then go through."""

    FAULTS = [
        Reply(503, {"code": "ServiceUnavailable"}),
        Reply(429, {"code": "TooManyRequests"}, headers={"Retry-After": "1"}),
        Reply(200, {}, stall=8.0),
    ]

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.url = ""
        self.faults_served = 0
        self.searches = 0

    def __call__(self, seen: Seen) -> Reply:
        if seen.path == "/search":
            self.searches += 1
            # the first searches get the faults in turn (the catalog retries each request
            # up to 5 times), the later ones go through
            if self.faults_served < len(self.FAULTS):
                self.faults_served += 1
                return self.FAULTS[self.faults_served - 1]
        query = "&".join(f"{k}={v}" for k, vs in seen.query.items() for v in vs)
        response = httpx.request(
            seen.method,
            f"{self.upstream}{seen.path}" + (f"?{query}" if query else ""),
            json=seen.body,
            timeout=30,
        )
        body = response.text.replace(self.upstream, self.url)
        return Reply(response.status_code, body)


def test_a_failing_catalog_gives_the_same_store(prefect, served, cluster, reference, flows_stac):
    proxy = FaultyProxy(flows_stac.url)
    with LoopbackServer(proxy) as server:
        proxy.url = server.url
        store = Store(Path(reference.location.url).parent / "faulty-catalog.zarr")
        params = backfill_params(store.location.url, cluster, catalog_url=server.url)
        run = wait_for_run(prefect.api_url, start_run(prefect.api_url, served["backfill"], params))
    assert run["state_type"] == "COMPLETED", run_logs(prefect.api_url, run["id"])
    assert proxy.faults_served == 3  # a 5xx, a 429 and a time-out
    assert_same(arrays(store, FIRST, LAST), arrays(reference, FIRST, LAST))


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise TimeoutError(what)


def test_a_killed_worker_process_loses_nothing(prefect, served, cluster, reference):
    from distributed import Client

    store = Store(Path(reference.location.url).parent / "killed-worker.zarr")
    params = backfill_params(store.location.url, cluster)
    run_id = start_run(prefect.api_url, served["backfill"], params)
    with Client(cluster) as client:
        busy = wait_until(
            lambda: [w for w, keys in client.processing().items() if keys],
            240,
            "no unit started on the cluster",
        )
        time.sleep(0.5)  # into the unit's work
        pids = client.run(os.getpid, workers=busy[:1])
        os.kill(pids[busy[0]], signal.SIGKILL)
        run = wait_for_run(prefect.api_url, run_id)
        if run["state_type"] != "COMPLETED":  # the unit's retries were not enough: re-run
            again = start_run(prefect.api_url, served["backfill"], params)
            run = wait_for_run(prefect.api_url, again)
        # the nanny restarted the worker
        wait_until(lambda: len(client.scheduler_info()["workers"]) == 2, 60, "worker restart")
    assert run["state_type"] == "COMPLETED", run_logs(prefect.api_url, run["id"])
    assert store.done() == reference.done()
    assert_same(arrays(store, FIRST, LAST), arrays(reference, FIRST, LAST))


def test_a_cancelled_run_resumes_where_it_stopped(prefect, served, cluster, reference):
    api = prefect.api_url
    store = Store(Path(reference.location.url).parent / "cancelled.zarr")
    params = backfill_params(store.location.url, cluster)
    run_id = start_run(api, served["backfill"], params)
    wait_until(lambda: len(store.done()) >= 2, 240, "no unit finished before the cancel")
    cancel(api, run_id)
    cancelled = wait_for_run(api, run_id)
    assert cancelled["state_type"] == "CANCELLED", cancelled["state"]
    done_at_cancel = store.done()
    assert done_at_cancel < reference.done()  # part-way

    rerun = wait_for_run(api, start_run(api, served["backfill"], params))
    assert rerun["state_type"] == "COMPLETED", run_logs(api, rerun["id"])
    # complete units are never computed again: their records are the first run's
    runs = store.runs()
    recomputed = {u for u in store.done() if store.record(u)["run"] == max(runs)}
    assert recomputed and not recomputed & done_at_cancel
    assert store.done() == reference.done()
    assert_same(arrays(store, FIRST, LAST), arrays(reference, FIRST, LAST))


def test_overlapping_backfills_at_once_leave_one_store(prefect, served, cluster, reference):
    """Two runs at once, one over the period and one over its last month: both finish and
    the store is the one a single run writes (units write only their own chunks, the same
    bytes whoever writes them)."""
    api = prefect.api_url
    store = Store(Path(reference.location.url).parent / "overlapping.zarr")
    params = backfill_params(store.location.url, cluster)
    runs = [
        start_run(api, served["backfill"], params),
        start_run(api, served["backfill"], {**params, "first_month": LAST}),
    ]
    for run_id in runs:
        run = wait_for_run(api, run_id)
        assert run["state_type"] == "COMPLETED", run_logs(api, run_id)
    assert store.done() == reference.done()
    assert_same(arrays(store, FIRST, LAST), arrays(reference, FIRST, LAST))


# ------------------------------------------------------------------------------ monitoring


def test_monitoring_recomputes_only_the_months_new_scenes_touch(
    prefect, served, cluster, flows_stac, flows_home, mini_archive
):
    """Runs last in this module: it adds the held-back month's scenes to the catalog."""
    api = prefect.api_url
    store = Store(flows_home / "monitored.zarr")
    params = {
        "site": SITE,
        "through_month": "2021-12",
        "lookback_months": 2,
        "store": store.location.url,
        "cluster": cluster,
    }

    def monitor_run() -> tuple[dict, dict]:
        run = wait_for_run(api, start_run(api, served["monitor"], params))
        assert run["state_type"] == "COMPLETED", run_logs(api, run["id"])
        runs = store.runs()
        return run, runs[max(runs)]

    _, first = monitor_run()
    assert set(first["units"].values()) == {"done"}  # an empty store: everything computed
    before = {u: store.record(u)["run"] for u in store.done()}

    held_back = lambda item: item_month(item) == HELD_BACK_MONTH  # noqa: E731
    added = pgstac.load(flows_stac, mini_archive.path, only=held_back)
    assert added > 0
    run, second = monitor_run()
    changed = {u for u in store.done() if store.record(u)["run"] != before[u]}
    tiles = [t.id for t in load_site(SITE).tiles]
    touched = {u for u in second["new_scenes"]}
    # The held-back month's units have new scenes; the next month's change against it is
    # recomputed too; nothing else (baselines, other months) runs.
    stale = [Unit.from_id(u) for u in touched]
    assert {f"{u.month:%Y-%m}" for u in stale} == {HELD_BACK_MONTH}
    assert changed == touched | {Unit(month("2021-12"), u.tile_id).id for u in stale}
    assert units_of(task_runs(api, run["id"]), load_site(SITE)) == changed
    assert all(set(ids) for ids in second["new_scenes"].values())
    assert set(second["seen"][HELD_BACK_MONTH]) >= {
        s for ids in second["new_scenes"].values() for s in ids
    }
    assert {u.tile_id for u in stale} <= set(tiles)

    # Again with nothing new: nothing runs.
    run, third = monitor_run()
    assert task_runs(api, run["id"]) == [] and set(third["units"].values()) == {"skipped"}

    # The store equals a clean run over today's catalog.
    clean = Store(flows_home / "clean-after-monitoring.zarr")
    spec = CatalogSpec("local", flows_stac.url)
    m0, m1 = month(HELD_BACK_MONTH), month("2021-12")
    assert not process(load_site(SITE), m0, m1, store=clean, spec=spec).failed
    period = (HELD_BACK_MONTH, "2021-12")
    assert_same(arrays(store, *period), arrays(clean, *period))


def test_prefect_yaml_registers_the_deployments_on_a_work_pool():
    """infra/prefect.yaml as an operator deploys it, onto a server of its own (the same
    deployment names on this module's server would replace the served ones)."""
    home = Path(tempfile.mkdtemp(prefix="nampo-deploy-"))
    try:
        with prefect_server.running(home / "prefect") as server:
            env = {**os.environ, **prefect_server.prefect_env(home / "prefect", server.api_url)}

            def prefect(*args: str) -> subprocess.CompletedProcess:
                return subprocess.run(
                    [sys.executable, "-m", "prefect", "--no-prompt", *args],
                    env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
                )  # fmt: skip

            made = prefect("work-pool", "create", "nampo", "--type", "process")
            assert made.returncode == 0, made.stderr
            deployed = prefect("deploy", "--all", "--prefect-file", "infra/prefect.yaml")
            assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
            found = httpx.post(f"{server.api_url}/deployments/filter", json={}).json()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    by_name = {d["name"]: d for d in found}
    assert by_name.keys() == DEPLOYMENTS
    assert {d["work_pool_name"] for d in found} == {"nampo"}
    assert by_name["backfill"]["schedules"] == by_name["monitor"]["schedules"] == []
    [schedule] = by_name["monitor-sites"]["schedules"]
    assert schedule["schedule"]["cron"] == "0 6 * * *" and schedule["active"]
    # The forms are those of the served deployments: the same typed parameters.
    schema = by_name["backfill"]["parameter_openapi_schema"]
    assert set(schema["required"]) == {"first_month", "last_month"}
    assert schema["properties"]["first_month"]["pattern"]


def test_nampo_flows_serve_starts_a_server_and_the_deployments():
    """The one local command: a Prefect server on loopback, the deployments served;
    Ctrl-C stops both."""
    home = Path(tempfile.mkdtemp(prefix="nampo-serve-"))
    port = prefect_server.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--port", str(port)],
        cwd=REPO, env={**env, "NAMPO_HOME": str(home)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api"
    try:
        ids = wait_for_deployments_at(api, proc)
        assert ids.keys() == DEPLOYMENTS
        ui = httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=True, timeout=30)
        assert ui.status_code == 200 and "<html" in ui.text.lower()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)  # a loaded machine stops slowly
        shutil.rmtree(home, ignore_errors=True)
    assert f"http://127.0.0.1:{port}" in out
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{api}/health", timeout=5)


def wait_for_deployments_at(api: str, proc, timeout: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            found = httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()
        except httpx.HTTPError:
            found = []
        if len(found) == len(DEPLOYMENTS):
            return {d["name"]: d["id"] for d in found}
        time.sleep(0.5)
    raise TimeoutError("deployments not served")
