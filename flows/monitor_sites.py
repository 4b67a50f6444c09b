"""The scheduled monitor over every watched site: each site's monitoring run
(:func:`flows.monitor.monitor`) as a child flow run, all of them on one Dask cluster, at
most `max_sites_at_once` at a time. One site's failure (its catalog down, its store
unwritable) fails that site's child run and not the others; the ``sites`` artifact lists
per site the units recomputed, the new scenes, the failures and the store. The parent run
fails at the end when a site failed, so the schedule shows it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.monitor import monitor
from flows.params import (
    CatalogName,
    CloudLimit,
    LoaderName,
    LookbackMonths,
    Month,
    SiteLimit,
    SiteName,
    Workers,
)
from nampo.errors import NampoError
from nampo.settings import Settings
from nampo.sites.registry import Registry

__all__ = ["monitor_sites"]

MAX_SITES_AT_ONCE = 16
"""Threads of the parent run: the upper bound of `max_sites_at_once` (flows.params)."""


@task(name="site", cache_policy=NONE)
def monitor_site(site: str, options: dict[str, Any]) -> dict:
    """One site's monitoring run, as a child flow run of this task run."""
    return monitor.with_options(flow_run_name=f"monitor-{site}")(site=site, **options)


@contextlib.contextmanager
def _cluster(address: str | None, workers: int) -> Iterator[str]:
    """The Dask cluster every site's run uses: the one at `address`, or a local one of
    `workers` processes for the parent run's time."""
    if address:
        yield address
        return
    from nampo.run.cluster import local_cluster

    with local_cluster(workers) as local:
        yield local.scheduler_address


@flow(
    name="nampo-monitor-sites",
    log_prints=True,
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_SITES_AT_ONCE),
)
def monitor_sites(
    sites: list[SiteName] | None = None,
    through_month: Month | None = None,
    lookback_months: LookbackMonths = 2,
    max_sites_at_once: SiteLimit = 2,
    catalog: CatalogName | None = None,
    catalog_url: str | None = None,
    max_cloud: CloudLimit = None,
    cluster: str | None = None,
    workers: Workers = 2,
    loader: LoaderName = "stackstac",
) -> list[dict]:
    """Bring the store of every watched site (or of `sites`) up to date with its catalog.

    Args:
        sites: the sites to watch (default: every site of the registry).
        through_month: last month to look at (YYYY-MM); empty: the current month (UTC).
        lookback_months: how many months, ending with `through_month`, to check.
        max_sites_at_once: how many sites' runs go on at once (they share the cluster).
        catalog: STAC catalog profile for every site (default: each site's own).
        catalog_url: STAC API URL (default: the profile's, or the running local API).
        max_cloud: skip scenes cloudier than this (eo:cloud_cover, percent).
        cluster: address of a Dask scheduler; empty: a local cluster for this run.
        workers: worker processes of the local cluster (ignored with `cluster`).
        loader: cube loader.
    """
    log = get_run_logger()
    settings = Settings()
    registry = Registry.from_settings(settings)
    known = registry.names()
    names = list(dict.fromkeys(sites)) if sites else known
    unknown = [n for n in names if n not in known]
    if unknown:  # before any site runs
        raise NampoError(
            f"unknown sites {unknown}; registered sites in {registry.url}: "
            f"{', '.join(known) or 'none'}"
        )
    if not names:
        log.warning("no sites in %s: nothing to monitor", registry.url)
        return []
    options = {
        "through_month": through_month,
        "lookback_months": lookback_months,
        "catalog": catalog,
        "catalog_url": catalog_url,
        "max_cloud": max_cloud,
        "workers": workers,
        "loader": loader,
    }
    rows: dict[str, dict] = {}
    with _cluster(cluster, workers) as address:
        options["cluster"] = address
        log.info("monitoring %d sites on the Dask cluster at %s", len(names), address)
        waiting, running = list(names), {}
        while waiting or running:
            while waiting and len(running) < max_sites_at_once:
                name = waiting.pop(0)
                running[name] = monitor_site.with_options(task_run_name=name).submit(name, options)
            done = next(as_completed(list(running.values())))
            name = next(n for n, f in running.items() if f is done)
            del running[name]
            rows[name] = _row(name, done, settings)
    table = [rows[n] for n in names]
    create_table_artifact(
        table, key="sites", description=f"Monitoring of {len(names)} sites from {registry.url}"
    )
    failed = [r["site"] for r in table if r["status"] != "completed"]
    for r in table:
        log.info("%s: %s", r["site"], r)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(names)} sites failed: {', '.join(failed)}")
    return table


def _row(name: str, future, settings: Settings) -> dict:
    future.wait()  # done: this takes its final state (else `state` asks the server)
    state = future.state
    if state.is_completed():
        s = future.result()
        return {
            "site": name,
            "status": "completed",
            "units recomputed": s["done"],
            "units complete": s["skipped"],
            "new scenes": s["new_scenes"],
            "new events": s.get("new_events", 0),
            "failures": "",
            "store": s["store"],
        }
    return {
        "site": name,
        "status": "failed",
        "units recomputed": 0,
        "units complete": 0,
        "new scenes": 0,
        "new events": 0,
        "failures": (state.message or state.name)[:500],
        "store": settings.store_url(name),
    }
