"""STAC Items and the Collection of the scenario archive, shaped like Earth Search v1.

Every simulated scene becomes one Item that a client cannot tell apart from an Item of
Earth Search v1's ``sentinel-2-l2a`` collection by its shape: the same ``stac_extensions``,
the same property names and JSON types, the same asset keys, titles, ``eo:bands``,
``raster:bands`` (scale, offset, nodata), roles and ``proj:*`` fields. The code that reads
Earth Search therefore reads the scenario archive unchanged.

The reference is a real Earth Search item (``S2A_13TDE_20231008_0_L2A``) and the real
``sentinel-2-l2a`` collection, recorded in ``../shared/data/real``. Deliberate differences
from real Earth Search items:

- Only the COG assets exist (no ``*-jp2`` duplicates, no ``thumbnail``,
  ``granule_metadata`` or ``tileinfo_metadata``): the renderer makes none of those files.
- Hrefs are plain absolute paths of local files, which GDAL reads directly.
- Links: only ``license``. ``self``, ``parent``, ``collection`` and ``root`` are added by
  the STAC API (pgstac); ES's ``canonical``, ``derived_from`` and ``thumbnail`` point at
  S3 and the internet, which a client would try to fetch.
- Identifiers that describe ESA's ground segment (``s2:product_uri``, ``s2:datatake_id``,
  ``s2:datastrip_id``, ``s2:granule_id``, ``s2:generation_time``) follow the real naming
  patterns, but the times in them are derived from the sensing time by fixed lags (see
  :func:`build_item`), and ``created``/``updated`` likewise, so that rendering the same
  scenario twice gives byte-identical Items.
- ``earthsearch:s3_path`` holds the local folder of the assets, ``earthsearch:payload_id``
  and ``processing:software`` name nampo.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from affine import Affine
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.polygon import orient

# --------------------------------------------------------------------------------------
# What Earth Search v1 sentinel-2-l2a items contain (copied from the real item's values)
# --------------------------------------------------------------------------------------

STAC_VERSION = "1.0.0"

STAC_EXTENSIONS = (
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
)
"""The ``stac_extensions`` of an ES v1 sentinel-2-l2a Item, in ES's order."""

COLLECTION_EXTENSIONS = (
    "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/scientific/v1.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
)
"""The ``stac_extensions`` of ES v1's sentinel-2-l2a Collection."""

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
LICENSE_HREF = "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"

REFLECTANCE_SCALE = 0.0001
BOA_OFFSET = -0.1
"""``raster:bands`` offset of reflectance from baseline 04.00 (ESA's BOA_ADD_OFFSET -1000
times the 1/10000 quantification)."""


@dataclass(frozen=True)
class _Band:
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


_BANDS = {
    b.name: b
    for b in (
        _Band("coastal", "coastal", "Coastal aerosol (band 1)", 0.443, 0.027),
        _Band("blue", "blue", "Blue (band 2)", 0.49, 0.098),
        _Band("green", "green", "Green (band 3)", 0.56, 0.045),
        _Band("red", "red", "Red (band 4)", 0.665, 0.038),
        _Band("rededge1", "rededge", "Red edge 1 (band 5)", 0.704, 0.019),
        _Band("rededge2", "rededge", "Red edge 2 (band 6)", 0.74, 0.018),
        _Band("rededge3", "rededge", "Red edge 3 (band 7)", 0.783, 0.028),
        _Band("nir", "nir", "NIR 1 (band 8)", 0.842, 0.145),
        _Band("nir08", "nir08", "NIR 2 (band 8A)", 0.865, 0.033),
        _Band("nir09", "nir09", "NIR 3 (band 9)", 0.945, 0.026),
        _Band("cirrus", "cirrus", "Cirrus (band 10)", 1.3735, 0.075),
        _Band("swir16", "swir16", "SWIR 1 (band 11)", 1.61, 0.143),
        _Band("swir22", "swir22", "SWIR 2 (band 12)", 2.19, 0.242),
    )
}

REFLECTANCE_KEYS = (
    "coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3",
    "nir", "nir08", "nir09", "swir16", "swir22",
)  # fmt: skip
"""Asset keys of the surface-reflectance bands (L2A has no cirrus band 10)."""

ASSET_KEYS = (*REFLECTANCE_KEYS, "scl", "aot", "wvp", "visual")
"""Every asset key :func:`build_item` accepts (ES's COG asset keys)."""

ASSET_FILES = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
    "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
    "swir16": "B11", "swir22": "B12", "scl": "SCL", "aot": "AOT", "wvp": "WVP",
    "visual": "TCI",
}  # fmt: skip
"""ES's file stem of each asset (``B04.tif`` ...), for renderers that want ES's names."""

_TITLES = {
    "scl": "Scene classification map (SCL)",
    "aot": "Aerosol optical thickness (AOT)",
    "wvp": "Water vapour (WVP)",
    "visual": "True color image",
}

SCL_CLASSES = (
    "saturated_defective", "dark_features", "cloud_shadow", "vegetation", "not_vegetated",
    "water", "unclassified", "medium_proba_clouds", "high_proba_clouds", "thin_cirrus",
    "snow_ice",
)  # fmt: skip
"""Keys of :attr:`SceneMeta.scl_percentages` for SCL classes 1-11, in class order."""

_PERCENTAGE_PROPERTIES = {
    "degraded_msi_data": "s2:degraded_msi_data_percentage",
    "nodata_pixel": "s2:nodata_pixel_percentage",
    "saturated_defective": "s2:saturated_defective_pixel_percentage",
    **{k: f"s2:{k}_percentage" for k in SCL_CLASSES if k != "saturated_defective"},
}
"""``scl_percentages`` key -> ES property, in ES's property order."""

# --------------------------------------------------------------------------------------
# ESA processing baselines
# --------------------------------------------------------------------------------------

PROCESSING_BASELINES: tuple[tuple[date, str], ...] = (
    (date(2015, 6, 23), "02.00"),  # launch of Sentinel-2A: products of 2015 before 02.01
    (date(2015, 12, 15), "02.01"),
    (date(2016, 5, 3), "02.02"),
    (date(2016, 6, 15), "02.04"),
    (date(2017, 4, 27), "02.05"),
    (date(2017, 10, 23), "02.06"),
    (date(2018, 3, 26), "02.07"),
    (date(2018, 5, 23), "02.08"),
    (date(2018, 10, 8), "02.09"),
    (date(2018, 11, 6), "02.10"),
    (date(2018, 11, 21), "02.11"),
    (date(2019, 5, 6), "02.12"),
    (date(2019, 7, 22), "02.13"),
    (date(2020, 2, 4), "02.14"),
    (date(2021, 3, 30), "03.00"),
    (date(2021, 6, 30), "03.01"),
    (date(2022, 1, 25), "04.00"),
    (date(2022, 12, 6), "05.09"),
    (date(2023, 12, 13), "05.10"),
    (date(2024, 7, 23), "05.11"),
)
"""(first day in force, baseline) of the Sentinel-2 L2A products ESA published as new.

Sources (ESA's "Processing Baseline" page and news items, and the Copernicus Data Space
baseline tables):

- 02.00 is ESA's initial baseline (introduced 23 Nov 2015); it is used here from the
  launch of Sentinel-2A (23 Jun 2015) so that the first months have a baseline too.
- 02.01 (15 Dec 2015) to 02.06 (23 Oct 2017) are the Level-1C baselines. Level-2A products
  of that time (the pilot production from May 2017, and L2A made with Sen2Cor from L1C)
  carried the L1C number; 02.03 (9 June 2016) was withdrawn after a week and its products
  reprocessed in 02.02, so it is left out.
- 02.07 from 26 Mar 2018: the operational L2A production; from then on the L2A baseline is
  numbered independently of the L1C one (ESA news of 2 and 20 March 2018).
- 02.08 to 02.13: L2A baselines of 2018-2019. Their dates here are from memory and not
  checked against a source; every one of them is < 04.00, which is what matters here.
- 02.14 from 4 Feb 2020, 03.00 from 30 Mar 2021, 03.01 from 30 Jun 2021, 04.00 from
  25 Jan 2022 (the start of the -1000 BOA_ADD_OFFSET), 05.09 from 6 Dec 2022, 05.10 from
  13 Dec 2023 (CDSE baseline tables); 05.11 from 23 Jul 2024 (from memory).

Collection-1 reprocessing (05.00 for 2015-2021) is not modelled: Earth Search's
``sentinel-2-l2a`` kept the products as first published.
"""

# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RasterAsset:
    """One COG of a scene, as the renderer wrote it."""

    key: str
    """Earth Search asset key: one of :data:`ASSET_KEYS` (``red``, ``scl``, ``visual`` ...)."""
    path: Path
    """Absolute path of the COG on disk; it becomes the href as is (GDAL reads it directly)."""
    shape: tuple[int, int]
    """(rows, cols) of this asset."""
    transform: Affine
    """Its geotransform (north-up, square pixels of 10, 20 or 60 m)."""


@dataclass(frozen=True)
class SceneMeta:
    """What an Item says about one simulated acquisition (one MGRS tile, one overpass)."""

    platform: str
    """``"sentinel-2a"`` or ``"sentinel-2b"`` (``"sentinel-2c"`` is accepted too)."""
    mgrs_tile: str
    """MGRS tile, e.g. ``"51SYC"``."""
    datetime: datetime
    """Timezone-aware acquisition (tile sensing) time; converted to UTC."""
    epsg: int
    """EPSG code of the assets' CRS (the tile's UTM zone, e.g. 32651)."""
    footprint_lonlat: Polygon | MultiPolygon
    """Outline of the valid (non-nodata) data in lon/lat; becomes geometry and bbox."""
    cloud_cover: float
    """Percent 0-100, published as ``eo:cloud_cover``."""
    scl_percentages: Mapping[str, float]
    """Percent per SCL class, keys from :data:`SCL_CLASSES` plus ``"nodata_pixel"`` (and
    optionally ``"degraded_msi_data"``); a missing key means 0."""
    processing_baseline: str
    """ESA processing baseline, ``"NN.NN"`` (see :func:`processing_baseline_for`)."""
    relative_orbit: int
    """Relative orbit number, 1-143."""
    absolute_orbit: int
    """Absolute orbit number of the platform."""
    sun_azimuth: float
    """Degrees, as ``view:sun_azimuth``."""
    sun_elevation: float
    """Degrees, as ``view:sun_elevation``."""
    sequence: int = 0
    """Earth Search's sequence number of the tile on that day (the ``_0_`` of the id)."""


# --------------------------------------------------------------------------------------
# Small public helpers
# --------------------------------------------------------------------------------------


def processing_baseline_for(day: date | datetime) -> str:
    """The ESA processing baseline of L2A products sensed and published on `day`.

    See :data:`PROCESSING_BASELINES` for the table and its sources.

    Examples
    --------
    >>> processing_baseline_for(date(2017, 5, 3))
    '02.05'
    >>> processing_baseline_for(date(2022, 1, 24)), processing_baseline_for(date(2022, 1, 25))
    ('03.01', '04.00')
    """
    if isinstance(day, datetime):
        day = (day.astimezone(UTC) if day.tzinfo else day).date()
    current = None
    for start, baseline in PROCESSING_BASELINES:
        if day < start:
            break
        current = baseline
    if current is None:
        first = PROCESSING_BASELINES[0][0]
        raise ValueError(f"{day} is before the first Sentinel-2 L2A baseline ({first})")
    return current


def boa_offset_applies(baseline: str) -> bool:
    """Whether reflectance of this baseline carries the -1000 BOA_ADD_OFFSET (>= 04.00).

    >>> boa_offset_applies("02.14"), boa_offset_applies("04.00"), boa_offset_applies("05.10")
    (False, True, True)
    """
    return _baseline_tuple(baseline) >= (4, 0)


def reflectance_conversion_factor(day: date | datetime) -> float:
    """Sun-earth distance correction of `day`: 1 / (1 - 0.01673 cos(0.0172 (doy - 4)))^2.

    The approximation of the Sentinel-2 product definition; ESA's own values differ from it
    by up to about 0.2 %.
    """
    doy = day.timetuple().tm_yday
    return 1.0 / (1.0 - 0.01673 * math.cos(0.0172 * (doy - 4))) ** 2


def item_id(scene: SceneMeta) -> str:
    """Earth Search's Item id of a scene, e.g. ``"S2A_51SYC_20170503_0_L2A"``."""
    _parse_mgrs(scene.mgrs_tile)
    when = _utc(scene.datetime)
    return f"{_sat(scene.platform)}_{scene.mgrs_tile}_{when:%Y%m%d}_{scene.sequence}_L2A"


# --------------------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------------------

_DATATAKE_LEAD = timedelta(minutes=10)
"""How long before the tile is sensed its datatake (and datastrip) starts. A real datatake
starts where the orbit segment does, minutes before (10.4 min in the reference item)."""
_GENERATION_LAG = timedelta(hours=5)
"""Sensing to L2A product generation (5.5 h in the reference item)."""
_INDEXING_LAG = timedelta(hours=2)
"""Product generation to Item creation in Earth Search (1.9 h in the reference item)."""


def build_item(
    scene: SceneMeta,
    assets: Sequence[RasterAsset],
    collection_id: str = "sentinel-2-l2a",
) -> dict[str, Any]:
    """A STAC Item (a plain JSON-ready dict) shaped like an ES v1 sentinel-2-l2a Item.

    Properties follow ES's names, JSON types and order. Reflectance assets get
    ``raster:bands`` scale 0.0001 and offset -0.1 when the baseline is 04.00 or later
    (``earthsearch:boa_offset_applied`` true), else offset 0 and the flag false. Offset 0
    is what ES v1's collection gives for reflectance (its ``item_assets``) and what data
    without the BOA_ADD_OFFSET needs; no recorded ES item older than 04.00 was at hand to
    confirm the item-level value. ES has mis-tagged items around the 2022 change
    (Element84/earth-search issues 9, 66 and 71); those are not imitated.

    Times in the ESA identifiers are derived from the sensing time: the datatake and its
    datastrip start 10 minutes earlier, the product is generated 5 hours later, and the
    Item is created 2 hours after that.

    Parameters
    ----------
    scene
        The acquisition.
    assets
        Its COGs, at most one per key. Hrefs are the absolute paths.
    collection_id
        The ``collection`` field.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from shapely.geometry import box
    >>> scene = SceneMeta("sentinel-2a", "51SYC", datetime(2017, 5, 3, 2, 26, tzinfo=UTC),
    ...     32651, box(125.3, 38.7, 125.5, 38.8), 3.2, {"water": 40.0}, "02.05",
    ...     3, 9704, 140.1, 61.2)
    >>> red = RasterAsset("red", Path("/data/B04.tif"), (600, 1000),
    ...     Affine(10, 0, 350000, 0, -10, 4290000))
    >>> item = build_item(scene, [red])
    >>> item["id"], item["assets"]["red"]["raster:bands"][0]["offset"]
    ('S2A_51SYC_20170503_0_L2A', 0)
    """
    zone, band, square = _parse_mgrs(scene.mgrs_tile)
    _check_epsg(scene.epsg, zone, band, scene.mgrs_tile)
    if not assets:
        raise ValueError("an Item needs at least one asset")
    sat = _sat(scene.platform)
    when = _utc(scene.datetime)
    baseline = scene.processing_baseline
    offset_applied = boa_offset_applies(baseline)
    if not 1 <= scene.relative_orbit <= 143:
        raise ValueError(f"relative_orbit {scene.relative_orbit} is not in 1..143")
    if scene.absolute_orbit < 1:
        raise ValueError(f"absolute_orbit {scene.absolute_orbit} is not positive")

    datatake = (when - _DATATAKE_LEAD).replace(microsecond=0)
    generated = (when + _GENERATION_LAG).replace(microsecond=0)
    created = generated + _INDEXING_LAG
    n_baseline = f"N{baseline}"  # "N05.09" in datatake, datastrip and granule ids
    centre = f"{sat[1:]}PS" if _baseline_tuple(baseline) >= (5, 0) else "SGS_"
    abs_orbit = f"{scene.absolute_orbit:06d}"
    stamp = f"{generated:%Y%m%dT%H%M%S}"
    iid = item_id(scene)

    properties: dict[str, Any] = {
        "created": _iso_ms(created),
        "platform": scene.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": _pct(scene.cloud_cover, "cloud_cover"),
        "proj:epsg": int(scene.epsg),
        "mgrs:utm_zone": zone,
        "mgrs:latitude_band": band,
        "mgrs:grid_square": square,
        "grid:code": f"MGRS-{scene.mgrs_tile}",
        "view:sun_azimuth": float(scene.sun_azimuth),
        "view:sun_elevation": float(scene.sun_elevation),
        **_percentages(scene.scl_percentages),
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": baseline,
        "s2:product_uri": (
            f"{sat}_MSIL2A_{datatake:%Y%m%dT%H%M%S}_N{baseline.replace('.', '')}"
            f"_R{scene.relative_orbit:03d}_T{scene.mgrs_tile}_{stamp}.SAFE"
        ),
        "s2:generation_time": _iso_us(generated),
        "s2:datatake_id": f"G{sat}_{datatake:%Y%m%dT%H%M%S}_{abs_orbit}_{n_baseline}",
        "s2:datatake_type": "INS-NOBS",
        "s2:datastrip_id": (
            f"{sat}_OPER_MSI_L2A_DS_{centre}_{stamp}_S{datatake:%Y%m%dT%H%M%S}_{n_baseline}"
        ),
        "s2:granule_id": (
            f"{sat}_OPER_MSI_L2A_TL_{centre}_{stamp}_A{abs_orbit}_T{scene.mgrs_tile}_{n_baseline}"
        ),
        "s2:reflectance_conversion_factor": reflectance_conversion_factor(when),
        "datetime": _iso_us(when),
        "s2:sequence": str(scene.sequence),
        "earthsearch:s3_path": _common_folder(assets),
        "earthsearch:payload_id": f"nampo-scenario/{iid}",
        "earthsearch:boa_offset_applied": offset_applied,
        "processing:software": {"nampo": _nampo_version()},
        "updated": _iso_ms(created),
    }
    geometry, bbox = _geometry(scene.footprint_lonlat)
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "id": iid,
        "properties": properties,
        "geometry": geometry,
        "links": [{"rel": "license", "href": LICENSE_HREF}],
        "assets": _assets(assets, offset_applied),
        "bbox": bbox,
        "stac_extensions": list(STAC_EXTENSIONS),
        "collection": collection_id,
    }


def _assets(assets: Sequence[RasterAsset], offset_applied: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for asset in assets:
        if asset.key not in ASSET_KEYS:
            raise ValueError(f"asset key {asset.key!r} is not one of {', '.join(ASSET_KEYS)}")
        if asset.key in out:
            raise ValueError(f"asset key {asset.key!r} is given twice")
        out[asset.key] = _asset(asset, offset_applied)
    return {k: out[k] for k in sorted(out)}  # ES lists assets alphabetically


def _asset(asset: RasterAsset, offset_applied: bool) -> dict[str, Any]:
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
    res = _num(t.a)
    key = asset.key
    proj = {"proj:shape": [rows, cols], "proj:transform": [_num(v) for v in tuple(t)[:6]]}
    d: dict[str, Any] = {"href": str(path), "type": COG_MEDIA_TYPE}
    if key in REFLECTANCE_KEYS:
        eo = _BANDS[key]
        d["title"] = f"{eo.description} - {res}m"
        d["eo:bands"] = [eo.as_eo()]
        d["gsd"] = res
        d.update(proj)
        d["raster:bands"] = [
            {
                "nodata": 0,
                "data_type": "uint16",
                "bits_per_sample": 15,
                "spatial_resolution": res,
                "scale": REFLECTANCE_SCALE,
                "offset": BOA_OFFSET if offset_applied else 0,
            }
        ]
        d["roles"] = ["data", "reflectance"]
    elif key == "visual":
        d["title"] = _TITLES[key]
        d["eo:bands"] = [_BANDS[b].as_eo() for b in ("red", "green", "blue")]
        d.update(proj)
        d["roles"] = ["visual"]
    else:  # scl, aot, wvp
        d["title"] = _TITLES[key]
        d.update(proj)
        band: dict[str, Any]
        if key == "scl":
            band = {"nodata": 0, "data_type": "uint8", "spatial_resolution": res}
        else:
            band = {
                "nodata": 0,
                "data_type": "uint16",
                "bits_per_sample": 15,
                "spatial_resolution": res,
            }
            if key == "wvp":
                band["unit"] = "cm"
            band |= {"scale": 0.001, "offset": 0}
        d["raster:bands"] = [band]
        d["roles"] = ["data", "reflectance"]  # sic: ES gives SCL, AOT and WVP these roles
    return d


# --------------------------------------------------------------------------------------
# Collection
# --------------------------------------------------------------------------------------


def build_collection(
    bbox_lonlat: Sequence[float],
    start: datetime,
    end: datetime | None,
    collection_id: str = "sentinel-2-l2a",
    description: str = (
        "Simulated Sentinel-2 L2A scenes of a nampo scenario, shaped like Earth Search v1"
        " sentinel-2-l2a (Cloud-Optimized GeoTIFFs on local disk)"
    ),
) -> dict[str, Any]:
    """A STAC Collection (a plain dict) for the scenario archive, shaped like ES's.

    It keeps ES's title, extensions, license, keywords, providers and summaries. Its
    ``item_assets`` list the COG assets :func:`build_item` makes, with ES's collection-level
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
    start_utc = _utc(start)
    end_utc = _utc(end) if end is not None else None
    if end_utc is not None and end_utc < start_utc:
        raise ValueError(f"end {end} is before start {start}")
    item_assets = {}
    for key in sorted(ASSET_KEYS):
        # the Item asset of a placeholder at ES's resolution, minus what is per Item
        d = _asset(RasterAsset(key, Path("/x.tif"), (1, 1), _NOMINAL[key]), False)
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
            "temporal": {"interval": [[_iso_us(start_utc), _iso_us(end_utc) if end_utc else None]]},
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
            "eo:bands": [b.as_eo() for b in _BANDS.values()],
        },
    }


_NOMINAL = {
    **{k: Affine(10, 0, 0, 0, -10, 0) for k in ("blue", "green", "red", "nir", "visual")},
    **{k: Affine(60, 0, 0, 0, -60, 0) for k in ("coastal", "nir09")},
    **{
        k: Affine(20, 0, 0, 0, -20, 0)
        for k in ("rededge1", "rededge2", "rededge3", "nir08", "swir16", "swir22")
        + ("scl", "aot", "wvp")
    },
}
"""ES's resolution of each asset (used for the Collection's ``item_assets``)."""


# --------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------

_MGRS = re.compile(r"^(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z][A-HJ-NP-V])$")


def _parse_mgrs(tile: str) -> tuple[int, str, str]:
    m = _MGRS.match(tile)
    if not m or not 1 <= int(m[1]) <= 60:
        raise ValueError(f"mgrs_tile {tile!r} is not an MGRS tile like '51SYC'")
    return int(m[1]), m[2], m[3]


def _check_epsg(epsg: int, zone: int, band: str, tile: str) -> None:
    expected = (32600 if band >= "N" else 32700) + zone
    if epsg != expected:
        raise ValueError(f"epsg {epsg} does not match MGRS tile {tile} (expected {expected})")


def _sat(platform: str) -> str:
    m = re.fullmatch(r"sentinel-2([abc])", platform)
    if not m:
        raise ValueError(f"platform {platform!r} is not 'sentinel-2a' or 'sentinel-2b'")
    return f"S2{m[1].upper()}"


def _baseline_tuple(baseline: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{2})\.(\d{2})", baseline)
    if not m:
        raise ValueError(f"processing baseline {baseline!r} is not of the form '04.00'")
    return int(m[1]), int(m[2])


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"datetime {when.isoformat()} has no timezone (give UTC)")
    return when.astimezone(UTC)


def _iso_ms(when: datetime) -> str:
    """ES's ``created``/``updated`` format: milliseconds and a Z."""
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def _iso_us(when: datetime) -> str:
    """ES's ``datetime`` format: microseconds and a Z."""
    return f"{when:%Y-%m-%dT%H:%M:%S.%f}Z"


_PCT_SLACK = 1e-4
"""How far past 0..100 a percentage may stray (a sum of rounded shares) before it is an error."""


def _pct(value: float, name: str) -> float:
    """A percentage as ES prints them: at most 6 decimals, within 0..100."""
    v = float(value)
    if not -_PCT_SLACK <= v <= 100 + _PCT_SLACK:
        raise ValueError(f"{name} = {value} is not a percentage in 0..100")
    return round(min(max(v, 0.0), 100.0), 6)


def _percentages(given: Mapping[str, float]) -> dict[str, float]:
    unknown = set(given) - set(_PERCENTAGE_PROPERTIES)
    if unknown:
        raise ValueError(
            f"scl_percentages keys {sorted(unknown)} are not among "
            f"{', '.join(_PERCENTAGE_PROPERTIES)}"
        )
    out = {}
    for key, prop in _PERCENTAGE_PROPERTIES.items():
        out[prop] = _pct(given.get(key, 0.0), f"scl_percentages[{key!r}]")
    return out


def _geometry(footprint: Polygon | MultiPolygon) -> tuple[dict[str, Any], list[float]]:
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


def _num(value: float) -> int | float:
    """10.0 -> 10, as ES writes whole numbers; other values unchanged."""
    f = float(value)
    return int(f) if f.is_integer() else f


def _common_folder(assets: Sequence[RasterAsset]) -> str:
    return os.path.commonpath([str(Path(a.path).parent) for a in assets])


def _nampo_version() -> str:
    try:
        return version("nampo")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"
