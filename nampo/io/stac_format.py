"""The pieces of Earth Search v1's STAC format for Sentinel-2 that nampo's items share:
extension URLs, ``eo:bands``, asset keys and titles, ``raster:bands`` and ``proj:*``
fields, geometry, and the datetime formats ES writes. The items themselves are built by
:mod:`nampo.io.stac_items`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from affine import Affine
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.polygon import orient

__all__ = [
    "ASSET_FILES",
    "ASSET_KEYS",
    "ASSET_TITLES",
    "BANDS",
    "COG_MEDIA_TYPE",
    "COLLECTION_EXTENSIONS",
    "L1C_EXTENSIONS",
    "LICENSE_HREF",
    "REFLECTANCE_KEYS",
    "REFLECTANCE_SCALE",
    "STAC_EXTENSIONS",
    "STAC_VERSION",
    "Band",
    "common_folder",
    "footprint_geometry",
    "iso_ms",
    "iso_us",
    "iso_z",
    "num",
    "proj_fields",
    "raster_band",
    "utc",
]

STAC_VERSION = "1.0.0"

_PROJECTION = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
_RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
_EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"

STAC_EXTENSIONS = (
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
    _RASTER,
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    _PROJECTION,
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    _EO,
)
"""The ``stac_extensions`` of an ES v1 sentinel-2-l2a Item, in ES's order."""

L1C_EXTENSIONS = (_PROJECTION, _RASTER, _EO)
"""The ``stac_extensions`` of an imported L1C Item."""

COLLECTION_EXTENSIONS = (
    "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/scientific/v1.0.0/schema.json",
    _RASTER,
    "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
)
"""The ``stac_extensions`` of ES v1's sentinel-2-l2a Collection."""

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
LICENSE_HREF = "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"

REFLECTANCE_SCALE = 0.0001
"""``raster:bands`` scale of Sentinel-2 reflectance (ESA's 1/10000 quantification)."""


@dataclass(frozen=True)
class Band:
    """One spectral band as ES's ``eo:bands`` describe it."""

    name: str
    common_name: str
    description: str
    center_wavelength: float
    full_width_half_max: float

    def as_eo(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "common_name": self.common_name,
            "description": self.description,
            "center_wavelength": self.center_wavelength,
            "full_width_half_max": self.full_width_half_max,
        }


BANDS = {
    b.name: b
    for b in (
        Band("coastal", "coastal", "Coastal aerosol (band 1)", 0.443, 0.027),
        Band("blue", "blue", "Blue (band 2)", 0.49, 0.098),
        Band("green", "green", "Green (band 3)", 0.56, 0.045),
        Band("red", "red", "Red (band 4)", 0.665, 0.038),
        Band("rededge1", "rededge", "Red edge 1 (band 5)", 0.704, 0.019),
        Band("rededge2", "rededge", "Red edge 2 (band 6)", 0.74, 0.018),
        Band("rededge3", "rededge", "Red edge 3 (band 7)", 0.783, 0.028),
        Band("nir", "nir", "NIR 1 (band 8)", 0.842, 0.145),
        Band("nir08", "nir08", "NIR 2 (band 8A)", 0.865, 0.033),
        Band("nir09", "nir09", "NIR 3 (band 9)", 0.945, 0.026),
        Band("cirrus", "cirrus", "Cirrus (band 10)", 1.3735, 0.075),
        Band("swir16", "swir16", "SWIR 1 (band 11)", 1.61, 0.143),
        Band("swir22", "swir22", "SWIR 2 (band 12)", 2.19, 0.242),
    )
}
"""ES's ``eo:bands`` entry of each Sentinel-2 band, by ES asset key."""

REFLECTANCE_KEYS = (
    "coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3",
    "nir", "nir08", "nir09", "swir16", "swir22",
)  # fmt: skip
"""Asset keys of the surface-reflectance bands (L2A has no cirrus band 10)."""

ASSET_KEYS = (*REFLECTANCE_KEYS, "scl", "aot", "wvp", "visual")
"""Every L2A asset key :func:`nampo.io.stac_items.l2a_assets` accepts (ES's COG asset keys)."""

ASSET_FILES = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
    "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
    "swir16": "B11", "swir22": "B12", "scl": "SCL", "aot": "AOT", "wvp": "WVP",
    "visual": "TCI",
}  # fmt: skip
"""ES's file stem of each asset (``B04.tif`` ...), for writers that want ES's names."""

ASSET_TITLES = {
    "scl": "Scene classification map (SCL)",
    "aot": "Aerosol optical thickness (AOT)",
    "wvp": "Water vapour (WVP)",
    "visual": "True color image",
}


# --------------------------------------------------------------------------------------


def raster_band(
    data_type: str,
    resolution: float,
    *,
    bits: int | None = None,
    unit: str | None = None,
    scale: float | None = None,
    offset: float | None = None,
) -> dict[str, Any]:
    """One ``raster:bands`` entry, its fields in ES's order (nodata 0, as ES's)."""
    band: dict[str, Any] = {"nodata": 0, "data_type": data_type}
    if bits is not None:
        band["bits_per_sample"] = bits
    band["spatial_resolution"] = resolution
    if unit is not None:
        band["unit"] = unit
    if scale is not None:
        band["scale"] = scale
    if offset is not None:
        band["offset"] = offset
    return band


def proj_fields(
    shape: tuple[int, int], transform: Affine, *, whole: bool, epsg: int | None = None
) -> dict[str, Any]:
    """``proj:*`` fields of an asset; `whole`: whole numbers as ints (10.0 -> 10, as ES)."""
    out: dict[str, Any] = {} if epsg is None else {"proj:epsg": epsg}
    coefficients = tuple(transform)[:6]
    out["proj:shape"] = list(shape)
    out["proj:transform"] = [num(v) for v in coefficients] if whole else list(coefficients)
    return out


def footprint_geometry(footprint: Polygon | MultiPolygon) -> tuple[dict[str, Any], list[float]]:
    """GeoJSON geometry (RFC 7946 ring orientation, lists) and bbox of a lon/lat footprint."""
    if not isinstance(footprint, Polygon | MultiPolygon) or footprint.is_empty:
        raise ValueError(f"footprint_lonlat must be a non-empty Polygon, got {footprint!r:.80}")
    if not footprint.is_valid:
        raise ValueError("footprint_lonlat is not a valid polygon (self-intersecting?)")
    west, south, east, north = footprint.bounds
    if not (-180 <= west and east <= 180 and -90 <= south and north <= 90):
        raise ValueError(f"footprint_lonlat bounds {footprint.bounds} are not lon/lat")
    # RFC 7946: exterior rings counter-clockwise, holes clockwise (as ES's geometries are)
    if isinstance(footprint, Polygon):
        footprint = orient(footprint, 1.0)
    else:
        footprint = MultiPolygon([orient(p, 1.0) for p in footprint.geoms])
    return _lists(mapping(footprint)), [west, south, east, north]


def _lists(obj: Any) -> Any:
    """shapely's mapping() uses tuples; JSON (and a to_dict() round trip) has lists."""
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_lists(v) for v in obj]
    return obj


def num(value: float) -> int | float:
    """10.0 -> 10, as ES writes whole numbers; other values unchanged."""
    f = float(value)
    return int(f) if f.is_integer() else f


def common_folder(paths: Sequence[Path]) -> str:
    """The deepest folder holding every file of `paths` (ES's ``earthsearch:s3_path``)."""
    return os.path.commonpath([str(Path(p).parent) for p in paths])


def utc(when: datetime) -> datetime:
    """`when` in UTC; a naive datetime is refused."""
    if when.tzinfo is None:
        raise ValueError(f"datetime {when.isoformat()} has no timezone (give UTC)")
    return when.astimezone(UTC)


def iso_ms(when: datetime) -> str:
    """ES's ``created``/``updated`` format: milliseconds and a Z."""
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def iso_us(when: datetime) -> str:
    """ES's L2A ``datetime`` format: microseconds and a Z."""
    return f"{when:%Y-%m-%dT%H:%M:%S.%f}Z"


def iso_z(when: datetime) -> str:
    """An imported item's ``datetime``: ISO 8601 of a UTC time with a Z."""
    return when.isoformat().replace("+00:00", "Z")
