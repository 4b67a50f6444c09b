"""The site's event files in the store (``nampo/events/events.{parquet,geojson}``): written
whole, the GeoJSON last, and when they were written."""

from __future__ import annotations

from collections.abc import Mapping

from nampo.errors import StoreError
from nampo.io.store.layout import RECORDS_DIR
from nampo.io.store.objects import Objects, explain

__all__ = [
    "EVENTS_DIR",
    "EVENT_FILES",
    "HISTORY_DIR",
    "events_file",
    "events_history",
    "events_written_at",
    "write_events",
    "write_history",
]

EVENTS_DIR = f"{RECORDS_DIR}/events"
"""The folder of the site's events."""
HISTORY_DIR = f"{EVENTS_DIR}/history"
"""The events as they were before each run that changed them: ``<run id>.geojson``."""
EVENT_FILES = ("events.parquet", "events.geojson")
"""The site's events, as GeoParquet and GeoJSON, written in this order (the GeoJSON last:
it is what :func:`events_file` readers wait for)."""


def write_events(objects: Objects, files: Mapping[str, bytes]) -> list[str]:
    """Store the site's events (`files` by name among :data:`EVENT_FILES`), replacing
    earlier ones, each object whole; the URLs written."""
    unknown = sorted(set(files) - set(EVENT_FILES))
    if unknown:
        raise StoreError(f"events files are {', '.join(EVENT_FILES)}, not {', '.join(unknown)}")
    keys = {f"{EVENTS_DIR}/{n}": files[n] for n in EVENT_FILES if n in files}
    try:
        for key, data in keys.items():  # one at a time: the GeoJSON after the Parquet
            objects.put_many({key: data})
    except Exception as exc:
        raise StoreError(
            f"writing events to {objects.url} failed: {explain(exc, objects.location)}"
        ) from exc
    return [f"{objects.url}/{k}" for k in keys]


def events_file(objects: Objects, name: str = "events.geojson") -> bytes | None:
    """The stored events file `name` (None when events were never written)."""
    if name not in EVENT_FILES:
        raise StoreError(f"events files are {', '.join(EVENT_FILES)}, not {name!r}")
    return objects.get(f"{EVENTS_DIR}/{name}")


def events_written_at(objects: Objects) -> float | None:
    """When the stored events were written (POSIX s), None when there are none."""
    return objects.modified(f"{EVENTS_DIR}/events.geojson")


def write_history(objects: Objects, run_id: str, geojson: bytes) -> str:
    """Keep `geojson`, the events before run `run_id` changed them; the URL written."""
    if not run_id or "/" in run_id:
        raise StoreError(f"run id {run_id!r} cannot name a history file")
    key = f"{HISTORY_DIR}/{run_id}.geojson"
    try:
        objects.put_many({key: geojson})
    except Exception as exc:
        raise StoreError(
            f"writing the events history to {objects.url} failed: {explain(exc, objects.location)}"
        ) from exc
    return f"{objects.url}/{key}"


def events_history(objects: Objects) -> dict[str, float | None]:
    """Run id -> when it was kept (POSIX s), of every kept list of events."""
    out = {}
    for key in objects.keys_under(HISTORY_DIR):
        name = key.rsplit("/", 1)[-1]
        if name.endswith(".geojson"):
            out[name[: -len(".geojson")]] = objects.modified(f"{HISTORY_DIR}/{name}")
    return dict(sorted(out.items(), key=lambda kv: kv[1] or 0))
