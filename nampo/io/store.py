"""The Zarr store of a site: layout, idempotent creation, unit writes and completion records.

This is the only module that reads and writes stores (Zarr paths, fsspec); the objects of
a new store are built in memory by :mod:`nampo.io.store_layout`. One store per site, at any
fsspec URL: a local path (or ``file://``) or ``s3://bucket/prefix`` through s3fs.

Layout
------
A Zarr **v2** group (GDAL 3.10 reads v2 with its CRS; it refuses zarr-python 3's v3
arrays), created once with a fixed calendar of months and the site's fixed grid:

- coordinates ``time`` (month starts), ``y`` and ``x`` (pixel centres, metres) and a scalar
  ``spatial_ref`` carrying the CRS as CF grid-mapping attributes, as rioxarray writes it;
- every variable of :data:`nampo.products.variables.MONTHLY` as (time, y, x), chunked
  (1, tile, tile),
  and of :data:`nampo.products.variables.BASELINE` as (y, x), chunked (tile, tile), compressed with
  Blosc (zstd level 1, byte shuffle);
- ``nampo/units/<tile>/<YYYY-MM>.json`` and ``nampo/units/<tile>/baseline.json``: one
  completion record per unit, written after its chunks; ``nampo/activity/<tile>/<YYYY-MM>.json``:
  the facility activity a unit counted (written with its chunks, before its record);
  ``nampo/events/events.{parquet,geojson}``: the site's events; ``nampo/runs/<run>.json``:
  run metadata. Zarr, xarray and GDAL ignore the ``nampo/`` folder (an empty Zarr group);
- ``.zmetadata``: consolidated metadata, written last by :meth:`Store.create`. The layout
  never changes, so it never goes stale; opening costs one read instead of two per array.

Arrays never grow: a unit (tile, month) is exactly one chunk of every monthly variable, so
units are written in any order, by any number of processes, any number of times. A chunk
never written reads as the variable's fill value. A unit counts as done when its record
exists; a run killed between chunks and record leaves no record, so the unit is redone.

Examples
--------
>>> store = Store(StoreLocation.from_settings("s3://bucket/nampo.zarr", settings))  # doctest: +SKIP
>>> store.check_writable()                                                      # doctest: +SKIP
>>> store.create(site, months(date(2015, 6, 1), date(2035, 12, 1)))             # doctest: +SKIP
>>> store.write_unit(Unit(date(2017, 5, 1), "x01y02"), ds, {"scenes_used": ids})  # doctest: +SKIP
>>> "x01y02/2017-05" in store.done()                                             # doctest: +SKIP
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import xarray as xr
import zarr

from nampo.errors import StoreError
from nampo.io.store_layout import (
    COMPLETE,
    COMPRESSOR,
    LAYOUT_VERSION,
    META,
    RECORDS_DIR,
    Layout,
    dataset_problems,
    metadata_differences,
    metadata_documents,
    reference_objects,
    unconsolidated,
)
from nampo.products.variables import ALL, BASELINE, MONTHLY, Variable
from nampo.run.units import BaselineUnit, Unit
from nampo.sites import Site, Tile

__all__ = ["COMPRESSOR", "LAYOUT_VERSION", "Layout", "Store", "StoreLocation"]

UNITS_DIR = f"{RECORDS_DIR}/units"
ACTIVITY_DIR = f"{RECORDS_DIR}/activity"
EVENTS_DIR = f"{RECORDS_DIR}/events"
EVENT_FILES = ("events.parquet", "events.geojson")
"""The site's events, as GeoParquet and GeoJSON, written in this order (the GeoJSON last:
it is what :meth:`Store.events_file` readers wait for)."""
RUNS_DIR = f"{RECORDS_DIR}/runs"

_RECORD_RE = re.compile(r"^(x\d+y\d+)/(\d{4}-\d{2}|baseline)\.json$")
_ACTIVITY_RE = re.compile(r"^(x\d+y\d+)/(\d{4}-\d{2})\.json$")
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_RESERVED = ("unit", "kind", "tile", "month", "written")
_SECRET_OPTIONS = ("secret", "key", "token", "password", "session_token")
_WRITE_THREADS = 8
"""Chunks of one unit written at once (one object each: this is I/O concurrency)."""


# ---------------------------------------------------------------------------- location


@dataclass(frozen=True)
class StoreLocation:
    """Where a store lives: an fsspec URL and the options of its filesystem.

    Picklable, so it travels to Dask workers; its repr hides credentials.
    """

    url: str
    """A local path (made absolute) or a URL such as ``s3://bucket/prefix/site.zarr``."""
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    """fsspec options (for s3fs: ``endpoint_url``, ``key``, ``secret``, ``client_kwargs``)."""

    def __post_init__(self) -> None:
        url = os.fspath(self.url)
        if fsspec.utils.get_protocol(url) in ("file", "local"):
            url = str(Path(fsspec.core.strip_protocol(url)).expanduser().absolute())
        object.__setattr__(self, "url", url.rstrip("/") or "/")
        object.__setattr__(self, "storage_options", dict(self.storage_options))

    def __repr__(self) -> str:
        opts = ", ".join(
            f"{k}={'***' if k in _SECRET_OPTIONS else repr(v)}"
            for k, v in self.storage_options.items()
        )
        return f"StoreLocation({self.url!r}{', ' + opts if opts else ''})"

    __str__ = __repr__

    def __hash__(self) -> int:  # storage options hold dicts
        return hash((self.url, json.dumps(self.storage_options, sort_keys=True, default=str)))

    @property
    def is_local(self) -> bool:
        return fsspec.utils.get_protocol(self.url) in ("file", "local")

    @classmethod
    def from_settings(cls, url: str | os.PathLike, settings) -> StoreLocation:
        """The location of `url`, with S3 endpoint and credentials from `settings`.

        Parameters
        ----------
        url
            A local path, ``file://...`` or ``s3://bucket/prefix``.
        settings
            A :class:`nampo.settings.Settings` (its ``s3_*`` fields are used for ``s3://``).

        Examples
        --------
        >>> StoreLocation.from_settings("s3://b/site.zarr", Settings(s3_key="k", s3_secret="s"))
        StoreLocation('s3://b/site.zarr', key=***, secret=***)
        """
        url = os.fspath(url)
        options: dict[str, Any] = {}
        if fsspec.utils.get_protocol(url) in ("s3", "s3a"):
            if settings.s3_endpoint_url:
                options["endpoint_url"] = settings.s3_endpoint_url
            if settings.s3_key:
                options["key"] = settings.s3_key
            if settings.s3_secret is not None:
                options["secret"] = settings.s3_secret.get_secret_value()
            if settings.s3_region:
                options["client_kwargs"] = {"region_name": settings.s3_region}
        return cls(url, options)


# ---------------------------------------------------------------------------- store


class Store:
    """One site's Zarr store at a :class:`StoreLocation` (or a local path).

    Constructing a Store does no I/O. :meth:`create` makes (or checks) the store; every
    other method reads the layout (site grid, tiles, calendar) from the store itself, so a
    Store built from the location alone works on any worker. Picklable.
    """

    def __init__(self, location: StoreLocation | str | os.PathLike) -> None:
        if not isinstance(location, StoreLocation):
            location = StoreLocation(os.fspath(location))
        self.location = location
        self._layout: Layout | None = None
        self._fs_root: tuple[Any, str] | None = None
        self._arrays: dict[str, zarr.Array] | None = None

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    def __getstate__(self) -> dict[str, Any]:
        # filesystems and zarr arrays hold event loops and sessions: rebuild them on arrival
        return {"location": self.location, "_layout": self._layout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["location"])  # type: ignore[misc]
        self._layout = state["_layout"]

    @property
    def url(self) -> str:
        return self.location.url

    # -- layout

    @property
    def layout(self) -> Layout:
        """The store's layout, read from its group attributes once."""
        if self._layout is None:
            raw = self._get(COMPLETE)
            if raw is None:
                raise StoreError(
                    f"no nampo store at {self.url} (create it; create also finishes a "
                    "creation that was interrupted)"
                )
            try:
                attrs = json.loads(raw)["metadata"][".zattrs"]
                self._layout = Layout.from_attrs(attrs)
            except (KeyError, TypeError, ValueError) as exc:
                raise StoreError(f"{self.url} is a Zarr group but not a nampo store") from exc
        return self._layout

    @property
    def site(self) -> Site:
        return self.layout.site

    @property
    def calendar(self) -> tuple[dt.date, ...]:
        return self.layout.calendar

    def exists(self) -> bool:
        """Whether a complete store is at the location (its consolidated metadata, written
        last, exists)."""
        return self._get(COMPLETE) is not None

    # -- creation

    def create(self, site: Site, calendar: Iterable[dt.date]) -> Store:
        """Create the store for `site` and `calendar`, or check the one already there.

        Idempotent and safe against other processes creating the same store at the same
        time: every object is written only where it is missing, with the bytes any creator
        would write, and the consolidated metadata (the mark of a complete store) last.
        Nothing that exists is ever deleted or overwritten. On an existing store this
        costs one read.

        Raises
        ------
        StoreError
            The location holds a store of another site, grid, tile size, calendar or set
            of variables (the message names each difference), or files that are not a
            nampo store, or cannot be written.
        """
        layout = Layout(site, tuple(calendar))
        reference = reference_objects(layout)
        want = metadata_documents(reference)
        complete = self._get(COMPLETE)
        if complete is not None:
            self._raise_on_differences(layout, unconsolidated(complete), want)
            self._layout = layout
            return self
        existing: dict[str, Any] = {}
        if self._entries(reference) - {RECORDS_DIR}:  # another creator is at work
            existing = self._metadata_found(reference)
            self._raise_on_differences(layout, existing, want)
        try:
            self._put_many({".zgroup": reference[".zgroup"]})
            # coordinates, array and group metadata, then the consolidated metadata that
            # marks the store complete
            skip = {".zgroup", COMPLETE, *existing}
            self._put_many({k: v for k, v in reference.items() if k not in skip})
            self._put_many({COMPLETE: reference[COMPLETE]})
        except Exception as exc:
            raise StoreError(
                f"cannot create store {self.url}: {_explain(exc, self.location)}"
            ) from exc
        # another creator with another layout may have raced us: check what is there
        found = self._metadata_found(reference)
        self._raise_on_differences(layout, found, want)
        self._raise_on_differences(layout, unconsolidated(found.get(COMPLETE)), want)
        self._layout = layout
        return self

    def _metadata_found(self, reference: Mapping[str, bytes]) -> dict[str, Any]:
        """The store's metadata documents, parsed, by key (the consolidated one as bytes).

        On object stores, one listing gives every object's ETag: objects whose ETag is the
        MD5 of the reference bytes are not read again (most S3 servers; the others are).
        """
        keys = {k for k in reference if k == COMPLETE or k.rsplit("/", 1)[-1] in META}
        same: set[str] = set()
        if not self.location.is_local:
            fs, root = self._fs
            try:
                fs.invalidate_cache(root)
                listing = fs.find(root, detail=True)
            except FileNotFoundError:
                listing = {}
            for path, info in listing.items():
                key = path[len(root) + 1 :]
                etag = str(info.get("ETag", "")).strip('"')
                if key in keys and etag == hashlib.md5(reference[key]).hexdigest():
                    same.add(key)
        raw = {k: reference[k] for k in same}
        raw.update(self._get_many([k for k in keys if k not in same]))
        return {k: v if k == COMPLETE else json.loads(v) for k, v in raw.items()}

    def _raise_on_differences(
        self, layout: Layout, found: Mapping[str, Any], reference: Mapping[str, Any]
    ) -> None:
        try:
            diffs = metadata_differences(layout, found, reference)
        except StoreError as exc:
            raise StoreError(f"store {self.url}: {exc}") from None
        if diffs:
            shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if diffs[6:] else "")
            raise StoreError(
                f"store {self.url} was created for another layout: {shown} "
                "(use another URL, or the store's own site and calendar)"
            )

    def _entries(self, reference: Mapping[str, bytes]) -> set[str]:
        """Names at the top of the location; StoreError when some are not the store's."""
        fs, root = self._fs
        try:
            fs.invalidate_cache(root)
            entries = {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)}
        except FileNotFoundError:
            return set()
        except Exception as exc:
            raise StoreError(
                f"cannot create store {self.url}: {_explain(exc, self.location)}"
            ) from exc
        ours = {k.split("/", 1)[0] for k in reference} | {RECORDS_DIR}
        # temporary files of an interrupted local write (ours and zarr's) are not foreign
        foreign = sorted(e for e in entries - ours if not e.endswith(".partial"))
        if foreign:
            what = "a Zarr v3 store" if "zarr.json" in foreign else "other files"
            raise StoreError(
                f"cannot create store {self.url}: the location holds {what} "
                f"({', '.join(foreign[:5])}); choose an empty location"
            )
        return entries

    # -- writability

    def check_writable(self) -> None:
        """Prove the location can be written: write, read back and delete a small probe.

        Fails fast (no retries) with a one-line :class:`StoreError` naming the URL and the
        reason: missing bucket, unreachable endpoint, rejected credentials, a path that
        cannot be a folder, no permission. Creates nothing when it fails; when it succeeds
        on a local path, the (empty) store folder is left behind.
        """
        fs, root = self._probe_fs()
        # no folder of its own: removing one could race with another process's probe
        key = f"{RECORDS_DIR}/probe-{uuid.uuid4().hex}"
        body = f"nampo write probe {dt.datetime.now(dt.UTC).isoformat()}".encode()
        written = False
        try:
            self._put_many({key: body}, fs=(fs, root))
            written = True
            back = fs.cat_file(f"{root}/{key}")
            if back != body:
                raise StoreError(f"store {self.url} returned other bytes than it was given")
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"store {self.url} is not writable: {_explain(exc, self.location)}"
            ) from exc
        finally:
            if written:
                try:
                    fs.rm_file(f"{root}/{key}")
                except OSError:
                    pass

    def _probe_fs(self) -> tuple[Any, str]:
        if self.location.is_local:
            return self._fs
        options = dict(self.location.storage_options)
        if fsspec.utils.get_protocol(self.url) in ("s3", "s3a"):
            # no retries and a short connect timeout: a refused port answers in 0.2 s,
            # not after botocore's 12 s of retries
            config = dict(options.get("config_kwargs", {}))
            config.update(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=30)
            options["config_kwargs"] = config
        return fsspec.core.url_to_fs(self.url, **options)

    # -- writes

    def write_unit(
        self,
        unit: Unit,
        ds: xr.Dataset,
        record: Mapping[str, Any] | None = None,
        activity: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write one (tile, month) unit, then its completion record.

        Parameters
        ----------
        unit
            The unit; its month must be in the store's calendar and its tile in the site.
        ds
            Every variable of :data:`nampo.products.variables.MONTHLY`, each with dims (y, x), the
            tile's shape and the product's dtype (numpy or dask). Coordinates ``x``/``y``,
            when present, must be the tile's pixel centres, and ``time`` the unit's month.
            Nothing is written unless all of it holds.
        record
            JSON-able fields stored in the record (scene ids used and skipped, code
            version...). Dates become ISO strings, sets sorted lists.
        activity
            The unit's facility activity (:func:`nampo.analysis.activity.unit_activity`), stored as
            ``nampo/activity/<tile>/<YYYY-MM>.json`` after the chunks and before the record
            (no timestamp in it: a re-run writes the same bytes).

        Returns
        -------
        dict
            The completion record as written.
        """
        layout = self._writable_layout()
        tile = self._tile(unit.tile_id)
        sel = (layout.month_index(unit.month), slice(*tile.rows), slice(*tile.cols))
        head = {"unit": unit.id, "kind": "month", "tile": tile.id, "month": f"{unit.month:%Y-%m}"}
        extra = {}
        if activity is not None:
            extra[_activity_key(unit.id)] = _activity_json(unit.id, activity)
        else:  # no earlier run's activity stays beside the new data
            self._delete(_activity_key(unit.id))
        return self._write(head, MONTHLY, ds, record, tile, sel, unit.month, extra)

    def write_baseline(
        self, tile: Tile | str, ds: xr.Dataset, record: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Write the baseline products of one tile, then its record (``<tile>/baseline``).

        `ds` holds every variable of :data:`nampo.products.variables.BASELINE`; the rules are those
        of :meth:`write_unit`.
        """
        self._writable_layout()
        tile = self._tile(tile if isinstance(tile, str) else tile.id)
        unit = BaselineUnit(tile.id)
        head = {"unit": unit.id, "kind": unit.kind, "tile": tile.id}
        return self._write(
            head, BASELINE, ds, record, tile, (slice(*tile.rows), slice(*tile.cols)), None
        )

    def _write(
        self,
        head: dict[str, str],
        variables: Sequence[Variable],
        ds: xr.Dataset,
        record: Mapping[str, Any] | None,
        tile: Tile,
        sel: tuple,
        month: dt.date | None,
        extra: Mapping[str, bytes] | None = None,
    ) -> dict[str, Any]:
        unit_id = head["unit"]
        problems = dataset_problems(ds, variables, tile, self.site, month)
        if problems:
            raise StoreError(f"unit {unit_id} refused, nothing written: {'; '.join(problems)}")
        body = _record_json(head, record, unit_id)
        names = [v.name for v in variables]
        values = ds[names].compute()  # one computation for all variables, before any write
        arrays = self._open_arrays()
        key = _record_key(unit_id)
        try:
            # a unit rewritten is not done until its new record exists
            self._delete(key)

            def put(name: str) -> None:
                arrays[name][sel] = np.ascontiguousarray(values[name].values)

            with ThreadPoolExecutor(min(_WRITE_THREADS, len(names))) as pool:
                list(pool.map(put, names))
            self._put_many(dict(extra or {}))  # the unit's other objects (its activity)
            self._put_many({key: body})
        except Exception as exc:
            raise StoreError(
                f"writing unit {unit_id} to {self.url} failed: {_explain(exc, self.location)}"
            ) from exc
        return json.loads(body)

    def _writable_layout(self) -> Layout:
        layout = self.layout
        expected = tuple(v.name for v in ALL)
        if layout.variables != expected:
            diff = Layout(layout.site, layout.calendar).differences(layout)
            raise StoreError(
                f"store {self.url} was created with other variables than nampo writes: "
                f"{'; '.join(diff)}"
            )
        return layout

    def _tile(self, tile_id: str) -> Tile:
        try:
            return self.site.tile(tile_id)
        except KeyError:
            n = len(self.site.tiles)
            raise StoreError(
                f"store {self.url} has no tile {tile_id!r} "
                f"(tiles {self.site.tiles[0].id}..{self.site.tiles[n - 1].id})"
            ) from None

    def _open_arrays(self) -> dict[str, zarr.Array]:
        if self._arrays is None:
            group = zarr.open_group(
                self._zarr_store(read_only=False), mode="r+", zarr_format=2, use_consolidated=True
            )
            # every chunk is stored, even all-fill: a unit is always the same objects
            config = {"write_empty_chunks": True}

            def get(v: Variable) -> tuple[str, zarr.Array]:
                return v.name, group[v.name].with_config(config)  # type: ignore[union-attr]

            with ThreadPoolExecutor(_WRITE_THREADS) as pool:
                self._arrays = dict(pool.map(get, ALL))
        return self._arrays

    # -- records and runs

    def done(self) -> set[str]:
        """Ids of the units with a completion record (``x00y00/2017-05``, ``x00y00/baseline``)."""
        return {f"{m[1]}/{m[2]}" for key in self._list(UNITS_DIR) if (m := _RECORD_RE.match(key))}

    def record(self, unit_id: str) -> dict[str, Any]:
        """The completion record of a unit (StoreError when the unit is not done)."""
        raw = self._get(_record_key(unit_id))
        if raw is None:
            raise StoreError(f"unit {unit_id} has no completion record in {self.url}")
        return json.loads(raw)

    def write_run(self, run_id: str, meta: Mapping[str, Any]) -> dict[str, Any]:
        """Store (or replace) the metadata of a run under ``nampo/runs/<run_id>.json``."""
        if not _RUN_ID_RE.match(run_id):
            raise StoreError(
                f"run id {run_id!r} must be letters, digits, '.', '_' or '-' (up to 128)"
            )
        body = _record_json({"run": run_id}, meta, f"run {run_id}")
        try:
            self._put_many({f"{RUNS_DIR}/{run_id}.json": body})
        except Exception as exc:
            raise StoreError(
                f"writing run {run_id} to {self.url} failed: {_explain(exc, self.location)}"
            ) from exc
        return json.loads(body)

    def activity(self) -> list[dict[str, Any]]:
        """The activity documents of every complete month unit (one listing and one read
        per unit; units written before activity was stored have none), in unit order.
        :mod:`nampo.analysis.activity` turns them into series."""
        keys = {m: k for k in self._list(ACTIVITY_DIR) if (m := _ACTIVITY_RE.match(k))}
        done = self.done()
        wanted = sorted(
            f"{ACTIVITY_DIR}/{k}" for m, k in keys.items() if f"{m[1]}/{m[2]}" in done
        )  # fmt: skip
        return [json.loads(v) for _, v in sorted(self._get_many(wanted).items())]

    def write_events(self, files: Mapping[str, bytes]) -> list[str]:
        """Store the site's events (``events.parquet``, ``events.geojson``) under
        ``nampo/events/``, replacing earlier ones. Each object is written whole (a local
        file is replaced atomically, an S3 object put at once), so readers see the old
        events or the new ones, never part of a file; the same events give the same bytes.
        Returns the URLs written."""
        unknown = sorted(set(files) - set(EVENT_FILES))
        if unknown:
            raise StoreError(f"events files are {', '.join(EVENT_FILES)}, not {', '.join(unknown)}")
        keys = {f"{EVENTS_DIR}/{n}": files[n] for n in EVENT_FILES if n in files}
        try:
            for key, data in keys.items():
                self._put_many({key: data})
        except Exception as exc:
            raise StoreError(
                f"writing events to {self.url} failed: {_explain(exc, self.location)}"
            ) from exc
        return [f"{self.url}/{k}" for k in keys]

    def events_written_at(self) -> float | None:
        """When the stored events were written (POSIX s), None when there are none."""
        fs, root = self._fs
        try:
            return _modified(fs.info(f"{root}/{EVENTS_DIR}/events.geojson"))
        except FileNotFoundError:
            return None

    def last_completed_at(self) -> float | None:
        """When the newest completion record was written (POSIX s), None before any."""
        fs, root = self._fs
        try:
            fs.invalidate_cache(f"{root}/{UNITS_DIR}")
            records = fs.find(f"{root}/{UNITS_DIR}", detail=True)
        except FileNotFoundError:
            return None
        return max((_modified(i) for i in records.values()), default=None)

    def events_file(self, name: str = "events.geojson") -> bytes | None:
        """The stored events file `name` (None when events were never written)."""
        if name not in EVENT_FILES:
            raise StoreError(f"events files are {', '.join(EVENT_FILES)}, not {name!r}")
        return self._get(f"{EVENTS_DIR}/{name}")

    def runs(self) -> dict[str, dict[str, Any]]:
        """Every run's metadata, by run id (in id order)."""
        keys = [k for k in self._list(RUNS_DIR) if _RUN_ID_RE.match(k) and k.endswith(".json")]
        raw = self._get_many([f"{RUNS_DIR}/{k}" for k in sorted(keys)])
        return {k.rsplit("/", 1)[-1][:-5]: json.loads(v) for k, v in raw.items()}

    # -- reads

    def open(self, **kwargs: Any) -> xr.Dataset:
        """The whole store as a lazy dataset, with the products' own dtypes, in their order.

        Integer products keep their dtype and fill value (0) rather than becoming float
        with NaN (``mask_and_scale=False``: xarray 2026.9 masks Zarr v2 fill values even
        with ``use_zarr_fill_value_as_mask=False``); float products hold NaN where nothing
        was written. Keyword arguments go to :func:`xarray.open_zarr`.
        """
        layout = self.layout
        kwargs.setdefault("mask_and_scale", False)
        kwargs.setdefault("consolidated", True)
        ds = xr.open_zarr(self._zarr_store(read_only=True), **kwargs)
        return ds[[v for v in layout.variables if v in ds.data_vars]]

    def read_unit(self, unit: Unit, names: Sequence[str] | None = None) -> xr.Dataset:
        """The MONTHLY variables of one unit (those in `names`, default all) as (y, x)
        arrays, as :meth:`write_unit` takes them."""
        tile = self._tile(unit.tile_id)
        t = self.layout.month_index(unit.month)
        variables = MONTHLY
        if names is not None:
            by_name = {v.name: v for v in MONTHLY}
            unknown = sorted(set(names) - set(by_name))
            if unknown:
                raise StoreError(f"no monthly variable {', '.join(unknown)} in the store")
            variables = [by_name[n] for n in names]
        ds = self._read(tile, variables, (t,))
        return ds.assign_coords(time=np.datetime64(unit.month, "ns"))

    def read_baseline(self, tile: Tile | str) -> xr.Dataset:
        """The BASELINE variables of one tile as (y, x) arrays."""
        return self._read(self._tile(tile if isinstance(tile, str) else tile.id), BASELINE, ())

    def _read(self, tile: Tile, variables: Sequence[Variable], prefix: tuple) -> xr.Dataset:
        arrays = self._open_arrays()
        sel = (*prefix, slice(*tile.rows), slice(*tile.cols))
        with ThreadPoolExecutor(_WRITE_THREADS) as pool:
            data = dict(
                zip(
                    [v.name for v in variables],
                    pool.map(lambda v: arrays[v.name][sel], variables),
                    strict=True,
                )
            )
        x, y = self.site.tile_grid(tile).xy_coords()
        return xr.Dataset(
            {v.name: (("y", "x"), data[v.name], dict(v.attrs)) for v in variables},
            coords={"y": y, "x": x},
        )

    # -- objects under the store root (fsspec)

    @property
    def _fs(self) -> tuple[Any, str]:
        if self._fs_root is None:
            fs, root = fsspec.core.url_to_fs(self.url, **self.location.storage_options)
            self._fs_root = (fs, root.rstrip("/"))
        return self._fs_root

    def _zarr_store(self, read_only: bool):
        if self.location.is_local:
            return zarr.storage.LocalStore(self.url, read_only=read_only)
        return zarr.storage.FsspecStore.from_url(
            self.url, storage_options=dict(self.location.storage_options), read_only=read_only
        )

    def _get(self, key: str) -> bytes | None:
        return self._get_many([key]).get(key)

    def _get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The objects that exist among `keys` (missing ones left out)."""
        fs, root = self._fs
        if not keys:
            return {}
        paths = {f"{root}/{k}": k for k in keys}
        try:
            if self.location.is_local:
                out = {}
                for path, key in paths.items():
                    try:
                        out[key] = Path(path).read_bytes()
                    except (FileNotFoundError, NotADirectoryError):
                        pass
                return out
            got = fs.cat(list(paths), on_error="return")
        except Exception as exc:
            raise StoreError(
                f"cannot read store {self.url}: {_explain(exc, self.location)}"
            ) from exc
        if not isinstance(got, dict):  # a single path comes back bare
            got = {next(iter(paths)): got}
        out = {}
        for path, value in got.items():
            if isinstance(value, FileNotFoundError):
                continue
            if isinstance(value, Exception):
                raise StoreError(
                    f"cannot read store {self.url}: {_explain(value, self.location)}"
                ) from value
            out[paths.get(path, path[len(root) + 1 :])] = value
        return out

    def _put_many(self, objects: Mapping[str, bytes], fs: tuple[Any, str] | None = None) -> None:
        fs_, root = fs or self._fs
        if self.location.is_local:
            for key, data in objects.items():
                _put_local(Path(root, key), data)
        elif objects:
            fs_.pipe({f"{root}/{k}": v for k, v in objects.items()})

    def _delete(self, key: str) -> None:
        fs, root = self._fs
        try:
            fs.rm_file(f"{root}/{key}")
        except FileNotFoundError:
            pass

    def _list(self, prefix: str) -> list[str]:
        """Keys under `prefix`, relative to it."""
        fs, root = self._fs
        base = f"{root}/{prefix}"
        try:
            fs.invalidate_cache(base)
            found = fs.find(base)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise StoreError(
                f"cannot list {prefix} in {self.url}: {_explain(exc, self.location)}"
            ) from exc
        strip = base.rstrip("/") + "/"
        return [p[len(strip) :] for p in found if p.startswith(strip)]


# ---------------------------------------------------------------------------- helpers


def _put_local(path: Path, data: bytes) -> None:
    """Write atomically: readers (and concurrent writers of the same bytes) never see a
    partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _record_key(unit_id: str) -> str:
    key = f"{unit_id}.json"
    if not _RECORD_RE.match(key):
        raise StoreError(f"{unit_id!r} is not a unit id (like x01y02/2017-05 or x01y02/baseline)")
    return f"{UNITS_DIR}/{key}"


def _activity_key(unit_id: str) -> str:
    return f"{ACTIVITY_DIR}/{unit_id}.json"


def _activity_json(unit_id: str, doc: Mapping[str, Any]) -> bytes:
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


def _record_json(head: Mapping[str, Any], fields: Mapping[str, Any] | None, what: str) -> bytes:
    fields = dict(fields or {})
    clash = sorted(set(fields) & (set(head) | set(_RESERVED)))
    if clash:
        raise StoreError(f"{what}: record fields {', '.join(clash)} are reserved by the store")
    doc = {**head, "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **fields}
    try:
        return json.dumps(doc, default=_json_default, indent=1, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what}: record is not JSON: {exc}") from None


def _modified(info: dict) -> float:
    """Modification time (POSIX s) of an fsspec file info: local files give ``mtime``,
    S3 objects ``LastModified``."""
    if "mtime" in info:
        return float(info["mtime"])
    modified = info.get("LastModified") or info.get("last_modified")
    if isinstance(modified, dt.datetime):
        return modified.timestamp()
    raise StoreError(f"no modification time in {sorted(info)}")


def _explain(exc: BaseException, location: StoreLocation) -> str:
    """One line saying why an operation on `location` failed."""
    chain, e = [], exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    names = {type(c).__name__ for c in chain}
    text = " ".join(str(c) for c in chain)
    endpoint = location.storage_options.get("endpoint_url") or "the S3 endpoint"
    bucket = location.url.split("://", 1)[-1].split("/", 1)[0]
    if "NoSuchBucket" in names or "bucket does not exist" in text:
        return f"bucket {bucket!r} does not exist"
    if "InvalidAccessKeyId" in names or "Access Key Id you provided does not exist" in text:
        return "the access key is not known to the server (check NAMPO_S3_KEY)"
    if "SignatureDoesNotMatch" in names or "signature we calculated does not match" in text:
        return "the secret key was rejected (check NAMPO_S3_SECRET)"
    if "NoCredentialsError" in names:
        return "no credentials (set NAMPO_S3_KEY and NAMPO_S3_SECRET)"
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return f"connection to {endpoint} refused (nothing listens there)"
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError"}:
        return f"cannot reach {endpoint}"
    if any(isinstance(c, NotADirectoryError | FileExistsError) for c in chain):
        return "a part of the path is a file, not a folder"
    if any(isinstance(c, PermissionError) for c in chain) or "AccessDenied" in text:
        return "permission denied"
    if any(getattr(c, "errno", None) == 30 for c in chain):  # EROFS
        return "read-only file system"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]
