"""The report flow: write a site's report from its store (``nampo.report``) and publish
what an analyst looks at first to the Prefect UI: the events table and a link to the
report (artifacts ``events`` and ``report``; the backfill publishes the ``units`` table).

Run by ``nampo-flows demo`` after its backfill, and served as the ``report`` deployment.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_table_artifact

from flows.params import SiteName
from flows.sites import registered
from nampo.analysis.dating import ChangeParams
from nampo.io.store import Store, StoreLocation
from nampo.report import Report, build_report
from nampo.scenario.known_sites import scenario_archive, truth_score
from nampo.settings import Settings


def default_report(settings: Settings, site: str) -> str:
    return str(settings.home / "reports" / site)


@flow(name="nampo-report", log_prints=True)
def report(site: SiteName = "nampo", store: str | None = None, out: str | None = None) -> str:
    """Write the report of `site`'s store and publish its events and a link to it.

    Args:
        site: a registered site (`nampo site list`).
        store: Zarr store URL (default: NAMPO_STORES/<site>.zarr).
        out: report folder (default: NAMPO_HOME/reports/<site>); replaced when it exists.

    Returns the path of the report's index.html.
    """
    settings = Settings()
    the_site = registered(settings, site).to_site()  # an unknown site fails here
    location = StoreLocation.from_settings(store or settings.store_url(site), settings)
    # A built-in site's report is scored when its scenario's archive (with truth) is here.
    score = truth_score(scenario_archive(site, settings.archives_dir))
    result = build_report(
        Store(location),
        Path(out or default_report(settings, site)),
        the_site,
        change=ChangeParams.for_site(the_site),
        score=score,
    )
    publish(result, site)
    return str(result.index)


def event_rows(result: Report) -> list[dict]:
    return [
        {
            "event": e.id,
            "type": e.type,
            "facility": e.facility or "",
            "area m2": round(e.area_m2),
            "window start": e.window_start.isoformat(),
            "window end": e.window_end.isoformat(),
            "date": e.date.isoformat(),
            "before -> after": f"{e.class_before} -> {e.class_after}",
            "confidence": e.confidence,
        }
        for e in result.data.events
    ]


def publish(result: Report, site: str) -> None:
    """The events table and the report's link as artifacts, and the notes in the log."""
    log = get_run_logger()
    data = result.data
    period = f"{data.period[0]:%Y-%m}..{data.period[1]:%Y-%m}" if data.period else "no month"
    create_table_artifact(
        event_rows(result),
        key="events",
        description=f"Events of {site} over {period} ({len(data.events)}), from {data.store_url}",
    )
    create_link_artifact(
        result.index.as_uri(),
        link_text=f"Report of {site} ({period})",
        key="report",
        description=f"Open {result.index} in a browser (offline), or serve it: "
        f"`python -m http.server -d {result.folder}`",
    )
    for note in data.notes:
        log.warning("report: %s", note)
    log.info(
        "report of %s: %d events, written in %.1f s: %s",
        site,
        len(data.events),
        result.seconds["total"],
        result.index,
    )
