"""Fixtures for the flow tests: a local Prefect server, the served deployments, a Dask
cluster given by address, and a STAC API of their own whose catalog can grow.

Every process (this one, the serving process, the flow runs it starts, the Dask workers)
points at the one Prefect server through ``PREFECT_API_URL``: nothing starts a temporary
server of its own.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from flows import prefect_server
from nampo.cli import main as nampo_cli
from nampo.run.units import Unit, months, unit_from_id
from nampo.services import pgstac

REPO = Path(__file__).resolve().parent.parent
HELD_BACK_MONTH = "2021-11"
"""Items of this month are loaded only by the monitoring test (new scenes arriving)."""
DEPLOYMENTS = {"backfill", "report", "monitor", "monitor-sites"}
"""The deployments ``python -m flows.deployments`` serves."""

OUTLINE_SITE = "mini-quay"
"""A site added from GeoJSON files, as an analyst adds one: the quay and the land north
of it in the test harbour (whose archive the session's STAC API holds)."""
UNREACHABLE_SITE = "mini-down"
"""The same place, its catalog a port on loopback where nothing listens."""
ALERT_SITE = "alert-mini"
"""The test harbour under another name, whose new changes are announced (its own store)."""


def _square(w: float, s: float, e: float, n: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


OUTLINE = {
    "type": "Feature",
    "properties": {},
    "geometry": _square(125.4068, 38.7186, 125.4185, 38.7256),
}
FACILITIES = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature",
         "properties": {"name": "quay", "title": "Quay and yard", "kind": "quay"},
         "geometry": _square(125.4070, 38.7188, 125.4183, 38.7222)},
        {"type": "Feature", "properties": {"kind": "berth", "facility": "quay"},
         "geometry": _square(125.40748, 38.71985, 125.41149, 38.72026)},
        {"type": "Feature", "properties": {"name": "north", "kind": "other"},
         "geometry": _square(125.4070, 38.7227, 125.4183, 38.7254)},
    ],
}  # fmt: skip


def item_month(item: dict) -> str:
    return item["properties"]["datetime"][:7]


@pytest.fixture(scope="session")
def flows_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="nampo-flows-home-"))
    home.chmod(0o755)  # postgres traverses it to its cluster
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def flows_sites(flows_home: Path) -> list[str]:
    """The registry of the flows' NAMPO_HOME: the built-in test harbour, a site added from
    an outline and a facilities GeoJSON with `nampo site add`, the same place with an
    unreachable catalog, and a site the tests remove. Made before the deployments are
    registered (their forms offer these)."""
    import json

    from nampo.scenario.known_sites import register_builtin
    from nampo.sites.registry import Registry

    registry = Registry(flows_home / "sites")
    register_builtin(registry, "harbour-mini")
    mini = registry.get("harbour-mini")
    registry.add(mini.model_copy(update={"name": ALERT_SITE, "title": "Alerting harbour"}))
    (flows_home / "outline.geojson").write_text(json.dumps(OUTLINE))
    (flows_home / "facilities.geojson").write_text(json.dumps(FACILITIES))
    dead = f"http://127.0.0.1:{prefect_server.free_port()}"  # nothing listens there
    common = ["--outline", str(flows_home / "outline.geojson"), "--baseline", "2021-07..2021-09",
              "--tile-px", "64", "--catalog", "local"]  # fmt: skip
    for name, extra in [
        (OUTLINE_SITE, ["--facilities", str(flows_home / "facilities.geojson")]),
        (UNREACHABLE_SITE, []),
        ("doomed", []),
    ]:
        args = ["site", "add", name, *common, *extra, "--title", name]
        with environment({"NAMPO_HOME": str(flows_home)}):
            assert nampo_cli(args) == 0
    # the unreachable catalog: the entry names a STAC API URL of its own
    doc = registry.get(UNREACHABLE_SITE).to_document()
    doc["catalog"]["url"] = dead
    from nampo.sites import parse_definition

    registry.add(parse_definition(doc), replace=True)
    return registry.names()


@pytest.fixture(scope="session")
def flows_stac(flows_home: Path, mini_archive) -> Iterator[pgstac.StacEndpoint]:
    """A STAC API of this module's own (the monitoring test adds items to it), holding the
    mini archive but for the items of HELD_BACK_MONTH."""
    state = flows_home / "stac"
    try:
        endpoint = pgstac.start(state)
        pgstac.load(endpoint, mini_archive.path, only=lambda i: item_month(i) != HELD_BACK_MONTH)
        yield endpoint
    finally:
        pgstac.stop(state)


@pytest.fixture(scope="session")
def prefect(flows_home: Path) -> Iterator[prefect_server.PrefectServer]:
    with prefect_server.running(flows_home / "prefect") as server:
        yield server


@pytest.fixture(scope="session")
def prefect_env(flows_home: Path, prefect) -> dict[str, str]:
    """The environment of every process that talks to the session's Prefect server (this
    process's own environment is left alone: other test modules read NAMPO_ settings)."""
    return {
        **prefect_server.prefect_env(flows_home / "prefect", prefect.api_url),
        "NAMPO_HOME": str(flows_home),
        # The faulty-catalog test stalls requests: give up on each attempt sooner.
        "NAMPO_CATALOG_TIMEOUT": "4",
    }


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def cluster(prefect_env) -> Iterator[str]:
    """A multi-process Dask cluster on loopback, started apart from the flows and given to
    them by address (as a remote one would be); its workers get PREFECT_API_URL."""
    from nampo.run.cluster import local_cluster

    with environment(prefect_env):  # the nannies (and the workers they restart) inherit it
        local = local_cluster(2)
    with local:
        yield local.scheduler_address


@pytest.fixture(scope="session")
def served(prefect, prefect_env, flows_stac, flows_sites, flows_home) -> Iterator[dict[str, str]]:
    """``python -m flows.deployments`` running; returns deployment name -> id."""
    log = open(flows_home / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.deployments"],
        cwd=REPO,
        env={**os.environ, **prefect_env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        ids = wait_for_deployments(prefect.api_url, DEPLOYMENTS, proc)
        yield ids
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def wait_for_deployments(api: str, names: set[str], proc, timeout: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"flows.deployments exited with {proc.returncode}")
        found = httpx.post(f"{api}/deployments/filter", json={}).json()
        ids = {d["name"]: d["id"] for d in found}
        if names <= ids.keys():
            return ids
        time.sleep(0.5)
    raise TimeoutError(f"deployments {names} not registered after {timeout} s")


def create_run(api: str, deployment_id: str, parameters: dict) -> httpx.Response:
    """What the UI's custom run does. A 503 is the server's "retry me" (SQLite busy on a
    loaded machine): retried like Prefect's own client does, 5 times at most."""
    for attempt in range(6):
        response = httpx.post(
            f"{api}/deployments/{deployment_id}/create_flow_run",
            json={"parameters": parameters},
            timeout=60,
        )
        if response.status_code != 503 or attempt == 5:
            return response
        time.sleep(2**attempt)
    raise AssertionError("unreachable")


def start_run(api: str, deployment_id: str, parameters: dict) -> str:
    response = create_run(api, deployment_id, parameters)
    assert response.status_code == 201, response.text
    return response.json()["id"]


TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def wait_for_run(api: str, run_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=30).json()
        if run["state_type"] in TERMINAL:
            return run
        time.sleep(1)
    raise TimeoutError(f"flow run {run_id} not finished after {timeout} s")


def run_logs(api: str, flow_run_id: str) -> str:
    body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}
    logs = httpx.post(f"{api}/logs/filter", json=body, timeout=30).json()
    return "\n".join(x["message"][:2000] for x in logs)


def task_runs(api: str, flow_run_id: str) -> list[dict]:
    body = {"task_runs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}
    return httpx.post(f"{api}/task_runs/filter", json=body, timeout=30).json()


def units_of(task_runs: list[dict], site=None) -> set[str]:
    """The unit ids the task runs computed: ``x00y00/baseline``, ``x00y00/2021-10``, a
    tile's months ``x00y00/2021-10..2021-12`` (every month between) or a strip's sweep
    ``x00y00..x01y00/2021-10..2021-12`` (every month between of every tile of `site`
    between, in row order: exact when the sweep has every such unit)."""
    out = set()
    for name in (t["name"] for t in task_runs):
        where, _, when = name.partition("/")
        first_tile, _, last_tile = where.partition("..")
        first_id, _, last = f"{first_tile}/{when}".partition("..")
        first = unit_from_id(first_id)
        if not last and not last_tile:
            out.add(first.id)
            continue
        assert isinstance(first, Unit), name
        tiles = [first_tile]
        if last_tile:
            assert site is not None, f"{name}: a strip's sweep needs the site"
            order = [t.id for t in sorted(site.tiles, key=lambda t: (t.iy, t.ix))]
            tiles = order[order.index(first_tile) : order.index(last_tile) + 1]
        end = month(last) if last else first.month
        out |= {Unit(m, t).id for t in tiles for m in months(first.month, end)}
    return out


def month(text: str) -> dt.date:
    return dt.date.fromisoformat(text + "-01")


def cancel(api: str, flow_run_id: str) -> None:
    """What the UI's Cancel button does."""
    body = {"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True}
    response = httpx.post(f"{api}/flow_runs/{flow_run_id}/set_state", json=body, timeout=30)
    response.raise_for_status()
