"""Band tables per collection (Sentinel-2 L2A and L1C, Landsat Collection 2 Level-2): where
each band's asset is and what it is when an item is silent; Sentinel-2's offset by
processing baseline (docs/catalog.md, "Band tables")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nampo.errors import CatalogError

__all__ = [
    "BandSpec",
    "LANDSAT_BANDS",
    "LANDSAT_SR_OFFSET",
    "LANDSAT_SR_SCALE",
    "MASK_BANDS",
    "S2_BOA_OFFSET",
    "S2_OFFSET_BASELINE",
    "S2_SCALE",
    "SENTINEL2_BANDS",
    "SENTINEL2_L1C_BANDS",
    "baseline_tuple",
    "processing_baseline",
    "s2_offset",
]


@dataclass(frozen=True)
class BandSpec:
    """One row of a band table: where a band lives and what it is when the item is silent."""

    keys: tuple[str, ...]
    """Asset keys to look for, in order."""
    resolution: float
    """Native pixel size in metres."""
    dtype: str
    """Data type of the pixels."""
    nodata: float
    """Value marking missing pixels."""
    kind: str
    """``reflectance`` (scaled to 0-1) or ``mask`` (class or bit values, scale 1, offset 0)."""


S2_SCALE = 1e-4
"""Sentinel-2 L2A quantification: reflectance = DN / 10000 (+ offset)."""
S2_BOA_OFFSET = -0.1
"""ESA's BOA_ADD_OFFSET (-1000 DN) as a reflectance offset, for baselines >= 04.00."""
S2_OFFSET_BASELINE = (4, 0)
"""First processing baseline whose L2A reflectance carries :data:`S2_BOA_OFFSET`."""
LANDSAT_SR_SCALE = 2.75e-5
"""Landsat Collection 2 Level-2 surface reflectance scale (USGS product guide)."""
LANDSAT_SR_OFFSET = -0.2
"""Landsat Collection 2 Level-2 surface reflectance offset (USGS product guide)."""


def _s2(es: str, pc: str, resolution: float) -> BandSpec:
    return BandSpec((es, pc), resolution, "uint16", 0, "reflectance")


SENTINEL2_BANDS: dict[str, BandSpec] = {
    "coastal": _s2("coastal", "B01", 60),
    "blue": _s2("blue", "B02", 10),
    "green": _s2("green", "B03", 10),
    "red": _s2("red", "B04", 10),
    "rededge1": _s2("rededge1", "B05", 20),
    "rededge2": _s2("rededge2", "B06", 20),
    "rededge3": _s2("rededge3", "B07", 20),
    "nir": _s2("nir", "B08", 10),
    "nir08": _s2("nir08", "B8A", 20),
    "nir09": _s2("nir09", "B09", 60),
    "swir16": _s2("swir16", "B11", 20),
    "swir22": _s2("swir22", "B12", 20),
    "scl": BandSpec(("scl", "SCL"), 20, "uint8", 0, "mask"),
}
"""Sentinel-2 L2A: internal band -> (Earth Search key, Planetary Computer key), defaults."""

SENTINEL2_L1C_BANDS: dict[str, BandSpec] = {k: v for k, v in SENTINEL2_BANDS.items() if k != "scl"}
"""Sentinel-2 L1C: the L2A table without ``scl`` (L1C has no scene classification)."""


def _landsat(key: str) -> BandSpec:
    return BandSpec((key,), 30, "uint16", 0, "reflectance")


LANDSAT_BANDS: dict[str, BandSpec] = {
    "coastal": _landsat("coastal"),
    "blue": _landsat("blue"),
    "green": _landsat("green"),
    "red": _landsat("red"),
    "nir08": _landsat("nir08"),
    "swir16": _landsat("swir16"),
    "swir22": _landsat("swir22"),
    "qa_pixel": BandSpec(("qa_pixel",), 30, "uint16", 1, "mask"),
}
"""Landsat Collection 2 Level-2: internal band -> asset key, defaults."""


MASK_BANDS = ("scl", "qa_pixel")
"""Internal names of the bands that are masks, not reflectance."""


def s2_offset(baseline: str | None) -> float:
    """Reflectance offset of Sentinel-2 L2A data of a processing baseline.

    >>> s2_offset("02.12"), s2_offset("04.00"), s2_offset("05.10")
    (0.0, -0.1, -0.1)
    """
    if baseline is None:
        return 0.0
    return S2_BOA_OFFSET if baseline_tuple(baseline) >= S2_OFFSET_BASELINE else 0.0


def baseline_tuple(baseline: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", baseline)
    if not match:
        raise CatalogError(f"processing baseline {baseline!r} is not of the form NN.NN")
    return int(match.group(1)), int(match.group(2))


def processing_baseline(item: Mapping[str, Any]) -> str | None:
    """``s2:processing_baseline``, else the ``_Nxxyy_`` of ``s2:product_uri``, else None."""
    props = item.get("properties") or {}
    value = props.get("s2:processing_baseline")
    if value:
        return str(value)
    match = re.search(r"_N(\d{2})(\d{2})_", str(props.get("s2:product_uri") or ""))
    return f"{match.group(1)}.{match.group(2)}" if match else None
