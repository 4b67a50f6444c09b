"""Scenes from GeoTIFF files into a STAC archive: COGs and items shaped like Earth Search's
``sentinel-2-l1c``, ready for the local STAC API (``nampo stac load``).

For imagery that is in no catalog: scenes an analyst bought or was sent for a site, or a
benchmark's image pairs. Each scene is one folder of single-band GeoTIFFs, one file per
band, the band named at the end of the file name as ESA names it (``..._B04.tif``,
``B8A.tif``). The files may be in any CRS (the cube reprojects them onto the site's grid);
their pixels are taken as Level-1C digital numbers (reflectance x 10000, 0 = no data).

What is written, in one archive folder (the layout of a rendered scenario archive, which
:func:`nampo.services.pgstac.load` reads):

* ``items/<id>/<B04>.tif``: each band as a Cloud-Optimized GeoTIFF (DEFLATE, internal
  tiles, nodata 0), pixels and georeferencing unchanged;
* ``items.ndjson``: one item per scene: Earth Search asset keys (``red``, ``nir08``...),
  ``proj:epsg``/``proj:shape``/``proj:transform`` per asset, ``raster:bands`` (uint16,
  nodata 0, scale 1e-4, the given offset), absolute hrefs;
* ``collection.json``: the collection (``sentinel-2-l1c`` by default) with its extent.

Nothing is written until every file has been checked (one band, a CRS, an integer type,
the band named); the archive is written beside its place and renamed into it, so a
failure never leaves half an archive, and importing the same files again gives the same
archive.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping, shape

from nampo.errors import NampoError
from nampo.io.cog import write_cog
from nampo.io.scenes import SENTINEL2_L1C_BANDS
from nampo.io.stac_items import l1c_asset, l1c_collection, l1c_item

__all__ = [
    "COLLECTION",
    "ESA_BANDS",
    "ImportFilesError",
    "ImportedArchive",
    "SceneFiles",
    "band_files",
    "import_scenes",
]

COLLECTION = "sentinel-2-l1c"

ESA_BANDS = {spec.keys[1]: name for name, spec in SENTINEL2_L1C_BANDS.items()}
"""ESA band name (``B04``) -> Earth Search asset key (``red``)."""
_BAND_IN_NAME = re.compile(r"(?:^|[_\-.])(B0?\d|B8A|B1[0-2])\.tiff?$", re.IGNORECASE)
_PLATFORM_IN_NAME = re.compile(r"(?:^|[_\-])(S2[A-D])[_\-]")


class ImportFilesError(NampoError):
    """Files that cannot be imported (named in the message); nothing was written."""


@dataclass(frozen=True)
class SceneFiles:
    """One scene to import: its folder of band files and when it was acquired."""

    folder: Path
    acquired: datetime
    """Acquisition time (a date is taken at 00:00 UTC): file names often carry the
    product's generation time instead, so it is always given."""
    platform: str | None = None
    """``sentinel-2a``...; None: read from the file names (``S2A_...``), else
    ``sentinel-2``."""


@dataclass(frozen=True)
class ImportedArchive:
    path: Path
    items: list[dict]


def band_files(folder: Path) -> dict[str, Path]:
    """Earth Search asset key -> file, for the GeoTIFFs of a scene folder."""
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).iterdir()):
        match = _BAND_IN_NAME.search(path.name)
        if not match or not path.is_file():
            continue
        esa = match.group(1).upper()
        esa = f"B0{esa[1:]}" if len(esa) == 2 else esa
        key = ESA_BANDS.get(esa)
        if key is None:
            continue
        if key in found:
            raise ImportFilesError(
                f"{folder}: two files of band {esa}: {found[key].name}, {path.name}"
            )
        found[key] = path
    if not found:
        raise ImportFilesError(f"{folder}: no GeoTIFF named by its band (like '..._B04.tif')")
    return found


def import_scenes(
    name: str,
    scenes: Sequence[SceneFiles],
    out_dir: Path,
    *,
    collection: str = COLLECTION,
    offset: float = 0.0,
) -> ImportedArchive:
    """Import scene folders of a site into the archive folder `out_dir` (replaced).

    Parameters
    ----------
    name
        The site's name: item ids are ``<platform>_<NAME>_<YYYYMMDD>_<n>_L1C``.
    scenes
        The scene folders and their acquisition times.
    out_dir
        The archive folder to write (an existing one is replaced, whole).
    collection
        Collection id of the items.
    offset
        Reflectance offset of the DNs: 0 for Level-1C products of processing baselines
        before 04.00 (before 2022-01-25), -0.1 after (ESA's RADIO_ADD_OFFSET).

    Examples
    --------
    >>> import_scenes("paris", [SceneFiles(Path("imgs_1"), datetime(2016, 11, 30))],
    ...               Path("archives/paris"))                          # doctest: +SKIP
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]*", name):
        raise ImportFilesError(f"site name {name!r}: use letters, digits, '-' and '_'")
    if not scenes:
        raise ImportFilesError("no scene folder given")
    out_dir = Path(out_dir).resolve()
    plans = [_plan(name, scene, i) for i, scene in enumerate(_sorted(scenes))]
    ids = [p["id"] for p in plans]
    if len(set(ids)) != len(ids):
        raise ImportFilesError(f"two scenes of one day and platform: {sorted(ids)}")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        items = [_write_scene(plan, work, out_dir, collection, offset) for plan in plans]
        (work / "items.ndjson").write_text("".join(json.dumps(i) + "\n" for i in items))
        collection_json = l1c_collection(collection, _DESCRIPTION)
        (work / "collection.json").write_text(json.dumps(collection_json, indent=1))
        work.chmod(0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return ImportedArchive(out_dir, items)


def _sorted(scenes: Sequence[SceneFiles]) -> list[SceneFiles]:
    return sorted(scenes, key=lambda s: (_utc(s.acquired), str(s.folder)))


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _plan(name: str, scene: SceneFiles, index: int) -> dict:
    """Check a scene's files (before anything is written) and say what to write."""
    folder = Path(scene.folder)
    if not folder.is_dir():
        raise ImportFilesError(f"no scene folder {folder}")
    files = band_files(folder)
    epsgs = {}
    for key, path in files.items():
        try:
            with rasterio.open(path) as src:
                if src.count != 1:
                    raise ImportFilesError(f"{path}: {src.count} bands; one band a file")
                if src.crs is None or src.crs.to_epsg() is None:
                    raise ImportFilesError(f"{path}: no CRS with an EPSG code")
                if np.dtype(src.dtypes[0]).kind not in "ui":
                    raise ImportFilesError(f"{path}: {src.dtypes[0]} pixels; DNs are integers")
                epsgs[key] = src.crs.to_epsg()
        except rasterio.errors.RasterioError as exc:
            raise ImportFilesError(f"{path}: not a readable raster ({exc})") from None
    if len(set(epsgs.values())) > 1:
        raise ImportFilesError(f"{folder}: bands in several CRSs {sorted(set(epsgs.values()))}")
    platform = scene.platform or _platform_from_names(files.values())
    acquired = _utc(scene.acquired)
    short = platform.upper().replace("SENTINEL-", "S") if platform[-1].isalpha() else "S2"
    item_id = f"{short}_{name.upper()}_{acquired:%Y%m%d}_0_L1C"
    return {"id": item_id, "files": files, "epsg": epsgs.popitem()[1], "platform": platform,
            "acquired": acquired, "folder": folder}  # fmt: skip


def _platform_from_names(paths) -> str:
    found = {m.group(1) for p in paths if (m := _PLATFORM_IN_NAME.search(p.name))}
    return f"sentinel-2{found.pop()[-1].lower()}" if len(found) == 1 else "sentinel-2"


def _write_scene(plan: dict, work: Path, final: Path, collection: str, offset: float) -> dict:
    folder = work / "items" / plan["id"]
    folder.mkdir(parents=True)
    assets = {}
    footprint = None
    for key in sorted(plan["files"], key=lambda k: list(SENTINEL2_L1C_BANDS).index(k)):
        src_path = plan["files"][key]
        esa = SENTINEL2_L1C_BANDS[key].keys[1]
        with rasterio.open(src_path) as src:
            data = src.read(1).astype("uint16")
            transform, shape_ = src.transform, src.shape
            if footprint is None or src.res[0] < footprint[0]:
                bounds = transform_geom(src.crs, "EPSG:4326", mapping(box(*src.bounds)))
                footprint = (src.res[0], shape(bounds))
        write_cog(folder / f"{esa}.tif", data, transform, plan["epsg"], nodata=0)
        href = str(final / "items" / plan["id"] / f"{esa}.tif")
        resolution = SENTINEL2_L1C_BANDS[key].resolution
        assets[key] = l1c_asset(key, esa, href, shape_, transform, plan["epsg"], resolution,
                                offset, src_path.resolve())  # fmt: skip
    assert footprint is not None  # a scene has at least one band (band_files)
    return l1c_item(plan["id"], collection, footprint[1], plan["acquired"], plan["platform"],
                    plan["epsg"], assets, plan["folder"].resolve())  # fmt: skip


_DESCRIPTION = (
    "Sentinel-2 Level-1C scenes imported from GeoTIFF files by nampo import "
    "(Cloud-Optimized GeoTIFFs on local disk), shaped like Earth Search v1 sentinel-2-l1c"
)
