"""The store's JSON records under ``nampo/``: a completion record per unit, the activity a
month unit counted, and run metadata. The only place the store builds and parses unit ids."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nampo.errors import StoreError
from nampo.io.store.layout import RECORDS_DIR
from nampo.io.store.objects import Objects, explain
from nampo.run.units import AnyUnit, BaselineUnit, Unit, unit_from_id

__all__ = [
    "ACTIVITY_DIR",
    "RUNS_DIR",
    "UNITS_DIR",
    "activity",
    "activity_json",
    "activity_key",
    "baseline_activity",
    "baseline_head",
    "done",
    "last_completed_at",
    "month_head",
    "record",
    "record_json",
    "record_key",
    "runs",
    "write_run",
]

UNITS_DIR = f"{RECORDS_DIR}/units"
"""Completion records: ``<tile>/<YYYY-MM>.json`` and ``<tile>/baseline.json``."""
ACTIVITY_DIR = f"{RECORDS_DIR}/activity"
"""Activity of month units, ``<tile>/<YYYY-MM>.json``, and the baselines' looks at the
berths, ``<tile>/baseline.json``."""
RUNS_DIR = f"{RECORDS_DIR}/runs"
"""Run metadata: ``<run id>.json``."""

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_RESERVED = ("unit", "kind", "tile", "month", "written")


# ---------------------------------------------------------------------------- unit ids


def _parse_unit_id(unit_id: str) -> AnyUnit | None:
    """The unit of an id such as ``x01y02/2017-05``, None when `unit_id` is not one. Every
    id the store reads goes through here (and so through :func:`nampo.run.units.unit_from_id`)."""
    try:
        return unit_from_id(unit_id)
    except ValueError:
        return None


def _id_of_key(name: str, baseline: bool = True) -> str | None:
    """The unit id of a record name (``<tile>/<period>.json``), None when it is not one
    (or is a baseline's, unless `baseline`)."""
    if not name.endswith(".json"):
        return None
    unit = _parse_unit_id(name.removesuffix(".json"))
    if unit is None or (not baseline and isinstance(unit, BaselineUnit)):
        return None
    return unit.id


def month_head(tile_id: str, month: dt.date) -> dict[str, str]:
    """The store's fields of a month unit's record."""
    unit = Unit(month, tile_id)
    return {"unit": unit.id, "kind": unit.kind, "tile": tile_id, "month": f"{month:%Y-%m}"}


def baseline_head(tile_id: str) -> dict[str, str]:
    """The store's fields of a tile's baseline record."""
    unit = BaselineUnit(tile_id)
    return {"unit": unit.id, "kind": unit.kind, "tile": tile_id}


def record_key(unit_id: str) -> str:
    """The key of a unit's completion record (StoreError when `unit_id` is not a unit id)."""
    if _parse_unit_id(unit_id) is None:
        raise StoreError(f"{unit_id!r} is not a unit id (like x01y02/2017-05 or x01y02/baseline)")
    return f"{UNITS_DIR}/{unit_id}.json"


def activity_key(unit_id: str) -> str:
    """The key of a unit's activity document (a month's, or a baseline's looks at the
    berths)."""
    return f"{ACTIVITY_DIR}/{unit_id}.json"


# ---------------------------------------------------------------------------- reading


def done(objects: Objects) -> set[str]:
    """Ids of the units with a completion record (one listing)."""
    return {uid for key in objects.keys_under(UNITS_DIR) if (uid := _id_of_key(key))}


def record(objects: Objects, unit_id: str) -> dict[str, Any]:
    """The completion record of a unit (StoreError when the unit is not done)."""
    raw = objects.get(record_key(unit_id))
    if raw is None:
        raise StoreError(f"unit {unit_id} has no completion record in {objects.url}")
    return json.loads(raw)


def all_records(objects: Objects) -> dict[str, dict[str, Any]]:
    """The completion record of every complete unit, by unit id (one listing, one read
    per unit, read concurrently)."""
    keys = {record_key(uid): uid for uid in done(objects)}
    return {keys[k]: json.loads(v) for k, v in objects.get_many(sorted(keys)).items()}


def last_completed_at(objects: Objects) -> float | None:
    """When the newest completion record was written (POSIX s), None before any."""
    return max(objects.modified_under(UNITS_DIR), default=None)


def activity(objects: Objects) -> list[dict[str, Any]]:
    """The activity documents of every complete month unit, in unit order."""
    keys = {uid: k for k in objects.keys_under(ACTIVITY_DIR) if (uid := _id_of_key(k, False))}
    complete = done(objects)
    wanted = sorted(f"{ACTIVITY_DIR}/{k}" for uid, k in keys.items() if uid in complete)
    return [json.loads(v) for _, v in sorted(objects.get_many(wanted).items())]


def baseline_activity(objects: Objects, tile_id: str) -> dict[str, Any] | None:
    """The activity document of a tile's complete baseline, None without one."""
    unit_id = BaselineUnit(tile_id).id
    if objects.get(record_key(unit_id)) is None:
        return None
    raw = objects.get(activity_key(unit_id))
    return None if raw is None else json.loads(raw)


def runs(objects: Objects) -> dict[str, dict[str, Any]]:
    """Every run's metadata, by run id (in id order)."""
    keys = [k for k in objects.keys_under(RUNS_DIR) if _RUN_ID_RE.match(k) and k.endswith(".json")]
    raw = objects.get_many([f"{RUNS_DIR}/{k}" for k in sorted(keys)])
    return {k.rsplit("/", 1)[-1][:-5]: json.loads(v) for k, v in raw.items()}


# ---------------------------------------------------------------------------- writing


def write_run(objects: Objects, run_id: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Store (or replace) the metadata of a run; the document as written."""
    if not _RUN_ID_RE.match(run_id):
        raise StoreError(f"run id {run_id!r} must be letters, digits, '.', '_' or '-' (up to 128)")
    body = record_json({"run": run_id}, meta, f"run {run_id}")
    try:
        objects.put_many({f"{RUNS_DIR}/{run_id}.json": body})
    except Exception as exc:
        raise StoreError(
            f"writing run {run_id} to {objects.url} failed: {explain(exc, objects.location)}"
        ) from exc
    return json.loads(body)


def record_json(head: Mapping[str, Any], fields: Mapping[str, Any] | None, what: str) -> bytes:
    """A record: the store's `head` fields, the time written, then the caller's `fields`
    (StoreError naming `what` when they clash with the store's or are not JSON)."""
    fields = dict(fields or {})
    clash = sorted(set(fields) & (set(head) | set(_RESERVED)))
    if clash:
        raise StoreError(f"{what}: record fields {', '.join(clash)} are reserved by the store")
    doc = {**head, "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **fields}
    try:
        return json.dumps(doc, default=_json_default, indent=1, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what}: record is not JSON: {exc}") from None


def activity_json(unit_id: str, doc: Mapping[str, Any]) -> bytes:
    """A unit's activity document: compact and without a timestamp (a re-run writes the
    same bytes)."""
    try:
        body = {"unit": unit_id, **doc}
        return json.dumps(
            body, default=_json_default, allow_nan=False, separators=(",", ":")
        ).encode()
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{unit_id}: activity is not JSON: {exc}") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
