"""The report's page (a jinja2 template, ``templates/index.html.j2``) and its numbers as
JSON (``report.json``): both from the same :class:`~nampo.report.data.ReportData`."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from nampo.analysis.events import describe
from nampo.report.data import ACTIVITY, ReportData
from nampo.report.maps import TYPE_COLOURS

__all__ = [
    "TEMPLATES",
    "fmt",
    "render",
    "numbers",
]

TEMPLATES = Path(__file__).parent / "templates"


def fmt(value, digits: int = 2) -> str:
    """A number as the page shows it ("" when there is none)."""
    return "" if value is None else f"{value:.{digits}f}"


def _score(score: dict | None) -> dict | None:
    if score is None:
        return None
    small = score["min_area_m2"]
    return {
        **score,
        "missed": [
            t["id"] for t in score["truth_events"] if t["area_m2"] >= small and not t["detected"]
        ],  # fmt: skip
    }


def _said(data: ReportData) -> dict[str, str]:
    """Each event as an analyst would say it (:func:`nampo.analysis.events.describe`)."""
    titles = {name: title for name, title, _ in data.site.facilities}
    return {e.id: describe(e, titles) for e in data.events}


def render(data: ReportData, images: dict, exports: list[tuple[str, str]], folder: Path) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    cov = data.coverage
    return env.get_template("index.html.j2").render(
        site=data.site,
        crs_name=data.site.grid.crs.name,
        store_url=data.store_url,
        period=data.period,
        generated=data.generated,
        notes=data.notes,
        overview=images["overview"],
        chips=images["chips"],
        series=images["series"],
        events=data.events,
        said=_said(data),
        events_source=data.events_source,
        facilities=data.facilities,
        score=_score(data.score),
        colours=TYPE_COLOURS,
        activity_labels=ACTIVITY,
        px_ha=data.site.grid.resolution**2 / 1e4,
        done_units=len(cov.done),
        tiles=cov.tiles,
        missing=cov.missing,
        exports=exports,
        folder=folder,
        fmt=fmt,
    )


def numbers(data: ReportData) -> dict:
    """Everything the page says in numbers, as JSON."""
    period = data.period
    return {
        "site": data.site.name,
        "store": data.store_url,
        "period": [f"{m:%Y-%m}" for m in period] if period else None,
        "notes": data.notes,
        "missing": data.coverage.missing,
        "overview_month": f"{data.overview.month:%Y-%m}" if data.overview else None,
        "events": [e.properties() for e in data.events],
        "events_source": data.events_source,
        "facilities": [
            {
                "name": f.name,
                "pixels": f.pixels,
                "months": [f"{m:%Y-%m}" for m in f.months],
                "class_ha": f.class_ha,
                "unseen_ha": f.unseen_ha,
                "clear_obs": f.clear_obs,
                "all_obs": f.all_obs,
                "activity": {
                    name: {"dates": [d.isoformat() for d in dates], "values": values}
                    for name, (dates, values) in f.activity.items()
                },
            }
            for f in data.facilities
        ],
        "score": data.score,
    }
