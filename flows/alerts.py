"""New changes announced through Prefect's own machinery: each new event a monitoring run
finds (:func:`nampo.analysis.news.update_events`) becomes a Prefect event
``nampo.change.new`` (resource: the site and facility; payload: type, area, window,
confidence, the sentence, a link to the report) and a line of the run's ``new-events``
markdown artifact. The automation in ``infra/alerts/automation.yaml`` turns the events
into notifications; :func:`create_alerting` (``nampo-flows alerts``) creates it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from nampo.analysis.events import Event
from nampo.analysis.news import News
from nampo.sites import Site

__all__ = ["AUTOMATION", "EVENT_NAME", "announce", "create_alerting", "payload"]

EVENT_NAME = "nampo.change.new"
AUTOMATION = Path(__file__).resolve().parents[1] / "infra" / "alerts" / "automation.yaml"
BLOCK_NAME = "nampo-alerts"


def payload(site: Site, e: Event, sentence: str, report: str) -> dict[str, Any]:
    return {
        "site": site.name,
        "site_title": site.title,
        "facility": e.facility or "",
        "event_id": e.id,
        "type": e.type,
        "area_m2": round(e.area_m2),
        "window_start": e.window_start.isoformat(),
        "window_end": e.window_end.isoformat(),
        "date": e.date.isoformat(),
        "confidence": e.confidence,
        "sentence": sentence.replace('"', "'"),
        "report": report,
    }


def announce(site: Site, news: News, report: str) -> int:
    """Emit each announced event and write the run's markdown artifact; how many."""
    titles = {name: title for name, title, _ in site.facilities}
    for e in news.announce:
        facility = e.facility or "site"
        resource = {
            "prefect.resource.id": f"nampo.site.{site.name}.{facility}",
            "prefect.resource.name": f"{site.title}: {titles.get(facility, facility)}",
            "nampo.site": site.name,
            "nampo.facility": e.facility or "",
        }
        emit_event(
            event=EVENT_NAME,
            resource=resource,
            payload=payload(site, e, news.sentences[e.id], report),
        )
    if news.announce:
        lines = [f"# New changes at {site.title}", ""]
        lines += [
            f"- **{e.id}** ({e.type}, {e.area_m2:,.0f} m², "
            f"{titles.get(e.facility or '', 'the site')}): {news.sentences[e.id]}"
            for e in news.announce
        ]
        lines += ["", f"Report: {report}"]
        create_markdown_artifact(
            "\n".join(lines),
            key="new-events",
            description=f"{len(news.announce)} new changes at {site.name}",
        )
    return len(news.announce)


def create_alerting(block, automation: Path = AUTOMATION) -> str:
    """Save `block` (a notification block) as ``nampo-alerts`` and create the automation
    of `automation` with it, replacing one of the same name; the automation's id."""
    from prefect.automations import Automation

    block_id = block.save(BLOCK_NAME, overwrite=True)
    doc = yaml.safe_load(automation.read_text())
    for action in doc.get("actions", []):
        if action.get("type") == "send-notification":
            action["block_document_id"] = str(block_id)
    try:
        Automation.read(name=doc["name"]).delete()
    except ValueError:
        pass  # none yet
    return str(Automation.model_validate(doc).create().id)
