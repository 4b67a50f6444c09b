"""One acquisition in nampo's internal form (:class:`NormalisedItem`) and its bands
(:class:`BandAsset`), whatever catalog it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nampo.io.scenes.bands import MASK_BANDS

__all__ = ["BandAsset", "NormalisedItem"]


@dataclass(frozen=True)
class BandAsset:
    """One band of one item: where to read it and how to turn its pixels into values."""

    key: str
    """The asset key in the item (``red``, ``B04``...)."""
    href: str
    """Where the file is (as the catalog gave it: sign Planetary Computer hrefs first)."""
    scale: float
    """Physical value = DN * scale + offset."""
    offset: float
    """See `scale`."""
    nodata: float | None
    """DN of missing pixels (None: the file has none)."""
    dtype: str
    """Data type of the DNs (``uint16``, ``uint8``)."""
    resolution: float
    """Pixel size in CRS units."""
    shape: tuple[int, int] | None
    """(rows, columns) of the file, when the item says."""
    transform: tuple[float, float, float, float, float, float] | None
    """Affine (a, b, c, d, e, f) of the file (``proj:transform``), when the item says."""
    requester_pays: bool = False
    """``storage:requester_pays``: the reader pays for the download (Earth Search's Landsat
    hrefs are ``s3://usgs-landsat/...``, which need AWS credentials and
    ``AWS_REQUEST_PAYER=requester``)."""


@dataclass(frozen=True)
class NormalisedItem:
    """One acquisition in nampo's internal form. Build with :func:`normalise`."""

    id: str
    """The catalog's item id."""
    collection: str | None
    """The catalog's collection id."""
    platform: str
    """Lower case, hyphenated: ``sentinel-2a``, ``landsat-8``."""
    datetime: datetime
    """Acquisition time, timezone-aware UTC."""
    epsg: int
    """EPSG code of the bands' CRS."""
    cloud_cover: float | None
    """``eo:cloud_cover`` in percent (None when the item does not say)."""
    processing_baseline: str | None
    """Sentinel-2 ``NN.NN`` processing baseline (None for Landsat)."""
    tile: str | None
    """MGRS tile (``13TDE``) or Landsat WRS-2 path and row (``033032``)."""
    bands: dict[str, BandAsset] = field(hash=False)
    """Internal band name -> its asset; only the bands the item has. Do not mutate."""
    bbox: tuple[float, float, float, float] | None = None
    """Footprint bounds in lon/lat (west, south, east, north)."""
    stac: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)
    """The item as the catalog returned it (for stackstac / odc-stac). Do not mutate."""

    @property
    def sensor(self) -> str:
        """``sentinel-2`` or ``landsat``."""
        return "landsat" if self.platform.startswith("landsat") else "sentinel-2"

    @property
    def mask_band(self) -> str | None:
        """The band that says which pixels are clear: ``scl`` (Sentinel-2 L2A),
        ``qa_pixel`` (Landsat Collection 2), None (Sentinel-2 L1C: no mask)."""
        return next((b for b in MASK_BANDS if b in self.bands), None)
