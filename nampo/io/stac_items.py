"""nampo's one builder of STAC Items and Collections shaped like Earth Search v1's
Sentinel-2 ones (``sentinel-2-l2a`` and ``sentinel-2-l1c``); their shared pieces are in
:mod:`nampo.io.stac_format`.

Its callers: the importer (L1C items of GeoTIFF files) and the simulator (L2A items of
rendered scenes, :mod:`nampo.scenario.stac_items`). How these items differ from real ones
on purpose: ``docs/scenario.md``, "STAC items".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from affine import Affine
from shapely.geometry import MultiPolygon, Polygon

from nampo.io.stac_format import (
    ASSET_KEYS,
    ASSET_TITLES,
    BANDS,
    COG_MEDIA_TYPE,
    COLLECTION_EXTENSIONS,
    L1C_EXTENSIONS,
    LICENSE_HREF,
    REFLECTANCE_KEYS,
    REFLECTANCE_SCALE,
    STAC_EXTENSIONS,
    STAC_VERSION,
    footprint_geometry,
    iso_us,
    iso_z,
    num,
    proj_fields,
    raster_band,
    utc,
)

__all__ = [
    "RasterAsset",
    "l1c_asset",
    "l1c_collection",
    "l1c_item",
    "l2a_assets",
    "l2a_collection",
    "l2a_item",
]


@dataclass(frozen=True)
class RasterAsset:
    """One COG of a scene, as it was written."""

    key: str
    """Earth Search asset key: one of :data:`ASSET_KEYS` (``red``, ``scl``, ``visual`` ...)."""
    path: Path
    """Absolute path of the COG on disk; it becomes the href as is (GDAL reads it directly)."""
    shape: tuple[int, int]
    """(rows, cols) of this asset."""
    transform: Affine
    """Its geotransform (north-up, square pixels of 10, 20 or 60 m)."""


# --------------------------------------------------------------------------------------
# Sentinel-2 L2A (Earth Search's sentinel-2-l2a)
# --------------------------------------------------------------------------------------


def l2a_item(
    item_id: str,
    properties: dict[str, Any],
    footprint_lonlat: Polygon | MultiPolygon,
    assets: Sequence[RasterAsset],
    offset: float,
    collection_id: str,
) -> dict[str, Any]:
    """An ES v1 sentinel-2-l2a Item (a plain JSON-ready dict) with these `properties`
    (in ES's order), the footprint as geometry and bbox, and the assets' reflectance
    ``raster:bands`` offset `offset`."""
    geometry, bbox = footprint_geometry(footprint_lonlat)
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "id": item_id,
        "properties": properties,
        "geometry": geometry,
        "links": [{"rel": "license", "href": LICENSE_HREF}],
        "assets": l2a_assets(assets, offset),
        "bbox": bbox,
        "stac_extensions": list(STAC_EXTENSIONS),
        "collection": collection_id,
    }


def l2a_assets(assets: Sequence[RasterAsset], offset: float) -> dict[str, Any]:
    """ES's asset dicts of `assets` (at most one per key), listed alphabetically as ES
    lists them; `offset` is the reflectance bands' ``raster:bands`` offset."""
    out: dict[str, Any] = {}
    for asset in assets:
        if asset.key not in ASSET_KEYS:
            raise ValueError(f"asset key {asset.key!r} is not one of {', '.join(ASSET_KEYS)}")
        if asset.key in out:
            raise ValueError(f"asset key {asset.key!r} is given twice")
        out[asset.key] = _l2a_asset(asset, offset)
    return {k: out[k] for k in sorted(out)}


def _l2a_asset(asset: RasterAsset, offset: float) -> dict[str, Any]:
    path = Path(asset.path)
    if not path.is_absolute():
        raise ValueError(f"asset {asset.key!r} path {str(path)!r} is not absolute")
    rows, cols = (int(n) for n in asset.shape)
    if rows <= 0 or cols <= 0:
        raise ValueError(f"asset {asset.key!r} shape {asset.shape} is empty")
    t = asset.transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e != -t.a:
        raise ValueError(
            f"asset {asset.key!r} transform {tuple(t)[:6]} is not north-up with square pixels"
        )
    res = num(t.a)
    key = asset.key
    proj = proj_fields((rows, cols), t, whole=True)
    d: dict[str, Any] = {"href": str(path), "type": COG_MEDIA_TYPE}
    if key in REFLECTANCE_KEYS:
        eo = BANDS[key]
        d["title"] = f"{eo.description} - {res}m"
        d["eo:bands"] = [eo.as_eo()]
        d["gsd"] = res
        d.update(proj)
        d["raster:bands"] = [
            raster_band("uint16", res, bits=15, scale=REFLECTANCE_SCALE, offset=offset)
        ]
        d["roles"] = ["data", "reflectance"]
    elif key == "visual":
        d["title"] = ASSET_TITLES[key]
        d["eo:bands"] = [BANDS[b].as_eo() for b in ("red", "green", "blue")]
        d.update(proj)
        d["roles"] = ["visual"]
    else:  # scl, aot, wvp
        d["title"] = ASSET_TITLES[key]
        d.update(proj)
        if key == "scl":
            band = raster_band("uint8", res)
        else:
            unit = "cm" if key == "wvp" else None
            band = raster_band("uint16", res, bits=15, unit=unit, scale=0.001, offset=0)
        d["raster:bands"] = [band]
        d["roles"] = ["data", "reflectance"]  # sic: ES gives SCL, AOT and WVP these roles
    return d


def l2a_collection(
    bbox_lonlat: Sequence[float],
    start: datetime,
    end: datetime | None,
    collection_id: str,
    description: str,
) -> dict[str, Any]:
    """A STAC Collection (a plain dict) shaped like ES's sentinel-2-l2a.

    It keeps ES's title, extensions, license, keywords, providers and summaries. Its
    ``item_assets`` list the COG assets :func:`l2a_assets` makes, with ES's collection-level
    ``raster:bands`` (reflectance offset 0, as ES's collection has it; each Item gives
    the offset of its own baseline) and without ``proj:shape``/``proj:transform`` (those
    depend on the site). Links: only ``license``; the STAC API adds the rest.

    Parameters
    ----------
    bbox_lonlat
        (west, south, east, north) of the archive.
    start, end
        Temporal extent; `end` None for an open-ended archive.
    """
    if len(bbox_lonlat) != 4:
        raise ValueError(f"bbox_lonlat {bbox_lonlat} is not (west, south, east, north)")
    west, south, east, north = (float(v) for v in bbox_lonlat)
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise ValueError(f"bbox_lonlat {bbox_lonlat} is not a lon/lat box")
    start_utc = utc(start)
    end_utc = utc(end) if end is not None else None
    if end_utc is not None and end_utc < start_utc:
        raise ValueError(f"end {end} is before start {start}")
    item_assets = {}
    for key in sorted(ASSET_KEYS):
        # the Item asset of a placeholder at ES's resolution, minus what is per Item
        res = _NOMINAL_RES[key]
        placeholder = RasterAsset(key, Path("/x.tif"), (1, 1), Affine(res, 0, 0, 0, -res, 0))
        d = _l2a_asset(placeholder, 0)
        for field in ("href", "proj:shape", "proj:transform"):
            d.pop(field)
        item_assets[key] = d
    return {
        "type": "Collection",
        "id": collection_id,
        "stac_version": STAC_VERSION,
        "title": "Sentinel-2 Level-2A",
        "description": description,
        "links": [{"rel": "license", "href": LICENSE_HREF, "title": "proprietary"}],
        "stac_extensions": list(COLLECTION_EXTENSIONS),
        "item_assets": item_assets,
        "extent": {
            "spatial": {"bbox": [[west, south, east, north]]},
            "temporal": {"interval": [[iso_us(start_utc), iso_us(end_utc) if end_utc else None]]},
        },
        "license": "proprietary",
        "keywords": ["sentinel", "earth observation", "esa"],
        "providers": [
            {"name": "ESA", "roles": ["producer"], "url": "https://earth.esa.int/web/guest/home"},
            {"name": "nampo", "roles": ["processor", "host"]},
        ],
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
            "gsd": [10, 20, 60],
            "view:off_nadir": [0],
            "sci:doi": ["10.5270/s2_-znk9xsj"],
            "eo:bands": [b.as_eo() for b in BANDS.values()],
        },
    }


_NOMINAL_RES = {
    **dict.fromkeys(("blue", "green", "red", "nir", "visual"), 10),
    **dict.fromkeys(("coastal", "nir09"), 60),
    **dict.fromkeys(("rededge1", "rededge2", "rededge3", "nir08", "swir16", "swir22"), 20),
    **dict.fromkeys(("scl", "aot", "wvp"), 20),
}
"""ES's resolution of each asset (used for the Collection's ``item_assets``)."""


# --------------------------------------------------------------------------------------
# Sentinel-2 L1C (imported scenes, Earth Search's sentinel-2-l1c)
# --------------------------------------------------------------------------------------


def l1c_asset(
    key: str,
    esa: str,
    href: str,
    shape: tuple[int, int],
    transform: Affine,
    epsg: int,
    resolution: float,
    offset: float,
    source: Path,
) -> dict[str, Any]:
    """The asset of one imported band: ES asset `key` (``red``), ESA band `esa` (``B04``),
    the file it was imported from as ``nampo:source``."""
    return {
        "href": href,
        "type": COG_MEDIA_TYPE,
        "title": f"{key} ({esa})",
        "eo:bands": [{"name": esa, "common_name": key}],
        "gsd": resolution,
        **proj_fields(shape, transform, whole=False, epsg=epsg),
        "raster:bands": [raster_band("uint16", resolution, scale=REFLECTANCE_SCALE, offset=offset)],
        "roles": ["data", "reflectance"],
        "nampo:source": str(source),
    }


def l1c_item(
    item_id: str,
    collection_id: str,
    footprint_lonlat: Polygon | MultiPolygon,
    when: datetime,
    platform: str,
    epsg: int,
    assets: dict[str, Any],
    imported_from: Path,
) -> dict[str, Any]:
    """An imported scene's Item (``s2:product_type`` S2MSI1C); `assets` from
    :func:`l1c_asset`, `when` in UTC."""
    geometry, bbox = footprint_geometry(footprint_lonlat)
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": list(L1C_EXTENSIONS),
        "id": item_id,
        "collection": collection_id,
        "geometry": geometry,
        "bbox": bbox,
        "properties": {
            "datetime": iso_z(when),
            "platform": platform,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "proj:epsg": epsg,
            "s2:product_type": "S2MSI1C",
            "nampo:imported_from": str(imported_from),
        },
        "links": [],
        "assets": assets,
    }


def l1c_collection(collection_id: str, description: str) -> dict[str, Any]:
    """The Collection of imported L1C scenes. Its extent is Sentinel-2's (the world, from
    launch): one collection holds the imports of every site, and loading another site's
    archive (an upsert) keeps it true."""
    return {
        "type": "Collection",
        "id": collection_id,
        "stac_version": STAC_VERSION,
        "title": "Sentinel-2 Level-1C",
        "description": description,
        "license": "proprietary",
        "links": [],
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [["2015-06-23T00:00:00Z", None]]},
        },
    }
