"""The STAC item both loaders read for a scene, rebuilt from its normalised item."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from nampo.io.scenes import NormalisedItem

__all__ = ["loader_item"]

_PROJ_EXT = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
_RASTER_EXT = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"


def loader_item(scene: NormalisedItem, bands: Sequence[str]) -> dict[str, Any]:
    """The STAC item (plain dict) both loaders read for `scene`.

    Assets are keyed by internal band name and carry ``proj:epsg``, ``proj:shape``,
    ``proj:transform`` and ``raster:bands`` (data type, nodata) from the normalised item,
    whatever the catalog put in its own item.
    """
    assets: dict[str, Any] = {}
    for name in bands:
        band = scene.bands[name]
        raster: dict[str, Any] = {"data_type": band.dtype}
        if band.nodata is not None:
            raster["nodata"] = band.nodata
        asset: dict[str, Any] = {
            "href": band.href,
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "proj:epsg": scene.epsg,
            "raster:bands": [raster],
        }
        if band.shape is not None and band.transform is not None:
            asset["proj:shape"] = list(band.shape)
            asset["proj:transform"] = list(band.transform)
        assets[name] = asset
    geometry = scene.stac.get("geometry")
    bbox = list(scene.bbox) if scene.bbox else None
    if geometry is None and bbox is not None:
        w, s, e, n = bbox
        geometry = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [_PROJ_EXT, _RASTER_EXT],
        "id": scene.id,
        "collection": scene.collection or "nampo",
        "geometry": geometry,
        "bbox": bbox,
        "properties": {
            "datetime": scene.datetime.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "platform": scene.platform,
            "proj:epsg": scene.epsg,
        },
        "links": [],
        "assets": assets,
    }
