"""The deployments, served from this process (``python -m flows.deployments``): the
backfill and the report, started on demand with parameters; the monitor of one site, on
demand; and the monitor of every watched site on its cron schedule. Runs execute as child
processes of this one; it needs ``PREFECT_API_URL``. In production the same deployments
come from ``infra/prefect.yaml`` (docs/deploy.md).

The forms' site fields are dropdowns of the sites registered when the deployments are
registered (each start of this process); the runs check the name against the registry
when they start, so a site added since is taken by the API and the command line at once.
"""

from __future__ import annotations

from prefect import serve
from prefect.types.entrypoint import EntrypointType

from flows.backfill import backfill
from flows.monitor import monitor
from flows.monitor_sites import monitor_sites
from flows.report import report
from flows.sites import site_choices, with_site_choices
from nampo.settings import Settings

__all__ = ["MONITOR_CRON", "deployments", "main"]

MONITOR_CRON = "0 6 * * *"
"""Every day at 06:00 UTC: Sentinel-2 scenes of a day are published within hours."""


def deployments(settings: Settings | None = None):
    # Module entrypoints: a run imports ``flows.backfill`` like any other process (the Dask
    # scheduler and workers unpickle its tasks by that name), not a file loaded by path.
    common = {"entrypoint_type": EntrypointType.MODULE_PATH}
    out = [
        backfill.to_deployment(
            name="backfill",
            description="Compute a site's units over a period (skips completed units).",
            tags=["nampo", "backfill"],
            **common,
        ),
        report.to_deployment(
            name="report",
            description="Write a site's report from its store.",
            tags=["nampo", "report"],
            **common,
        ),
        monitor.to_deployment(
            name="monitor",
            description="Bring one site's store up to date with its catalog.",
            tags=["nampo", "monitor"],
            **common,
        ),
        monitor_sites.to_deployment(
            name="monitor-sites",
            description="Bring every watched site's store up to date with its catalog.",
            tags=["nampo", "monitor"],
            cron=MONITOR_CRON,
            **common,
        ),
    ]
    names = site_choices(settings or Settings())
    for d in out:
        with_site_choices({"properties": d._parameter_openapi_schema.properties}, names)
    return out


def main() -> None:
    serve(*deployments(), limit=4)


if __name__ == "__main__":
    main()
