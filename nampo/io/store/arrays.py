"""The store's Zarr arrays: creating (or checking) a store, writing a unit's chunks and then
its record, and reading chunks and the whole store back."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np
import xarray as xr
import zarr
from zarr.abc.store import Store as ZarrStore
from zarr.core.array_spec import ArrayConfigParams

from nampo.errors import StoreError
from nampo.io.store import records
from nampo.io.store.layout import (
    COMPLETE,
    META,
    RECORDS_DIR,
    StoreLayout,
    dataset_problems,
    metadata_differences,
    metadata_documents,
    reference_objects,
    unconsolidated,
)
from nampo.io.store.objects import Objects, explain
from nampo.products.variables import ALL, Variable
from nampo.sites import Site, Tile

__all__ = [
    "Arrays",
    "create",
    "open_dataset",
    "read",
    "read_layout",
    "tile_of",
    "writable_layout",
    "write",
]

_WRITE_THREADS = 8
"""Chunks of one unit written at once (one object each: this is I/O concurrency)."""


class Arrays:
    """The store's zarr arrays, opened on first use (for writing and reading chunks)."""

    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self._arrays: dict[str, zarr.Array] | None = None

    def zarr_store(self, read_only: bool) -> ZarrStore:
        location = self.objects.location
        if location.is_local:
            return zarr.storage.LocalStore(location.url, read_only=read_only)
        return zarr.storage.FsspecStore.from_url(
            location.url, storage_options=dict(location.storage_options), read_only=read_only
        )

    def get(self) -> dict[str, zarr.Array]:
        """Every variable's array, by name."""
        if self._arrays is None:
            group = zarr.open_group(
                self.zarr_store(read_only=False), mode="r+", zarr_format=2, use_consolidated=True
            )
            # every chunk is stored, even all-fill: a unit is always the same objects
            config: ArrayConfigParams = {"write_empty_chunks": True}

            def get(v: Variable) -> tuple[str, zarr.Array]:
                return v.name, cast(zarr.Array, group[v.name]).with_config(config)

            with ThreadPoolExecutor(_WRITE_THREADS) as pool:
                self._arrays = dict(pool.map(get, ALL))
        return self._arrays


# ---------------------------------------------------------------------------- layout


def read_layout(objects: Objects) -> StoreLayout:
    """The layout a store's consolidated metadata describes (StoreError when there is no
    complete nampo store)."""
    raw = objects.get(COMPLETE)
    if raw is None:
        raise StoreError(
            f"no nampo store at {objects.url} (create it; create also finishes a "
            "creation that was interrupted)"
        )
    try:
        attrs = json.loads(raw)["metadata"][".zattrs"]
        return StoreLayout.from_attrs(attrs)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"{objects.url} is a Zarr group but not a nampo store") from exc


def writable_layout(layout: StoreLayout, url: str) -> StoreLayout:
    """`layout`, when it holds the variables nampo writes (StoreError when not)."""
    expected = tuple(v.name for v in ALL)
    if layout.variables != expected:
        diff = StoreLayout(layout.site, layout.calendar).differences(layout)
        raise StoreError(
            f"store {url} was created with other variables than nampo writes: {'; '.join(diff)}"
        )
    return layout


def tile_of(site: Site, tile_id: str, url: str) -> Tile:
    """The tile `tile_id` of `site` (StoreError naming the site's tiles when none)."""
    try:
        return site.tile(tile_id)
    except KeyError:
        n = len(site.tiles)
        raise StoreError(
            f"store {url} has no tile {tile_id!r} "
            f"(tiles {site.tiles[0].id}..{site.tiles[n - 1].id})"
        ) from None


# ---------------------------------------------------------------------------- creation


def create(objects: Objects, site: Site, calendar: Iterable[dt.date]) -> StoreLayout:
    """Create the store for `site` and `calendar`, or check the one there; its layout.

    Every object is written only where it is missing, the consolidated metadata last;
    nothing is deleted or overwritten. StoreError names each difference from a store
    already there.
    """
    layout = StoreLayout(site, tuple(calendar))
    reference = reference_objects(layout)
    want = metadata_documents(reference)
    complete = objects.get(COMPLETE)
    if complete is not None:
        _raise_on_differences(objects.url, layout, unconsolidated(complete), want)
        return layout
    existing: dict[str, Any] = {}
    if _entries(objects, reference) - {RECORDS_DIR}:  # another creator is at work
        existing = _metadata_found(objects, reference)
        _raise_on_differences(objects.url, layout, existing, want)
    try:
        objects.put_many({".zgroup": reference[".zgroup"]})
        # coordinates, array and group metadata, then the consolidated metadata that
        # marks the store complete
        skip = {".zgroup", COMPLETE, *existing}
        objects.put_many({k: v for k, v in reference.items() if k not in skip})
        objects.put_many({COMPLETE: reference[COMPLETE]})
    except Exception as exc:
        raise StoreError(
            f"cannot create store {objects.url}: {explain(exc, objects.location)}"
        ) from exc
    # another creator with another layout may have raced us: check what is there
    found = _metadata_found(objects, reference)
    _raise_on_differences(objects.url, layout, found, want)
    _raise_on_differences(objects.url, layout, unconsolidated(found.get(COMPLETE)), want)
    return layout


def _metadata_found(objects: Objects, reference: Mapping[str, bytes]) -> dict[str, Any]:
    """The store's metadata documents, parsed, by key (the consolidated one as bytes).

    On object stores, one listing gives every object's ETag: objects whose ETag is the
    MD5 of the reference bytes are not read again (most S3 servers; the others are).
    """
    keys = {k for k in reference if k == COMPLETE or k.rsplit("/", 1)[-1] in META}
    same: set[str] = set()
    if not objects.location.is_local:
        for key, etag in objects.etags().items():
            if key in keys and etag == hashlib.md5(reference[key]).hexdigest():
                same.add(key)
    raw = {k: reference[k] for k in same}
    raw.update(objects.get_many([k for k in keys if k not in same]))
    return {k: v if k == COMPLETE else json.loads(v) for k, v in raw.items()}


def _raise_on_differences(
    url: str, layout: StoreLayout, found: Mapping[str, Any], reference: Mapping[str, Any]
) -> None:
    try:
        diffs = metadata_differences(layout, found, reference)
    except StoreError as exc:
        raise StoreError(f"store {url}: {exc}") from None
    if diffs:
        shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if diffs[6:] else "")
        raise StoreError(
            f"store {url} was created for another layout: {shown} "
            "(use another URL, or the store's own site and calendar)"
        )


def _entries(objects: Objects, reference: Mapping[str, bytes]) -> set[str]:
    """Names at the top of the location; StoreError when some are not the store's."""
    try:
        entries = objects.top_names()
    except Exception as exc:
        raise StoreError(
            f"cannot create store {objects.url}: {explain(exc, objects.location)}"
        ) from exc
    ours = {k.split("/", 1)[0] for k in reference} | {RECORDS_DIR}
    # temporary files of an interrupted local write (ours and zarr's) are not foreign
    foreign = sorted(e for e in entries - ours if not e.endswith(".partial"))
    if foreign:
        what = "a Zarr v3 store" if "zarr.json" in foreign else "other files"
        raise StoreError(
            f"cannot create store {objects.url}: the location holds {what} "
            f"({', '.join(foreign[:5])}); choose an empty location"
        )
    return entries


# ---------------------------------------------------------------------------- writes


def write(
    arrays: Arrays,
    site: Site,
    head: dict[str, str],
    variables: Sequence[Variable],
    ds: xr.Dataset,
    record: Mapping[str, Any] | None,
    tile: Tile,
    sel: tuple[Any, ...],
    month: dt.date | None,
    extra: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    """Write one unit: check `ds`, write its chunks at `sel`, the unit's `extra` objects,
    then its record (the store's `head` and the caller's `record`); the record written."""
    objects = arrays.objects
    unit_id = head["unit"]
    problems = dataset_problems(ds, variables, tile, site, month)
    if problems:
        raise StoreError(f"unit {unit_id} refused, nothing written: {'; '.join(problems)}")
    body = records.record_json(head, record, unit_id)
    names = [v.name for v in variables]
    values = ds[names].compute()  # one computation for all variables, before any write
    zarrs = arrays.get()
    key = records.record_key(unit_id)
    try:
        # A unit rewritten keeps its old record until the new one replaces it: a unit is
        # never without a complete version. A rewrite cut short leaves the old record
        # (its older product version, its older scenes), so the next run redoes the unit.

        def put(name: str) -> None:
            zarrs[name][sel] = np.ascontiguousarray(values[name].values)

        with ThreadPoolExecutor(min(_WRITE_THREADS, len(names))) as pool:
            list(pool.map(put, names))
        objects.put_many(dict(extra or {}))  # the unit's other objects (its activity)
        objects.put_many({key: body})
    except Exception as exc:
        raise StoreError(
            f"writing unit {unit_id} to {objects.url} failed: {explain(exc, objects.location)}"
        ) from exc
    return json.loads(body)


# ---------------------------------------------------------------------------- reads


def read(
    arrays: Arrays, site: Site, tile: Tile, variables: Sequence[Variable], prefix: tuple[int, ...]
) -> xr.Dataset:
    """`variables` of `tile` (at index `prefix` of their leading axes) as (y, x) arrays."""
    zarrs = arrays.get()
    sel: tuple[int | slice, ...] = (*prefix, slice(*tile.rows), slice(*tile.cols))

    def get(v: Variable) -> Any:
        return zarrs[v.name][sel]

    with ThreadPoolExecutor(_WRITE_THREADS) as pool:
        data = dict(zip([v.name for v in variables], pool.map(get, variables), strict=True))
    x, y = site.tile_grid(tile).xy_coords()
    return xr.Dataset(
        {v.name: (("y", "x"), data[v.name], dict(v.attrs)) for v in variables},
        coords={"y": y, "x": x},
    )


def open_dataset(arrays: Arrays, layout: StoreLayout, **kwargs: Any) -> xr.Dataset:
    """The whole store as a lazy dataset, its variables in the layout's order."""
    kwargs.setdefault("mask_and_scale", False)
    kwargs.setdefault("consolidated", True)
    ds = xr.open_zarr(arrays.zarr_store(read_only=True), **kwargs)
    return ds[[v for v in layout.variables if v in ds.data_vars]]
