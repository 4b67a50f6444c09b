"""What a monitoring run learnt about a site: its changes dated again from the store, the
events that are new (:mod:`nampo.analysis.known_events`), the ones worth announcing (the
site's alert rule), and the site's events kept in the store, the previous list kept as
history when it changed (``nampo/events/history/<run id>.geojson``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from nampo.analysis.dating import ChangeParams
from nampo.analysis.events import (
    Event,
    describe,
    save_events,
    site_events,
    stored_events,
    to_geojson,
)
from nampo.analysis.known_events import carry_ids
from nampo.sites import Site

__all__ = ["News", "update_events"]


@dataclass
class News:
    events: list[Event] = field(default_factory=list)
    """Every event of the site, ids carried over from the stored ones."""
    new: list[Event] = field(default_factory=list)
    """Events no stored event is the same change as."""
    announce: list[Event] = field(default_factory=list)
    """New events the alert rule wants (none at a store's first dating)."""
    first: bool = False
    """Whether the store had no events before: its whole history was dated now."""
    history: str | None = None
    """Where the previous list was kept (None: the events did not change)."""
    sentences: dict[str, str] = field(default_factory=dict)
    """Event id -> the sentence an analyst reads."""


def update_events(store, site: Site, run_id: str) -> News:
    """Date the store's changes, carry the stored events' ids, store the events (the
    previous list kept as history when it changed) and pick what to announce: the new
    events the site's alert rule wants.

    The first dating of a store (no events stored yet) finds its whole history new: it is
    stored as what is known, and nothing is announced, so a site added with years of data
    does not flood anyone; from then on every new change is announced once.
    """
    _, found = site_events(store, facilities=site.facilities, change=ChangeParams.for_site(site))
    stored = stored_events(store)
    known = stored or []
    events, new = carry_ids(found, known)
    news = News(events=events, new=new, first=stored is None)
    before = store.events_file("events.geojson")
    after = json.dumps(to_geojson(events), indent=1).encode()
    if before != after:
        if before is not None:
            news.history = store.write_events_history(run_id, before)
        save_events(store, events)
    if not news.first:
        news.announce = [e for e in new if site.alerts.wants(e.type, e.area_m2, e.facilities)]
    titles = {name: title for name, title, _ in site.facilities}
    news.sentences = {e.id: describe(e, titles) for e in events}
    return news
