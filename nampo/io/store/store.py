"""The :class:`Store` callers use: one site's Zarr store, its arrays, records and events,
each concern delegated to a module of :mod:`nampo.io.store` (docs/store.md, "The code")."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from nampo.errors import StoreError
from nampo.io.store import arrays, events, records
from nampo.io.store.arrays import Arrays
from nampo.io.store.layout import COMPLETE, StoreLayout
from nampo.io.store.location import StoreLocation
from nampo.io.store.objects import Objects
from nampo.products.variables import BASELINE, MONTHLY
from nampo.run.units import Unit
from nampo.sites import Site, Tile

__all__ = ["Store"]


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
        self._layout: StoreLayout | None = None
        self._objects = Objects(location)
        self._arrays = Arrays(self._objects)

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
    def layout(self) -> StoreLayout:
        """The store's layout, read from its group attributes once."""
        if self._layout is None:
            self._layout = arrays.read_layout(self._objects)
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
        return self._objects.get(COMPLETE) is not None

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
        self._layout = arrays.create(self._objects, site, calendar)
        return self

    def check_writable(self) -> None:
        """Prove the location can be written: write, read back and delete a small probe.

        Fails fast (no retries) with a one-line :class:`StoreError` naming the URL and the
        reason: missing bucket, unreachable endpoint, rejected credentials, a path that
        cannot be a folder, no permission. Creates nothing when it fails; when it succeeds
        on a local path, the (empty) store folder is left behind.
        """
        self._objects.check_writable()

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
            Every variable of :data:`nampo.products.variables.MONTHLY`, each with dims
            (y, x), the tile's shape and the product's dtype (numpy or dask). Coordinates
            ``x``/``y``, when present, must be the tile's pixel centres, and ``time`` the
            unit's month. Nothing is written unless all of it holds.
        record
            JSON-able fields stored in the record (scene ids used and skipped, code
            version...). Dates become ISO strings, sets sorted lists.
        activity
            The unit's facility activity (:func:`nampo.analysis.activity.unit_activity`),
            stored as ``nampo/activity/<tile>/<YYYY-MM>.json`` after the chunks and before
            the record (no timestamp in it: a re-run writes the same bytes).

        Returns
        -------
        dict
            The completion record as written.
        """
        layout = self._writable_layout()
        tile = self._tile(unit.tile_id)
        sel = (layout.month_index(unit.month), slice(*tile.rows), slice(*tile.cols))
        head = records.month_head(tile.id, unit.month)
        extra = self._activity_object(head["unit"], activity)
        return arrays.write(
            self._arrays, self.site, head, MONTHLY, ds, record, tile, sel, unit.month, extra
        )

    def write_baseline(
        self,
        tile: Tile | str,
        ds: xr.Dataset,
        record: Mapping[str, Any] | None = None,
        activity: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write the baseline products of one tile, then its record (``<tile>/baseline``).

        `ds` holds every variable of :data:`nampo.products.variables.BASELINE`; the rules
        are those of :meth:`write_unit`. `activity`: the baseline's looks at the tile's
        berths (:func:`nampo.analysis.activity.berth_looks`), stored as
        ``nampo/activity/<tile>/baseline.json`` after the chunks and before the record.
        """
        self._writable_layout()
        tile = self._tile(tile if isinstance(tile, str) else tile.id)
        head = records.baseline_head(tile.id)
        sel = (slice(*tile.rows), slice(*tile.cols))
        extra = self._activity_object(head["unit"], activity)
        return arrays.write(
            self._arrays, self.site, head, BASELINE, ds, record, tile, sel, None, extra
        )

    def _activity_object(
        self, unit_id: str, activity: Mapping[str, Any] | None
    ) -> dict[str, bytes]:
        """The unit's activity document as the object to write with it; without one, the
        object an earlier run wrote is deleted (no old activity stays beside new data)."""
        key = records.activity_key(unit_id)
        if activity is None:
            self._objects.delete(key)
            return {}
        return {key: records.activity_json(unit_id, activity)}

    def write_run(self, run_id: str, meta: Mapping[str, Any]) -> dict[str, Any]:
        """Store (or replace) the metadata of a run under ``nampo/runs/<run_id>.json``."""
        return records.write_run(self._objects, run_id, meta)

    def write_events(self, files: Mapping[str, bytes]) -> list[str]:
        """Store the site's events (``events.parquet``, ``events.geojson``) under
        ``nampo/events/``, replacing earlier ones. Each object is written whole (a local
        file is replaced atomically, an S3 object put at once), so readers see the old
        events or the new ones, never part of a file; the same events give the same bytes.
        Returns the URLs written."""
        return events.write_events(self._objects, files)

    def write_events_history(self, run_id: str, geojson: bytes) -> str:
        """Keep the events as they were before run `run_id` changed them
        (``nampo/events/history/<run id>.geojson``); the URL written."""
        return events.write_history(self._objects, run_id, geojson)

    def events_history(self) -> dict[str, float | None]:
        """Run id -> when kept, of every kept list of events, oldest first."""
        return events.events_history(self._objects)

    # -- records, runs and events

    def done(self) -> set[str]:
        """Ids of the units with a completion record (``x00y00/2017-05``, ``x00y00/baseline``)."""
        return records.done(self._objects)

    def record(self, unit_id: str) -> dict[str, Any]:
        """The completion record of a unit (StoreError when the unit is not done)."""
        return records.record(self._objects, unit_id)

    def records(self) -> dict[str, dict[str, Any]]:
        """The completion record of every complete unit, by unit id."""
        return records.all_records(self._objects)

    def activity(self) -> list[dict[str, Any]]:
        """The activity documents of every complete month unit (one listing and one read
        per unit; units written before activity was stored have none), in unit order.
        :mod:`nampo.analysis.activity` turns them into series."""
        return records.activity(self._objects)

    def baseline_activity(self, tile: Tile | str) -> dict[str, Any] | None:
        """The activity document of a tile's complete baseline (its looks at the berths),
        None when the baseline is not done or was written without one; StoreError naming
        a tile the site does not have."""
        tile_id = self._tile(tile if isinstance(tile, str) else tile.id).id
        return records.baseline_activity(self._objects, tile_id)

    def runs(self) -> dict[str, dict[str, Any]]:
        """Every run's metadata, by run id (in id order)."""
        return records.runs(self._objects)

    def last_completed_at(self) -> float | None:
        """When the newest completion record was written (POSIX s), None before any."""
        return records.last_completed_at(self._objects)

    def events_file(self, name: str = "events.geojson") -> bytes | None:
        """The stored events file `name` (None when events were never written)."""
        return events.events_file(self._objects, name)

    def events_written_at(self) -> float | None:
        """When the stored events were written (POSIX s), None when there are none."""
        return events.events_written_at(self._objects)

    # -- reads

    def open(self, **kwargs: Any) -> xr.Dataset:
        """The whole store as a lazy dataset, with the products' own dtypes, in their order.

        Integer products keep their dtype and fill value (0) rather than becoming float
        with NaN (``mask_and_scale=False``: xarray 2026.9 masks Zarr v2 fill values even
        with ``use_zarr_fill_value_as_mask=False``); float products hold NaN where nothing
        was written. Keyword arguments go to :func:`xarray.open_zarr`.
        """
        return arrays.open_dataset(self._arrays, self.layout, **kwargs)

    def read_unit(self, unit: Unit, names: Sequence[str] | None = None) -> xr.Dataset:
        """The MONTHLY variables of one unit (those in `names`, default all) as (y, x)
        arrays, as :meth:`write_unit` takes them."""
        tile = self._tile(unit.tile_id)
        t = self.layout.month_index(unit.month)
        variables = list(MONTHLY)
        if names is not None:
            by_name = {v.name: v for v in MONTHLY}
            unknown = sorted(set(names) - set(by_name))
            if unknown:
                raise StoreError(f"no monthly variable {', '.join(unknown)} in the store")
            variables = [by_name[n] for n in names]
        ds = arrays.read(self._arrays, self.site, tile, variables, (t,))
        return ds.assign_coords(time=np.datetime64(unit.month, "ns"))

    def read_baseline(self, tile: Tile | str) -> xr.Dataset:
        """The BASELINE variables of one tile as (y, x) arrays."""
        tile = self._tile(tile if isinstance(tile, str) else tile.id)
        return arrays.read(self._arrays, self.site, tile, BASELINE, ())

    # -- helpers

    def _writable_layout(self) -> StoreLayout:
        return arrays.writable_layout(self.layout, self.url)

    def _tile(self, tile_id: str) -> Tile:
        return arrays.tile_of(self.site, tile_id, self.url)

    def _delete(self, key: str) -> None:
        """Delete the object `key` (tests use it to undo part of a unit)."""
        self._objects.delete(key)
