"""The backfill flow: compute a site's (tile, month) units over a period, on demand.

Started from the Prefect UI (deployment ``nampo-backfill/backfill``), the API or the
command line. Parameters are typed, so the UI draws a form and the server refuses values
of the wrong shape; what the types cannot say (the period's order, a catalog without
scenes, a store that cannot be written) is checked by the library before any unit runs.
Completed units are skipped unless forced, so a backfill can be repeated or resumed, and
two backfills over overlapping periods leave the store as one would.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.params import (
    CatalogName,
    CloudLimit,
    LoaderName,
    Month,
    SiteName,
    StalePolicy,
    Workers,
    month,
)
from flows.sites import catalog_for, registered
from flows.units import run_plan, task_runner
from nampo.io.cube.reading import Reading
from nampo.io.store import Store, StoreLocation
from nampo.run.plan import plan_run, validate_period
from nampo.run.results import RunReport, finish_run
from nampo.settings import Settings

__all__ = ["backfill", "summarise"]


@flow(name="nampo-backfill", log_prints=True)
def backfill(
    first_month: Month,
    last_month: Month,
    site: SiteName = "nampo",
    catalog: CatalogName | None = None,
    catalog_url: str | None = None,
    store: str | None = None,
    max_cloud: CloudLimit = None,
    force: bool = False,
    cluster: str | None = None,
    workers: Workers = 2,
    loader: LoaderName = "stackstac",
    stale: StalePolicy = "recompute",
) -> dict:
    """Compute every unit of `site` from `first_month` to `last_month` into its store.

    Args:
        first_month: first month of the period (YYYY-MM).
        last_month: last month of the period (YYYY-MM).
        site: a registered site (`nampo site list`).
        catalog: STAC catalog profile; "local" is the local STAC API (default: the site's).
        catalog_url: STAC API URL (default: the profile's, or the running local API).
        store: Zarr store URL: a path, file:// or s3:// (default: NAMPO_STORES/<site>.zarr).
        max_cloud: skip scenes cloudier than this (eo:cloud_cover, percent).
        force: recompute units that are already complete.
        cluster: address of a Dask scheduler (tcp://host:8786); empty: a local cluster.
        workers: worker processes of the local cluster (ignored with `cluster`).
        loader: cube loader (stackstac by default; odc-stac for comparison).
        stale: units written by an older product version: recompute, or leave and report.
    """
    settings = Settings()
    definition = registered(settings, site)  # an unknown site fails here, before any unit
    first, last = month(first_month), month(last_month)
    validate_period(first, last)  # before the catalog is asked anything
    location = StoreLocation.from_settings(store or settings.store_url(site), settings)
    plan = plan_run(
        definition.to_site(),
        first,
        last,
        store=Store(location),
        spec=catalog_for(settings, definition, catalog, catalog_url, max_cloud),
        loader=loader,
        force=force,
        stale=stale,
        reading=Reading.from_settings(settings),
    )
    results = run_plan(plan, task_runner(cluster, workers))
    report = finish_run(plan, results, flow="backfill")
    return summarise(report, location.url, plan.stale, plan.stale_policy)


def summarise(
    report: RunReport, store_url: str, stale: tuple[str, ...] = (), policy: str = "recompute"
) -> dict:
    """Log and publish (a table artifact) each unit's outcome; fail the flow run when a
    unit failed, after the run's metadata is in the store."""
    log = get_run_logger()
    rows = [
        {
            "unit": r.unit_id,
            "status": r.status,
            "scenes": r.scenes,
            "seconds": round(r.seconds, 1),
            "skipped scenes": len(r.skipped_scenes),
            "error": r.error or "",
        }
        for r in sorted(report.results, key=lambda r: r.unit_id)
    ]
    create_table_artifact(
        rows, key="units", description=f"Units of run {report.run_id} into {store_url}"
    )
    summary = {
        "run_id": report.run_id,
        "store": store_url,
        "done": report.count("done"),
        "skipped": report.count("skipped"),
        "failed": report.count("failed"),
        "stale": list(stale),
        "stale_policy": policy,
    }
    if stale and policy == "leave":
        log.warning(
            "%d units of the period were written by an older product version and are "
            "left as they are (stale=leave): %s",
            len(stale),
            ", ".join(stale[:10]),
        )
    log.info(
        "run %s: %d units computed, %d already complete, %d failed; store %s",
        report.run_id,
        summary["done"],
        summary["skipped"],
        summary["failed"],
        store_url,
    )
    if report.failed:
        failed = ", ".join(f"{r.unit_id} ({r.error})" for r in report.failed[:5])
        raise RuntimeError(f"{len(report.failed)} units failed: {failed}")
    return summary
