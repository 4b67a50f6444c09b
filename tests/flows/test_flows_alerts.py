"""New changes announced once, through Prefect's own machinery, against the session's real
Prefect server, served deployments and STAC API (tests/flows_fixtures.py): the automation
of infra/alerts (created by `nampo-flows alerts`) posts each new event to a webhook, here
a small HTTP receiver on 127.0.0.1. A monitoring run over a month that completes a change
posts one notification per new event; the same run again posts nothing; a site whose
alert threshold is above the change posts nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from nampo.analysis.news import update_events
from nampo.io.store import Store
from nampo.run.execute import process
from nampo.run.plan import CatalogSpec
from nampo.services import pgstac
from nampo.sites import parse_definition
from nampo.sites.registry import Registry
from tests.flows_fixtures import (
    ALERT_SITE,
    HELD_BACK_MONTH,
    REPO,
    item_month,
    run_logs,
    start_run,
    wait_for_run,
)
from tests.loopback import LoopbackServer, Reply, Seen

pytestmark = pytest.mark.services

KNOWN_THROUGH = dt.date(2022, 2, 1)
"""The store is computed and its events dated through this month before monitoring."""
MONITORED = "2022-03"
"""The month the monitoring run brings: it completes a change (the new pier's quay)."""
QUIET_S = 8
"""How long nothing must arrive for "posts nothing" (the server sends within seconds)."""


class Webhook:
    """Records each POST; answers 200."""

    def __init__(self) -> None:
        self.posts: list[dict] = []

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "POST":
            self.posts.append(seen.body)
        return Reply(200, {"ok": True})

    def wait_for(self, count: int, timeout: float = 120) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(QUIET_S)  # and no more than that
        return [json.loads(p["body"]) for p in self.posts]


def artifact_keys(api: str, run_id: str) -> set[str]:
    body = {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    return {a["key"] for a in httpx.post(f"{api}/artifacts/filter", json=body).json()}


def test_new_changes_are_posted_once_and_only_above_the_threshold(
    prefect, prefect_env, served, cluster, flows_stac, flows_home, mini_archive
):
    api = prefect.api_url
    registry = Registry(flows_home / "sites")
    site = registry.site(ALERT_SITE)
    # every month of the archive in the catalog (the monitoring test of test_flows.py may
    # not have added the held-back one yet; loading is an upsert)
    pgstac.load(flows_stac, mini_archive.path, only=lambda i: item_month(i) == HELD_BACK_MONTH)
    store = Store(flows_home / "alerts.zarr")
    spec = CatalogSpec("local", flows_stac.url)
    report = process(site, dt.date(2021, 10, 1), KNOWN_THROUGH, store=store, spec=spec)
    assert not report.failed, report.failed
    seeded = update_events(store, site, "seed")
    assert seeded.first and seeded.announce == [] and seeded.events
    known = {e.id for e in seeded.events}
    shutil.copytree(flows_home / "alerts.zarr", flows_home / "alerts-quiet.zarr")

    with LoopbackServer(hook := Webhook()) as receiver:
        made = subprocess.run(
            [sys.executable, "-m", "flows.cli", "alerts", "--webhook", f"{receiver.url}/hook"],
            cwd=REPO, env={**os.environ, **prefect_env}, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert made.returncode == 0, made.stdout + made.stderr

        params = {
            "site": ALERT_SITE,
            "through_month": MONITORED,
            "lookback_months": 1,
            "store": store.url,
            "cluster": cluster,
        }
        run = wait_for_run(api, start_run(api, served["monitor"], params))
        assert run["state_type"] == "COMPLETED", run_logs(api, run["id"])
        events = {f["properties"]["id"]: f["properties"] for f in _stored(store)}
        new = {i: e for i, e in events.items() if i not in known}
        wanted = {i: e for i, e in new.items() if e["area_m2"] >= site.alerts.min_area_m2}
        assert wanted, f"the monitored month completes no change: {new}"
        posted = hook.wait_for(len(wanted))
        got = sorted(
            (p["event"], p["site"], p["facility"], p["type"], p["area_m2"]) for p in posted
        )
        assert got == sorted(
            (i, ALERT_SITE, e["facility"] or "", e["type"], round(e["area_m2"]))
            for i, e in wanted.items()
        )
        assert "new-events" in artifact_keys(api, run["id"])
        assert len(store.events_history()) == 1  # the seeded list, kept before it changed

        again = wait_for_run(api, start_run(api, served["monitor"], params))
        assert again["state_type"] == "COMPLETED", run_logs(api, again["id"])
        assert len(hook.wait_for(len(wanted) + 1, timeout=QUIET_S)) == len(wanted)
        assert "new-events" not in artifact_keys(api, again["id"])

        # the same month on the same store as it was, the site's threshold above the change
        doc = registry.get(ALERT_SITE).to_document()
        doc["alerts"] = {"min_area_m2": 1e9}
        registry.add(parse_definition(doc), replace=True)
        quiet_store = str(flows_home / "alerts-quiet.zarr")
        quiet = wait_for_run(
            api, start_run(api, served["monitor"], {**params, "store": quiet_store})
        )
        assert quiet["state_type"] == "COMPLETED", run_logs(api, quiet["id"])
        assert len(hook.wait_for(len(wanted) + 1, timeout=QUIET_S)) == len(wanted)
        assert {
            f["properties"]["id"] for f in _stored(Store(flows_home / "alerts-quiet.zarr"))
        } >= set(wanted)


def _stored(store: Store) -> list[dict]:
    raw = store.events_file("events.geojson")
    assert raw is not None
    return json.loads(raw)["features"]
