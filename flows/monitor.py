"""The monitoring flow, run on a schedule: compute what the catalog has that the store has
not seen.

Each run looks at the last `lookback_months` months up to the current one (scenes are
published days after acquisition and sometimes re-processed), computes the units that are
missing, recomputes the complete units whose month has new scenes (and the month after
each, whose change against the previous month depends on it), and records in the store
what it saw. With nothing new it computes nothing. Then it dates the site's changes
again: the events that are new and that the site's alert rule wants are announced as
Prefect events and a ``new-events`` artifact (flows.alerts); the same run again announces
nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger

from flows.alerts import announce
from flows.backfill import summarise
from flows.params import (
    CatalogName,
    CloudLimit,
    LoaderName,
    LookbackMonths,
    Month,
    SiteName,
    StalePolicy,
    Workers,
    month,
)
from flows.report import default_report
from flows.sites import catalog_for, registered
from flows.units import run_plan, task_runner
from nampo.analysis.news import update_events
from nampo.io.cube.reading import Reading
from nampo.io.store import Store, StoreLocation
from nampo.run.monitor import find_stale, window
from nampo.run.plan import find_scenes, plan_run, validate_period
from nampo.run.results import finish_run
from nampo.run.units import months
from nampo.settings import Settings

__all__ = ["monitor"]


@flow(name="nampo-monitor", log_prints=True)
def monitor(
    site: SiteName = "nampo",
    through_month: Month | None = None,
    lookback_months: LookbackMonths = 2,
    catalog: CatalogName | None = None,
    catalog_url: str | None = None,
    store: str | None = None,
    max_cloud: CloudLimit = None,
    cluster: str | None = None,
    workers: Workers = 2,
    loader: LoaderName = "stackstac",
    stale: StalePolicy = "recompute",
) -> dict:
    """Bring `site`'s store up to date with the catalog for its recent months.

    Args:
        site: a registered site (`nampo site list`).
        through_month: last month to look at (YYYY-MM); empty: the current month (UTC).
        lookback_months: how many months, ending with `through_month`, to check.
        catalog: STAC catalog profile; "local" is the local STAC API (default: the site's).
        catalog_url: STAC API URL (default: the profile's, or the running local API).
        store: Zarr store URL (default: NAMPO_STORES/<site>.zarr).
        max_cloud: skip scenes cloudier than this (eo:cloud_cover, percent).
        cluster: address of a Dask scheduler; empty: a local cluster.
        workers: worker processes of the local cluster (ignored with `cluster`).
        loader: cube loader.
        stale: units written by an older product version: recompute, or leave and report.
    """
    log = get_run_logger()
    settings = Settings()
    definition = registered(settings, site)  # an unknown site fails here, before any unit
    the_site = definition.to_site()
    through = month(through_month) if through_month else dt.datetime.now(dt.UTC).date()
    first, last = window(through, lookback_months)
    validate_period(first, last)
    location = StoreLocation.from_settings(store or settings.store_url(site), settings)
    the_store = Store(location)
    spec = catalog_for(settings, definition, catalog, catalog_url, max_cloud)
    scenes = find_scenes(the_site, first, last, spec)
    newer = find_stale(the_site, the_store, scenes, first, last) if the_store.exists() else None
    plan = plan_run(
        the_site,
        first,
        last,
        store=the_store,
        spec=spec,
        loader=loader,
        stale=stale,
        recompute=newer.recompute if newer else (),
        scenes=scenes,
        reading=Reading.from_settings(settings),
    )
    if newer and newer.new_scenes:
        log.info("new scenes for complete units: %s", newer.new_scenes)
    if newer and newer.baseline_stale:
        log.warning(
            "the baseline period of tiles %s has new scenes: a forced backfill of the "
            "baseline recomputes them (monitoring leaves baselines alone)",
            ", ".join(newer.baseline_stale),
        )
    results = run_plan(plan, task_runner(cluster, workers))
    seen = {
        f"{m:%Y-%m}": sorted(s.id for s in scenes if s.datetime.date().replace(day=1) == m)
        for m in months(first, last)
    }
    report = finish_run(
        plan,
        results,
        flow="monitor",
        new_scenes=newer.new_scenes if newer else {},
        recomputed=sorted(newer.recompute) if newer else [],
        seen=seen,
    )
    summary = summarise(report, location.url, plan.stale, plan.stale_policy)
    # The site's changes dated again and the new ones announced (flows.alerts), unless
    # the run computed nothing: then the store, and so its events, are as they were.
    summary["new_events"] = 0
    if summary["done"] or the_store.events_file("events.geojson") is None:
        news = update_events(the_store, the_site, plan.run_id)
        if news.first:
            log.info("first dating of this store: %d events stored as known", len(news.events))
        index = Path(default_report(settings, site)) / "index.html"
        summary["new_events"] = announce(the_site, news, index.as_uri())
        if news.history:
            log.info("events changed; the previous list is kept at %s", news.history)
    # new: scenes of months the store had complete but had not seen; all, for a new store
    summary["new_scenes"] = sum(len(v) for v in newer.new_scenes.values()) if newer else len(scenes)
    summary["scenes"] = len(scenes)
    return summary
