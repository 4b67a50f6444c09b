"""What a monitoring run learnt about a site: its changes dated again from the store, the
events that are new (:mod:`nampo.analysis.known_events`), the ones worth announcing (the
site's alert rule), and the site's events kept in the store, the previous list kept as
history when it changed (``nampo/events/history/<run id>.geojson``)."""

from __future__ import annotations

import datetime as dt
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
    """New events the alert rule wants, completed within the run's months."""
    history: str | None = None
    """Where the previous list was kept (None: the events did not change)."""
    sentences: dict[str, str] = field(default_factory=dict)
    """Event id -> the sentence an analyst reads."""


def update_events(
    store, site: Site, run_id: str, window: tuple[dt.date, dt.date] | None = None
) -> News:
    """Date the store's changes, carry the stored events' ids, store the events (the
    previous list kept as history when it changed) and pick what to announce: new
    events the site's alert rule wants whose change completed (the first clear month
    after it) within `window` (first and last day of the run's months; None: any time).

    A first dating of a store finds its whole history new; only what completed within
    the run's months is announced, so a site added with years of data does not flood.
    """
    _, found = site_events(store, facilities=site.facilities, change=ChangeParams.for_site(site))
    known = stored_events(store) or []
    events, new = carry_ids(found, known)
    news = News(events=events, new=new)
    before = store.events_file("events.geojson")
    after = json.dumps(to_geojson(events), indent=1).encode()
    if before != after:
        if before is not None:
            news.history = store.write_events_history(run_id, before)
        save_events(store, events)
    rule = site.alerts
    for e in new:
        inside = window is None or window[0] <= e.window_end <= window[1] + dt.timedelta(days=31)
        if inside and rule.wants(e.type, e.area_m2, e.facilities):
            news.announce.append(e)
    titles = {name: title for name, title, _ in site.facilities}
    news.sentences = {e.id: describe(e, titles) for e in events}
    return news
