"""Real-world STAC item metadata turned into one internal form, and duplicate acquisitions.

Catalogs describe the same Sentinel-2 or Landsat scene differently: Earth Search v1 names
assets by band (``red``) and gives scale and offset in ``raster:bands``; Planetary Computer
names them by ESA band number (``B04``) and gives neither, so the offset must be derived
from the processing baseline; USGS LandsatLook gives no ``raster:bands`` at all. The cube
loader reads one shape only, :class:`NormalisedItem`, built by :func:`normalise`.

Band tables
-----------
Internal names follow the STAC ``eo`` common names, with ``rededge1..3`` for the three
Sentinel-2 red-edge bands and ``scl`` / ``qa_pixel`` for the masks. :data:`SENTINEL2_BANDS`
and :data:`LANDSAT_BANDS` give, per internal name, the asset key in each catalog and the
values used when an item does not carry them:

=========  ===========  ===========  ========  ======  ======  ==================
internal   Earth Search Planetary    native m  dtype   nodata  scale, offset
           (and local)  Computer
=========  ===========  ===========  ========  ======  ======  ==================
coastal    coastal      B01          60        uint16  0       1e-4, by baseline
blue       blue         B02          10        uint16  0       1e-4, by baseline
green      green        B03          10        uint16  0       1e-4, by baseline
red        red          B04          10        uint16  0       1e-4, by baseline
rededge1   rededge1     B05          20        uint16  0       1e-4, by baseline
rededge2   rededge2     B06          20        uint16  0       1e-4, by baseline
rededge3   rededge3     B07          20        uint16  0       1e-4, by baseline
nir        nir          B08          10        uint16  0       1e-4, by baseline
nir08      nir08        B8A          20        uint16  0       1e-4, by baseline
nir09      nir09        B09          60        uint16  0       1e-4, by baseline
swir16     swir16       B11          20        uint16  0       1e-4, by baseline
swir22     swir22       B12          20        uint16  0       1e-4, by baseline
scl        scl          SCL          20        uint8   0       1, 0
=========  ===========  ===========  ========  ======  ======  ==================

"By baseline": -0.1 when ``s2:processing_baseline`` >= 04.00 (ESA's BOA_ADD_OFFSET of
-1000, from 2022-01-25 and in every reprocessed Collection-1 product), else 0.

Landsat Collection 2 Level-2 (Earth Search ``landsat-c2-l2``, Planetary Computer
``landsat-c2-l2`` and USGS ``landsat-c2l2-sr`` all use the same asset keys):

=========  ==========  ========  ======  ======  ==================
internal   asset key   native m  dtype   nodata  scale, offset
=========  ==========  ========  ======  ======  ==================
coastal    coastal     30        uint16  0       2.75e-5, -0.2
blue       blue        30        uint16  0       2.75e-5, -0.2
green      green       30        uint16  0       2.75e-5, -0.2
red        red         30        uint16  0       2.75e-5, -0.2
nir08      nir08       30        uint16  0       2.75e-5, -0.2
swir16     swir16      30        uint16  0       2.75e-5, -0.2
swir22     swir22      30        uint16  0       2.75e-5, -0.2
qa_pixel   qa_pixel    30        uint16  1       1, 0
=========  ==========  ========  ======  ======  ==================

(``coastal`` exists for Landsat 8/9 OLI only.) Landsat has no ``nir`` (S2 B08): compare
sensors with ``nir08`` (S2 B8A, Landsat band 5 of OLI).

Sentinel-2 Level-1C (Earth Search ``sentinel-2-l1c``, and the items ``nampo import``
writes) has the same bands and keys as L2A, top-of-atmosphere reflectance with the same
scale and baseline offset (ESA's RADIO_ADD_OFFSET of -1000 from baseline 04.00), and no
``scl``: such scenes have no cloud mask (see :mod:`nampo.io.cube`, ``to_reflectance``).

Each value is read from the item where it says so and taken from the table only where the
item is silent: ``scale``, ``offset``, ``nodata`` and ``data_type`` from the asset's
``raster:bands[0]``, key by key; the CRS from ``proj:epsg`` or ``proj:code`` (asset level
first, then item level); shape and transform from ``proj:shape`` / ``proj:transform``
(asset level first, then item level, as the projection extension says); the resolution
from the transform, else ``raster:bands[0].spatial_resolution``, else the asset's ``gsd``,
else the table. Band ``eo:bands`` common names are never used to find a band: Planetary
Computer labels B8A ``rededge``.

Duplicates
----------
See :func:`dedupe`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import shapely
from shapely.geometry import shape

from nampo.errors import CatalogError

# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


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

# --------------------------------------------------------------------------------------
# The internal form
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------


def normalise(item: Mapping[str, Any]) -> NormalisedItem:
    """A Sentinel-2 L2A or L1C, or Landsat C2 L2 STAC item (plain dict) in nampo's
    internal form.

    The catalog's conventions are recognised from the item itself (collection and asset
    keys), so items of Earth Search, Planetary Computer, USGS and the local archive all
    work; see the module docstring for the tables and the order in which values are read.

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


def s2_offset(baseline: str | None) -> float:
    """Reflectance offset of Sentinel-2 L2A data of a processing baseline.

    >>> s2_offset("02.12"), s2_offset("04.00"), s2_offset("05.10")
    (0.0, -0.1, -0.1)
    """
    if baseline is None:
        return 0.0
    return S2_BOA_OFFSET if _baseline_tuple(baseline) >= S2_OFFSET_BASELINE else 0.0


def _baseline_tuple(baseline: str) -> tuple[int, int]:
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


# --------------------------------------------------------------------------------------
# Duplicates
# --------------------------------------------------------------------------------------

SAME_TIME = timedelta(seconds=1)
"""Two items of one tile sensed less than this apart may be one acquisition."""
SAME_FOOTPRINT = 0.9
"""...and are when their footprints overlap by at least this (intersection / union)."""

_ES_SEQUENCE = re.compile(r"^S2[A-D]_\w{5}_\d{8}_(\d+)_L2A$")


def sequence(item: Mapping[str, Any]) -> int:
    """Earth Search's sequence number (``s2:sequence``, or the ``_0_`` of
    ``S2A_13TDE_20231008_0_L2A``); 0 when the item has none."""
    props = item.get("properties") or {}
    if props.get("s2:sequence") is not None:
        return int(props["s2:sequence"])
    match = _ES_SEQUENCE.match(str(item.get("id", "")))
    return int(match.group(1)) if match else 0


def version_key(item: Mapping[str, Any]) -> tuple:
    """Sort key: the larger, the newer version of an acquisition (see :func:`dedupe`)."""
    props = item.get("properties") or {}
    baseline = processing_baseline(item)
    produced = props.get("s2:generation_time") or props.get("landsat:product_generated") or ""
    published = props.get("updated") or props.get("created") or ""
    return (
        _baseline_tuple(baseline) if baseline else (-1, -1),
        _instant(produced),
        sequence(item),
        _instant(published),
        str(item.get("id", "")),
    )


def _instant(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def dedupe(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`items` with each acquisition once, in the order of first appearance.

    Two items are versions of one acquisition when either

    1. they have the same ``id`` (an item returned on two pages, or re-indexed), or
    2. they have the same collection, platform and tile (MGRS tile or WRS-2 path/row),
       their sensing times differ by less than :data:`SAME_TIME` (1 s), and their
       footprints overlap by at least :data:`SAME_FOOTPRINT` (90 % intersection over
       union; the footprint test is skipped when either item has no geometry). This
       catches Earth Search's ``S2A_13TDE_20231008_0_L2A`` / ``..._1_L2A`` pairs when the
       second is a re-publication (a newer processing baseline, a re-run), and Landsat's
       tier changes (``_RT`` becoming ``_T1``).

    Of the versions the newest is kept, by :func:`version_key`: highest processing
    baseline, then latest production time (``s2:generation_time``,
    ``landsat:product_generated``), then highest Earth Search sequence number, then latest
    ``updated`` (else ``created``), then the largest id.

    Items of one tile and day that are *not* the same acquisition are kept: when a
    datatake is split into two datastrips, ESA publishes the tile twice (Earth Search
    numbers them ``_0_`` and ``_1_``; Planetary Computer even gives both the same datatake
    ``datetime``), each with part of the pixels. Their footprints differ, so rule 2 keeps
    both and the cube's composite merges them.

    >>> a = {"id": "x", "properties": {"updated": "2023-01-01T00:00:00Z"}}
    >>> b = {"id": "x", "properties": {"updated": "2024-01-01T00:00:00Z"}}
    >>> [i["properties"]["updated"][:4] for i in dedupe([a, b])]
    ['2024']
    """
    by_id: dict[str, dict[str, Any]] = {}
    for item in items:
        key = str(item.get("id", ""))
        if key not in by_id or version_key(item) > version_key(by_id[key]):
            by_id[key] = dict(item)
    unique = list(by_id.values())

    groups: dict[tuple, list[int]] = {}
    for index, item in enumerate(unique):
        where = tile(item)
        if where is None:
            continue
        try:
            who = platform(item)
        except CatalogError:
            continue
        groups.setdefault((item.get("collection"), who, where), []).append(index)

    dropped: set[int] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda i: _time_or_min(unique[i]))
        for pos, i in enumerate(members):
            if i in dropped:
                continue
            for j in members[pos + 1 :]:
                if j in dropped:
                    continue
                if _time_or_min(unique[j]) - _time_or_min(unique[i]) >= SAME_TIME:
                    break
                if not _same_footprint(unique[i], unique[j]):
                    continue
                older = i if version_key(unique[i]) < version_key(unique[j]) else j
                dropped.add(older)
                if older == i:
                    break
    return [item for index, item in enumerate(unique) if index not in dropped]


def _time_or_min(item: Mapping[str, Any]) -> datetime:
    try:
        return acquired(item)
    except CatalogError:
        return datetime.min.replace(tzinfo=UTC)


def _same_footprint(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if not a.get("geometry") or not b.get("geometry"):
        return True
    try:
        ga = shapely.make_valid(shape(a["geometry"]))
        gb = shapely.make_valid(shape(b["geometry"]))
        union = ga.union(gb).area
    except (ValueError, TypeError, shapely.errors.GEOSException):
        return False
    if union == 0:
        return ga.equals(gb)
    return ga.intersection(gb).area / union >= SAME_FOOTPRINT
