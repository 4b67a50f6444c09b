"""The pgstac database: installed or upgraded with pypgstac's migrations, prepared with
nampo's settings, and loaded with archives (``collection.json``, ``items.ndjson``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from nampo.errors import ServiceError
from nampo.services.pgstac.common import one_line, redact
from nampo.services.pgstac.endpoint import StacEndpoint

__all__ = ["load", "pgstac_db", "prepare_database"]

# The numeric queryable makes pgstac compare and sort eo:cloud_cover as a number: without
# it "9.5" sorts after "10.0". Context 'on' makes every search return numberMatched; a
# zero stats TTL stops pgstac from serving a count cached before the last load.
_PREPARE_SQL = [
    (
        "SELECT upsert_queryable('eo:cloud_cover', %s::jsonb, 'to_float')",
        (
            json.dumps(
                {
                    "title": "Cloud cover",
                    "description": "Percentage of the scene covered by clouds",
                    "type": "number",
                    "minimum": 0,
                    "maximum": 100,
                }
            ),
        ),
    ),
    (
        "INSERT INTO pgstac_settings (name, value) VALUES ('context', 'on'), "
        "('context_stats_ttl', '0 seconds') "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (),
    ),
]


def load(
    endpoint: StacEndpoint, archive_dir: Path, only: Callable[[dict], bool] | None = None
) -> int:
    """Upsert ``collection.json`` and ``items.ndjson`` of `archive_dir` into pgstac.

    Loading the same archive again changes nothing (items are upserted by id). `only`
    keeps the items for which it is true (a catalog that grows over time: load part of an
    archive now, the rest later).

    Returns
    -------
    int
        Number of items loaded.

    Examples
    --------
    >>> load(endpoint, Path("archives/nampo-small"))   # doctest: +SKIP
    212
    """
    from pypgstac.load import Loader, Methods

    archive_dir = Path(archive_dir)
    collection_path = archive_dir / "collection.json"
    items_path = archive_dir / "items.ndjson"
    for path in (collection_path, items_path):
        if not path.is_file():
            raise ServiceError(f"cannot load archive {archive_dir}: {path.name} is missing")
    # We parse the JSON ourselves and hand pypgstac dicts: its file reader rewrites escaped
    # backslashes inside strings, and our errors can name the bad line.
    collection = _read_json(collection_path)
    items = [_read_json(items_path, line, n) for n, line in _numbered_lines(items_path)]
    if only is not None:
        items = [item for item in items if only(item)]
    try:
        with pgstac_db(endpoint.dsn) as db:
            loader = Loader(db=db)
            loader.load_collections(iter([collection]), Methods.upsert)
            loader.load_items(iter(items), Methods.upsert)
    except ServiceError:
        raise
    except Exception as exc:  # psycopg and pgstac errors alike
        raise ServiceError(f"loading {archive_dir} into pgstac failed: {one_line(exc)}") from exc
    return len(items)


def prepare_database(dsn: str) -> None:
    """Install or upgrade pgstac (like ``pypgstac migrate``) and apply our settings."""
    from pypgstac.migrate import Migrate

    try:
        with pgstac_db(dsn) as db:
            Migrate(db).run_migration()
            conn = db.connect()
            with conn.transaction():
                for sql, params in _PREPARE_SQL:
                    conn.execute(sql, params)
    except ServiceError:
        raise
    except Exception as exc:  # psycopg and pgstac errors alike
        raise ServiceError(f"preparing pgstac in {redact(dsn)} failed: {one_line(exc)}") from exc


@contextlib.contextmanager
def pgstac_db(dsn: str) -> Iterator:
    """A pypgstac ``PgstacDB`` on a one-connection pool that is closed afterwards.

    ``PgstacDB`` opens a pool of its own that its ``__exit__`` forgets without closing
    (connections and pool threads would outlive the call), so we own the pool.
    """
    # Imported here: pypgstac pulls in psycopg, smart_open and fire, which only this needs.
    import psycopg
    from psycopg_pool import ConnectionPool
    from pypgstac.db import PgstacDB

    # Fail fast: a pool would keep retrying a stopped server until its timeout.
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        raise ServiceError(
            f"cannot connect to PostgreSQL at {redact(dsn)}: {str(exc).strip().splitlines()[0]}"
        ) from exc
    with ConnectionPool(dsn, min_size=1, max_size=1, open=True, timeout=15) as pool:
        db = PgstacDB(dsn=dsn, pool=pool)
        try:
            db.connect()
            yield db
        finally:
            db.disconnect()


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path) as handle:
        for n, line in enumerate(handle, start=1):
            if line.strip():
                yield n, line


def _read_json(path: Path, text: str | None = None, line: int | None = None) -> dict:
    try:
        return json.loads(path.read_text() if text is None else text)
    except (OSError, ValueError) as exc:
        where = f"{path}:{line}" if line else str(path)
        raise ServiceError(f"cannot read STAC JSON {where}: {exc}") from exc
