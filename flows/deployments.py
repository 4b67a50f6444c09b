"""The two deployments, served from this process (``python -m flows.deployments``): the
backfill, started on demand with parameters, and the monitoring flow on its cron schedule.
Runs execute as child processes of this one; it needs ``PREFECT_API_URL``. In production
the same deployments come from ``infra/prefect.yaml`` (docs/deploy.md).
"""

from __future__ import annotations

from prefect import serve
from prefect.types.entrypoint import EntrypointType

from flows.backfill import backfill
from flows.monitor import monitor

__all__ = ["MONITOR_CRON", "deployments", "main"]

MONITOR_CRON = "0 6 * * *"
"""Every day at 06:00 UTC: Sentinel-2 scenes of a day are published within hours."""


def deployments():
    # Module entrypoints: a run imports ``flows.backfill`` like any other process (the Dask
    # scheduler and workers unpickle its tasks by that name), not a file loaded by path.
    return [
        backfill.to_deployment(
            name="backfill",
            description="Compute a site's units over a period (skips completed units).",
            tags=["nampo", "backfill"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        monitor.to_deployment(
            name="monitor",
            description="Bring a site's store up to date with its catalog.",
            tags=["nampo", "monitor"],
            entrypoint_type=EntrypointType.MODULE_PATH,
            cron=MONITOR_CRON,
        ),
    ]


def main() -> None:
    serve(*deployments(), limit=4)


if __name__ == "__main__":
    main()
