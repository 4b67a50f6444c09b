"""An archive's STAC items pointing at the stand-in instead of local files: the same
items, every asset href under the archive folder rewritten to the server's URL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from nampo.errors import ServiceError

__all__ = ["served_items", "write_served_archive"]


def served_items(
    items: Iterable[dict],
    root: Path,
    url_of: Callable[[Path], str],
    collection: str | None = None,
) -> list[dict]:
    """Copies of `items` whose asset hrefs under `root` are ``url_of(path)`` (the
    server's URL of that file); `collection` renames their collection. Hrefs elsewhere
    stay as they are.

    Examples
    --------
    >>> served = served_items(items, archive, server.url_of)   # doctest: +SKIP
    >>> served[0]["assets"]["red"]["href"]                      # doctest: +SKIP
    'http://127.0.0.1:40321/items/S2A_51SYC_20170503_0_L2A/B04.tif'
    """
    root = Path(root).resolve()
    out = []
    for item in items:
        item = json.loads(json.dumps(item))  # a deep copy of plain JSON
        for asset in item.get("assets", {}).values():
            href = asset.get("href", "")
            path = Path(href.removeprefix("file://"))
            if path.is_absolute() and path.resolve().is_relative_to(root):
                asset["href"] = url_of(path)
        if collection is not None:
            item["collection"] = collection
        out.append(item)
    return out


def write_served_archive(
    archive: Path,
    out: Path,
    url_of: Callable[[Path], str],
    collection: str | None = None,
) -> Path:
    """Write ``collection.json`` and ``items.ndjson`` of `archive` to `out` with the
    hrefs of :func:`served_items` (load `out` into a STAC API like any archive)."""
    archive, out = Path(archive), Path(out)
    try:
        meta = json.loads((archive / "collection.json").read_text())
        with open(archive / "items.ndjson") as handle:
            items = [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError) as exc:
        raise ServiceError(f"cannot read the archive {archive}: {exc}") from exc
    if collection is not None:
        meta["id"] = collection
    out.mkdir(parents=True, exist_ok=True)
    (out / "collection.json").write_text(json.dumps(meta))
    with open(out / "items.ndjson", "w") as handle:
        for item in served_items(items, archive, url_of, collection):
            handle.write(json.dumps(item) + "\n")
    return out
