"""Real-world STAC item metadata (Earth Search, Planetary Computer, USGS, the local
archive) turned into :class:`~nampo.io.scenes.NormalisedItem` (docs/catalog.md, "Item
normalisation")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from nampo.errors import CatalogError
from nampo.io.scenes.bands import (
    LANDSAT_BANDS,
    LANDSAT_SR_OFFSET,
    LANDSAT_SR_SCALE,
    S2_SCALE,
    SENTINEL2_BANDS,
    SENTINEL2_L1C_BANDS,
    BandSpec,
    processing_baseline,
    s2_offset,
)
from nampo.io.scenes.items import BandAsset, NormalisedItem

__all__ = ["acquired", "normalise", "platform", "tile"]


def normalise(item: Mapping[str, Any]) -> NormalisedItem:
    """A Sentinel-2 L2A or L1C, or Landsat C2 L2 STAC item (plain dict) in nampo's
    internal form.

    The catalog's conventions are recognised from the item itself (collection and asset
    keys), so items of Earth Search, Planetary Computer, USGS and the local archive all
    work; docs/catalog.md ("Band tables") gives the tables and the order in which values
    are read.

    Parameters
    ----------
    item
        A STAC Item as a dict (``items_as_dicts``, not a migrated ``pystac.Item``; both
        ``proj:epsg`` and ``proj:code`` are read).

    Returns
    -------
    NormalisedItem

    Raises
    ------
    CatalogError
        If the item is of another kind (Sentinel-1, Landsat Level-1...), has no CRS, no time, or
        bands in different CRSs. The message names the item.

    Examples
    --------
    >>> scene = normalise(es_item)                                   # doctest: +SKIP
    >>> scene.bands["red"].scale, scene.bands["red"].offset, scene.epsg  # doctest: +SKIP
    (0.0001, -0.1, 32613)
    """
    item_id = str(item.get("id", "?"))
    props = item.get("properties") or {}
    assets = item.get("assets") or {}
    collection = item.get("collection")
    kind = _kind(item)
    table = {
        "sentinel-2": SENTINEL2_BANDS,
        "sentinel-2-l1c": SENTINEL2_L1C_BANDS,
        "landsat": LANDSAT_BANDS,
    }[kind]
    baseline = processing_baseline(item) if kind != "landsat" else None

    item_epsg = _epsg(props, f"item {item_id}")
    bands: dict[str, BandAsset] = {}
    epsgs: set[int] = set()
    for name, spec in table.items():
        key = next((k for k in spec.keys if k in assets), None)
        if key is None:
            continue
        asset = assets[key]
        band_epsg = _epsg(asset, f"asset {key!r} of item {item_id}") or item_epsg
        if band_epsg is not None:
            epsgs.add(band_epsg)
        bands[name] = _band(key, asset, props, spec, kind, baseline, item_id)
    if not bands:
        raise CatalogError(
            f"item {item_id} has none of the assets "
            f"{', '.join(k for spec in table.values() for k in spec.keys)}"
        )
    if len(epsgs) > 1:
        raise CatalogError(f"item {item_id} has bands in several CRSs: EPSG {sorted(epsgs)}")
    if not epsgs:
        raise CatalogError(f"item {item_id} has no CRS (neither proj:epsg nor proj:code)")

    return NormalisedItem(
        id=item_id,
        collection=collection,
        platform=platform(item),
        datetime=acquired(item),
        epsg=epsgs.pop(),
        cloud_cover=_float(props.get("eo:cloud_cover")),
        processing_baseline=baseline,
        tile=tile(item),
        bands=bands,
        bbox=_bbox(item),
        stac=dict(item),
    )


def _kind(item: Mapping[str, Any]) -> str:
    """``sentinel-2`` (L2A), ``sentinel-2-l1c`` or ``landsat``; CatalogError for anything
    else."""
    collection = str(item.get("collection") or "").lower()
    props = item.get("properties") or {}
    plat = str(props.get("platform") or "").lower()
    item_id = str(item.get("id", ""))
    if "landsat" in collection or plat.startswith("landsat"):
        if "l1" in collection or str(props.get("landsat:correction") or "").startswith("L1"):
            raise CatalogError(f"item {item_id} is Landsat Level-1; nampo reads Level-2 only")
        return "landsat"
    if "sentinel-2" in collection or plat.startswith("sentinel-2"):
        product = str(props.get("s2:product_type") or "")
        if "l1c" in collection or product.endswith("1C") or item_id.endswith("_L1C"):
            return "sentinel-2-l1c"
        return "sentinel-2"
    raise CatalogError(
        f"item {item_id} of collection {collection or '?'} is neither Sentinel-2 (L2A, L1C) "
        "nor Landsat Collection 2 Level-2"
    )


def _band(
    key: str,
    asset: Mapping[str, Any],
    props: Mapping[str, Any],
    spec: BandSpec,
    kind: str,
    baseline: str | None,
    item_id: str,
) -> BandAsset:
    raster = (asset.get("raster:bands") or [{}])[0] or {}
    if spec.kind == "mask":
        scale, offset = 1.0, 0.0
    elif kind.startswith("sentinel-2"):
        scale, offset = S2_SCALE, s2_offset(baseline)
    else:
        scale, offset = LANDSAT_SR_SCALE, LANDSAT_SR_OFFSET
    if raster.get("scale") is not None:
        scale = float(raster["scale"])
    if raster.get("offset") is not None:
        offset = float(raster["offset"])
    nodata = raster["nodata"] if "nodata" in raster else spec.nodata
    shape_ = asset.get("proj:shape") or props.get("proj:shape")
    transform = asset.get("proj:transform") or props.get("proj:transform")
    if "href" not in asset:
        raise CatalogError(f"asset {key!r} of item {item_id} has no href")
    return BandAsset(
        key=key,
        href=str(asset["href"]),
        scale=scale,
        offset=offset,
        nodata=None if nodata is None else float(nodata),
        dtype=str(raster.get("data_type") or spec.dtype),
        resolution=_resolution(transform, raster, asset, spec),
        shape=(int(shape_[0]), int(shape_[1])) if shape_ else None,
        transform=tuple(float(v) for v in transform[:6]) if transform else None,  # type: ignore[arg-type]
        requester_pays=bool(
            asset.get("storage:requester_pays", props.get("storage:requester_pays"))
        ),
    )


def _resolution(transform, raster: Mapping, asset: Mapping, spec: BandSpec) -> float:
    if transform:
        return abs(float(transform[0]))
    for value in (raster.get("spatial_resolution"), asset.get("gsd")):
        if value is not None:
            return float(value)
    return spec.resolution


def _epsg(obj: Mapping[str, Any], what: str) -> int | None:
    """``proj:epsg``, else the number of a ``proj:code`` ``EPSG:n``, else None."""
    if obj.get("proj:epsg") is not None:
        return int(obj["proj:epsg"])
    code = obj.get("proj:code")
    if code is None:
        return None
    match = re.fullmatch(r"EPSG:(\d+)", str(code).strip(), flags=re.IGNORECASE)
    if not match:
        raise CatalogError(f"{what}: proj:code {code!r} is not an EPSG code ('EPSG:<n>')")
    return int(match.group(1))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _bbox(item: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    bbox = item.get("bbox")
    if bbox and len(bbox) >= 4:
        if len(bbox) == 6:  # 3D: west, south, low, east, north, high
            return (float(bbox[0]), float(bbox[1]), float(bbox[3]), float(bbox[4]))
        return (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3]))
    return None


def acquired(item: Mapping[str, Any]) -> datetime:
    """The item's ``datetime`` (else ``start_datetime``) as an aware UTC datetime."""
    props = item.get("properties") or {}
    text = props.get("datetime") or props.get("start_datetime")
    if not text:
        raise CatalogError(f"item {item.get('id', '?')} has no datetime")
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        item_id = item.get("id", "?")
        raise CatalogError(f"item {item_id}: datetime {text!r} is not ISO 8601") from None
    # RFC 3339 requires an offset; a bare time is taken as UTC rather than local time.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


_ID_PLATFORM = (
    (re.compile(r"^S2([A-D])_"), "sentinel-2{}"),
    (re.compile(r"^L[COTE]0?(\d)_"), "landsat-{}"),
)


def platform(item: Mapping[str, Any]) -> str:
    """``platform`` lower-cased with ``_`` and spaces as ``-`` (``LANDSAT_8`` ->
    ``landsat-8``, ``Sentinel-2A`` -> ``sentinel-2a``); from the id when absent."""
    value = (item.get("properties") or {}).get("platform")
    if value:
        return re.sub(r"[\s_]+", "-", str(value).strip().lower())
    item_id = str(item.get("id", ""))
    for pattern, template in _ID_PLATFORM:
        match = pattern.match(item_id)
        if match:
            return template.format(match.group(1).lower())
    raise CatalogError(f"item {item_id} names no platform")


def tile(item: Mapping[str, Any]) -> str | None:
    """MGRS tile (``13TDE``) or WRS-2 path+row (``033032``) of the item, None if unknown."""
    props = item.get("properties") or {}
    if props.get("s2:mgrs_tile"):
        return str(props["s2:mgrs_tile"]).upper()
    if props.get("mgrs:utm_zone") is not None and props.get("mgrs:grid_square"):
        zone = int(props["mgrs:utm_zone"])
        return f"{zone:02d}{props.get('mgrs:latitude_band', '')}{props['mgrs:grid_square']}"
    if props.get("landsat:wrs_path") and props.get("landsat:wrs_row"):
        return f"{int(props['landsat:wrs_path']):03d}{int(props['landsat:wrs_row']):03d}"
    code = str(props.get("grid:code") or "")
    match = re.fullmatch(r"(?:MGRS|WRS\d?)-(\w+)", code)
    return match.group(1) if match else None
