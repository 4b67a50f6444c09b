"""Event identity across runs: the same change keeps its id, anything else is new."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from shapely.geometry import box

from nampo.analysis.events import Event
from nampo.analysis.known_events import carry_ids


def event(eid: str, kind: str, geom, start: str, end: str) -> Event:
    return Event(
        id=eid, type=kind, class_before="bare", class_after="built", pixels=40,
        area_m2=4000.0, window_start=dt.date.fromisoformat(start),
        window_end=dt.date.fromisoformat(end), date=dt.date.fromisoformat(start),
        facility="quay", facilities=("quay",), confidence=0.9, magnitude=0.1, geometry=geom,
    )  # fmt: skip


def stored(e: Event) -> dict:
    return {**e.properties(), "geometry": e.geometry}


SHEDS = event("E001", "construction", box(0, 0, 10, 10), "2021-09-15", "2021-11-15")
POND = event("E002", "drainage", box(20, 0, 30, 10), "2021-08-15", "2022-01-15")


def test_the_same_change_dated_again_keeps_its_id():
    # one more month of data: the outline loses edge pixels, the window moves a month
    again = [
        replace(SHEDS, id="E001", geometry=box(1, 1, 10, 9), window_end=dt.date(2021, 12, 15)),
        replace(POND, id="E002"),
    ]
    events, new = carry_ids(list(reversed(again)), [stored(SHEDS), stored(POND)])
    assert new == [] and sorted(e.id for e in events) == ["E001", "E002"]
    assert {e.type: e.id for e in events} == {"construction": "E001", "drainage": "E002"}


def test_another_type_place_or_time_is_new_and_takes_the_next_free_id():
    other_type = replace(SHEDS, type="demolition")
    elsewhere = replace(SHEDS, geometry=box(8, 0, 18, 10))  # 20 % of it overlaps: another
    later = replace(SHEDS, window_start=dt.date(2022, 3, 15), window_end=dt.date(2022, 5, 15))
    known = [stored(SHEDS), stored(replace(POND, id="E007"))]
    events, new = carry_ids([other_type, elsewhere, later], known)
    assert [e.id for e in new] == ["E008", "E009", "E010"]
    assert events == new


def test_each_stored_event_is_matched_once_largest_overlap_first():
    half = replace(SHEDS, geometry=box(0, 5, 10, 15))  # shares half of it
    whole = replace(SHEDS, geometry=box(0, 0, 10, 10))
    events, new = carry_ids([half, whole], [stored(SHEDS)])
    assert [e.id for e in events] == ["E002", "E001"] and new == [events[0]]


def test_nothing_known_makes_everything_new():
    events, new = carry_ids([SHEDS, POND], [])
    assert [e.id for e in new] == ["E001", "E002"] and events == new
