"""The layout of a site's store, built in memory: its group attributes, coordinates and
arrays, and the checks of a store's metadata and of a unit's dataset against them.

Never touches a filesystem (:mod:`nampo.io.store.arrays` writes what this module builds).
What a store holds is documented in docs/store.md, "Layout".
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from numcodecs import Blosc

from nampo.errors import StoreError
from nampo.grid import Grid
from nampo.products.variables import ALL, Variable
from nampo.sites import Site, Tile

__all__ = [
    "COMPLETE",
    "COMPRESSOR",
    "LAYOUT_VERSION",
    "META",
    "RECORDS_DIR",
    "StoreLayout",
    "dataset_problems",
    "metadata_differences",
    "metadata_documents",
    "reference_objects",
    "unconsolidated",
]

LAYOUT_VERSION = 1
"""Version of the store layout, in the group attribute ``nampo_layout``."""

COMPRESSOR = Blosc(cname="zstd", clevel=1, shuffle=Blosc.SHUFFLE)
"""Blosc (zstd level 1, byte shuffle) for every array: what GDAL 3.10 reads, and the
cheapest to encode for nearly the best ratio (docs/store.md, "Compression")."""

RECORDS_DIR = "nampo"
"""The store's folder of completion records and run metadata."""

META = (".zgroup", ".zattrs", ".zarray")
"""Names of Zarr v2 metadata documents."""

COMPLETE = ".zmetadata"
"""The consolidated metadata, written last by :func:`nampo.io.store.arrays.create`: a store
without it is not complete."""


@dataclass(frozen=True)
class StoreLayout:
    """What a store was created for: the site's grid and tiles, the calendar, the variables.

    Travels to Dask workers inside a pickled :class:`nampo.io.store.Store`.
    """

    site: Site
    """The site: its name, title, grid and tile size."""
    calendar: tuple[dt.date, ...]
    """First days of the store's months, increasing."""
    variables: tuple[str, ...] = tuple(v.name for v in ALL)
    """Names of the store's variables, in :data:`nampo.products.variables.ALL` order."""

    def __post_init__(self) -> None:
        if not self.calendar:
            raise StoreError("a store's calendar needs at least one month")
        for d in self.calendar:
            if not isinstance(d, dt.date) or isinstance(d, dt.datetime) or d.day != 1:
                raise StoreError(f"calendar entries must be month starts (dates, day 1): {d!r}")
        if any(b <= a for a, b in zip(self.calendar, self.calendar[1:], strict=False)):
            raise StoreError("calendar months must be strictly increasing")
        if self.site.tile_px < 1:
            raise StoreError(f"tile size must be positive, not {self.site.tile_px}")

    def month_index(self, month: dt.date) -> int:
        """Position of `month` on the store's time axis."""
        try:
            return self.calendar.index(month)
        except ValueError:
            raise StoreError(
                f"month {month:%Y-%m} is not in the store's calendar ({_span(self.calendar)})"
            ) from None

    def to_attrs(self) -> dict[str, Any]:
        s, g = self.site, self.site.grid
        return {
            "title": s.title,
            "Conventions": "CF-1.8",
            "source": "nampo",
            "nampo_layout": LAYOUT_VERSION,
            "nampo_site": s.name,
            "nampo_tile_px": s.tile_px,
            "nampo_grid": {
                "epsg": g.epsg,
                "resolution": g.resolution,
                "x0": g.x0,
                "y0": g.y0,
                "width": g.width,
                "height": g.height,
            },
            "nampo_calendar": [f"{m:%Y-%m}" for m in self.calendar],
            "nampo_variables": list(self.variables),
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> StoreLayout:
        """The layout a store's group attributes describe (KeyError/ValueError when not)."""
        g = attrs["nampo_grid"]
        grid = Grid(
            int(g["epsg"]),
            float(g["resolution"]),
            float(g["x0"]),
            float(g["y0"]),
            int(g["width"]),
            int(g["height"]),
        )
        site = Site(
            attrs["nampo_site"],
            attrs.get("title", attrs["nampo_site"]),
            grid,
            int(attrs["nampo_tile_px"]),
        )
        calendar = tuple(dt.date.fromisoformat(m + "-01") for m in attrs["nampo_calendar"])
        return cls(site, calendar, tuple(attrs["nampo_variables"]))

    def differences(self, stored: StoreLayout) -> list[str]:
        """What differs between `stored` (in the store) and this layout (asked for)."""
        out = []
        if stored.site.name != self.site.name:
            out.append(f"site {stored.site.name!r} in the store, {self.site.name!r} asked")
        if stored.site.grid != self.site.grid:
            ga, gb = stored.site.grid, self.site.grid
            fields = ("epsg", "resolution", "x0", "y0", "width", "height")
            out += [
                f"grid {f} {_num(getattr(ga, f))} in the store, {_num(getattr(gb, f))} asked"
                for f in fields
                if getattr(ga, f) != getattr(gb, f)
            ]
        if stored.site.tile_px != self.site.tile_px:
            out.append(f"tile_px {stored.site.tile_px} in the store, {self.site.tile_px} asked")
        if stored.calendar != self.calendar:
            a, b = stored.calendar, self.calendar
            text = f"calendar {_span(a)} in the store, {_span(b)} asked"
            if (a[0], a[-1], len(a)) == (b[0], b[-1], len(b)):
                first = next(x for x, y in zip(a, b, strict=True) if x != y)
                text += f" (they differ from {first:%Y-%m})"
            out.append(text)
        if stored.variables != self.variables:
            missing = [v for v in self.variables if v not in stored.variables]
            extra = [v for v in stored.variables if v not in self.variables]
            parts = [
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(extra)}" if extra else "",
            ]
            text = "; ".join(p for p in parts if p) or "in another order"
            out.append(f"variables of the store: {text}")
        return out


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _span(calendar: Sequence[dt.date]) -> str:
    return f"{calendar[0]:%Y-%m}..{calendar[-1]:%Y-%m} ({len(calendar)} months)"


def _chunks(layout: StoreLayout, var: Variable) -> tuple[int, ...]:
    g, t = layout.site.grid, layout.site.tile_px
    yx = (min(t, g.height), min(t, g.width))
    return (1, *yx) if var.monthly else yx


def _template(layout: StoreLayout) -> tuple[xr.Dataset, dict[str, dict]]:
    """The store as a lazy dataset (data never computed) and its encoding."""
    g = layout.site.grid
    x, y = g.xy_coords()
    time = np.array(layout.calendar, dtype="datetime64[ns]")
    crs = g.crs
    wkt = crs.to_wkt()
    spatial_ref = xr.DataArray(
        np.int64(0),
        attrs={
            **crs.to_cf(),
            "crs_wkt": wkt,
            "spatial_ref": wkt,  # what GDAL reads
            "GeoTransform": " ".join(repr(float(v)) for v in g.transform.to_gdal()),
        },
    )
    coords = {
        "time": ("time", time, {"standard_name": "time", "long_name": "month", "axis": "T"}),
        "y": ("y", y, _axis_attrs("y")),
        "x": ("x", x, _axis_attrs("x")),
        "spatial_ref": spatial_ref,
    }
    data_vars, encoding = {}, {}
    for var in ALL:
        dims = var.dims
        shape = tuple(len(time) if d == "time" else g.shape[d == "x"] for d in dims)
        # One dask chunk for the whole array: nothing is computed, and a graph of one
        # task per zarr chunk would cost seconds on a large site.
        data = da.empty(shape, dtype=var.dtype, chunks=shape)
        data_vars[var.name] = (dims, data, {**var.attrs, "grid_mapping": "spatial_ref"})
        encoding[var.name] = {
            "chunks": _chunks(layout, var),
            "compressors": (COMPRESSOR,),
            "_FillValue": np.array(var.fill_value, dtype=var.dtype)[()],
        }
    encoding["time"] = {
        "units": "days since 1970-01-01",
        "calendar": "proleptic_gregorian",
        "dtype": "int32",
        "compressors": (COMPRESSOR,),
    }
    for name in ("x", "y", "spatial_ref"):
        encoding[name] = {"compressors": (COMPRESSOR,)}
    return xr.Dataset(data_vars, coords=coords, attrs=layout.to_attrs()), encoding


def _axis_attrs(axis: str) -> dict[str, str]:
    return {
        "standard_name": f"projection_{axis}_coordinate",
        "long_name": f"{axis} coordinate of projection (pixel centre)",
        "units": "m",
        "axis": axis.upper(),
    }


@functools.lru_cache(maxsize=4)
def reference_objects(layout: StoreLayout) -> dict[str, bytes]:
    """Every object of a freshly created store (metadata and coordinate chunks), by key.

    Built in memory by xarray and zarr themselves, so the bytes are exactly what they
    would write, and the same in every process that creates the store. Cached: do not
    modify the result.
    """
    ds, encoding = _template(layout)
    objects: dict[str, Any] = {}
    memory = zarr.storage.MemoryStore(store_dict=objects)
    ds.to_zarr(
        memory,
        mode="w",
        compute=False,
        consolidated=False,
        zarr_format=2,
        encoding=encoding,
        write_empty_chunks=True,
    )
    # The records folder is an empty Zarr group: when xarray opens the store, zarr lists
    # the root's members and warns about any folder that is neither an array nor a group.
    zarr.create_group(
        memory,
        path=RECORDS_DIR,
        zarr_format=2,
        attributes={"description": "nampo completion records and run metadata (JSON)"},
    )
    # Consolidated metadata: the layout never changes, so it never goes stale, and
    # opening the store costs one read instead of two per array.
    zarr.consolidate_metadata(memory, zarr_format=2)
    return {k: v.to_bytes() for k, v in objects.items()}


def metadata_documents(reference: Mapping[str, bytes]) -> dict[str, Any]:
    """The metadata documents (not the consolidated one) among `reference`, parsed."""
    return {k: json.loads(v) for k, v in reference.items() if k.rsplit("/", 1)[-1] in META}


def unconsolidated(raw: bytes | None) -> dict[str, Any]:
    """The metadata documents inside a ``.zmetadata`` object, by key."""
    if raw is None:
        return {}
    try:
        return dict(json.loads(raw)["metadata"])
    except (KeyError, TypeError, ValueError):
        return {".zattrs": {}}  # reported as "not a nampo store"


def metadata_differences(
    layout: StoreLayout, found: Mapping[str, Any], reference: Mapping[str, Any]
) -> list[str]:
    """What differs between the metadata documents `found` in a store (parsed, by key) and
    those of `layout` (`reference`, from :func:`metadata_documents`); StoreError when the
    group attributes are not a nampo store's."""
    diffs: list[str] = []
    if ".zattrs" in found:
        try:
            diffs = layout.differences(StoreLayout.from_attrs(found[".zattrs"]))
        except (KeyError, TypeError, ValueError, StoreError):
            raise StoreError("it holds a Zarr group that is not a nampo store") from None
    if ".zgroup" in found and found[".zgroup"].get("zarr_format") != 2:
        diffs.append("the group is not Zarr format 2")
    if diffs:  # the arrays would differ too: name the cause only
        return diffs
    for key, have in sorted(found.items()):
        name, _, kind = key.rpartition("/")
        if not name or kind not in (".zarray", ".zattrs") or key not in reference:
            continue
        want = reference[key]
        fields = ("_ARRAY_DIMENSIONS",) if kind == ".zattrs" else ("shape", "chunks", "dtype")
        diffs += [
            f"variable {name} {f} {have.get(f)} in the store, {want.get(f)} asked"
            for f in (*fields, "fill_value")
            if f in want and have.get(f) != want.get(f)
        ]
    return diffs


def dataset_problems(
    ds: xr.Dataset, variables: Sequence[Variable], tile: Tile, site: Site, month: dt.date | None
) -> list[str]:
    """What keeps `ds` from being written as `tile` (empty when nothing)."""
    if not isinstance(ds, xr.Dataset):
        return [f"expected an xarray.Dataset, got {type(ds).__name__}"]
    out = []
    expected = {v.name: v for v in variables}
    missing = [n for n in expected if n not in ds.data_vars]
    extra = sorted(str(n) for n in ds.data_vars if n not in expected)
    if missing:
        out.append(f"missing variables {', '.join(missing)}")
    if extra:
        out.append(f"unknown variables {', '.join(extra)}")
    for name, var in expected.items():
        if name not in ds.data_vars:
            continue
        a = ds[name]
        if a.dims != ("y", "x"):
            out.append(f"{name} has dims {a.dims}, expected ('y', 'x')")
        elif a.shape != tile.shape:
            out.append(f"{name} has shape {a.shape}, expected {tile.shape} (tile {tile.id})")
        if a.dtype != np.dtype(var.dtype):
            out.append(f"{name} has dtype {a.dtype}, expected {var.dtype}")
    x, y = site.tile_grid(tile).xy_coords()
    tol = site.grid.resolution * 1e-3
    for dim, want in (("x", x), ("y", y)):
        if dim in ds.coords:
            have = np.asarray(ds[dim].values)
            if have.shape != want.shape or not np.allclose(have, want, rtol=0, atol=tol):
                out.append(f"coordinate {dim} is not tile {tile.id}'s pixel centres")
    if month is not None and "time" in ds.coords:
        times = np.atleast_1d(ds["time"].values).astype("datetime64[D]")
        if times.size != 1 or times[0] != np.datetime64(month, "D"):
            out.append(f"coordinate time is {times}, expected {month:%Y-%m-%d}")
    return out
