"""The simulation's side of a rendered scene's STAC Item: what an Item says about one
simulated acquisition (:class:`SceneMeta`), the processing baseline of a date, and the
identifiers of ESA's ground segment derived from the sensing time. The Item's shape is the
library's (:mod:`nampo.io.stac_items`); how it differs from real Earth Search items on
purpose: ``docs/scenario.md``, "STAC items".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from shapely.geometry import MultiPolygon, Polygon

from nampo.io.scenes import S2_BOA_OFFSET, S2_OFFSET_BASELINE
from nampo.io.stac_format import common_folder, iso_ms, iso_us, utc
from nampo.io.stac_items import RasterAsset, l2a_collection, l2a_item

__all__ = [
    "PROCESSING_BASELINES",
    "SCL_CLASSES",
    "SceneMeta",
    "boa_offset_applies",
    "build_collection",
    "build_item",
    "item_id",
    "processing_baseline_for",
    "reflectance_conversion_factor",
]

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
"""(first day in force, baseline) of the Sentinel-2 L2A products ESA published as new
(sources and what is left out: ``docs/scenario.md``, "Processing baselines")."""


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
    return _baseline_tuple(baseline) >= S2_OFFSET_BASELINE


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
    when = utc(scene.datetime)
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
    >>> from pathlib import Path
    >>> from affine import Affine
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
    when = utc(scene.datetime)
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
        "created": iso_ms(created),
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
        "s2:generation_time": iso_us(generated),
        "s2:datatake_id": f"G{sat}_{datatake:%Y%m%dT%H%M%S}_{abs_orbit}_{n_baseline}",
        "s2:datatake_type": "INS-NOBS",
        "s2:datastrip_id": (
            f"{sat}_OPER_MSI_L2A_DS_{centre}_{stamp}_S{datatake:%Y%m%dT%H%M%S}_{n_baseline}"
        ),
        "s2:granule_id": (
            f"{sat}_OPER_MSI_L2A_TL_{centre}_{stamp}_A{abs_orbit}_T{scene.mgrs_tile}_{n_baseline}"
        ),
        "s2:reflectance_conversion_factor": reflectance_conversion_factor(when),
        "datetime": iso_us(when),
        "s2:sequence": str(scene.sequence),
        "earthsearch:s3_path": common_folder([a.path for a in assets]),
        "earthsearch:payload_id": f"nampo-scenario/{iid}",
        "earthsearch:boa_offset_applied": offset_applied,
        "processing:software": {"nampo": _nampo_version()},
        "updated": iso_ms(created),
    }
    offset = S2_BOA_OFFSET if offset_applied else 0
    return l2a_item(iid, properties, scene.footprint_lonlat, assets, offset, collection_id)


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
    """The scenario archive's Collection, shaped like ES's sentinel-2-l2a
    (:func:`nampo.io.stac_items.l2a_collection`)."""
    return l2a_collection(bbox_lonlat, start, end, collection_id, description)


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


def _nampo_version() -> str:
    try:
        return version("nampo")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"
