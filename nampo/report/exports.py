"""Files for GIS users beside the report: Cloud-Optimized GeoTIFFs of the overview's
composite and of the change map (rio-cogeo: GDAL's COG layout, DEFLATE, internal
overviews), and the events as GeoJSON. Each is written under a temporary name and renamed
into place, so a reader never finds half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.io import MemoryFile
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

from nampo.analysis.dating import TYPES, change_dates
from nampo.grid import Grid
from nampo.report.data import ReportData
from nampo.report.maps import TYPE_COLOURS, truecolour

EPOCH = np.datetime64("1970-01-01", "D")


def write_cog(
    path: Path,
    bands: np.ndarray,
    grid: Grid,
    descriptions: list[str],
    nodata,
    *,
    colormap: dict | None = None,
    tags: dict | None = None,
    resampling: str = "nearest",
) -> Path:
    """Write (bands, rows, cols) on the site's grid as a COG with band descriptions."""
    count, height, width = bands.shape
    profile = {
        "driver": "GTiff", "count": count, "height": height, "width": width,
        "dtype": bands.dtype.name, "crs": grid.crs, "transform": grid.transform,
        "nodata": nodata,
    }  # fmt: skip
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with MemoryFile() as mem:
            with mem.open(**profile) as dst:
                dst.write(bands)
                for i, d in enumerate(descriptions, start=1):
                    dst.set_band_description(i, d)
                if colormap:
                    dst.write_colormap(1, colormap)
                if tags:
                    dst.update_tags(**tags)
            with mem.open() as src:
                cog_translate(
                    src, str(tmp), cog_profiles.get("deflate"), overview_resampling=resampling,
                    in_memory=True, quiet=True, use_cog_driver=False,
                )  # fmt: skip
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _rgba(hex_colour: str) -> tuple[int, int, int, int]:
    h = hex_colour.lstrip("#")
    return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255)


def export(data: ReportData, folder: Path) -> list[Path]:
    """Write the exports of `data` into `folder` (what exists: nothing for an empty store)."""
    grid = data.site.grid
    out = []
    if data.overview is not None:
        comp = data.overview
        refl = np.moveaxis(comp.rgb, -1, 0).astype("float32")
        when = f"{comp.month:%Y-%m}"
        out.append(write_cog(
            folder / "composite.tif", refl, grid,
            [f"{b} surface reflectance, latest clear month up to {when}"
             for b in ("red", "green", "blue")],
            float("nan"), tags={"month": when, "source": data.store_url}, resampling="average",
        ))  # fmt: skip
        tci = (truecolour(comp.rgb) * 255).round().astype("uint8")
        out.append(write_cog(
            folder / "composite-truecolour.tif", np.moveaxis(tci, -1, 0), grid,
            ["red", "green", "blue"], None, tags={"month": when}, resampling="average",
        ))  # fmt: skip
    if data.change is not None:
        cm = data.change
        period = f"{data.period[0]:%Y-%m}..{data.period[1]:%Y-%m}"
        colours = {0: (0, 0, 0, 0), **{c: _rgba(TYPE_COLOURS[t]) for c, t in TYPES.items()}}
        out.append(write_cog(
            folder / "change-type.tif", cm["type"].values.astype("uint8")[None], grid,
            ["change type: " + ", ".join(f"{c} {t}" for c, t in TYPES.items())], 0,
            colormap=colours, tags={"period": period, **{str(c): t for c, t in TYPES.items()}},
        ))  # fmt: skip
        # stored events' change map carries its dates; a dated one its months' indices
        if "day" in cm:
            before, after, day = (cm[k].values for k in ("before", "after", "day"))
        else:
            before, after, day = change_dates(cm)
        as_days = [
            np.where(np.isnat(d), np.nan, (d - EPOCH).astype("float64")).astype("float32")
            for d in (day, before, after)
        ]
        layers = np.stack([
            *as_days, cm["confidence"].values.astype("float32"),
            cm["magnitude"].values.astype("float32"),
        ])  # fmt: skip
        layers[1:][:, np.isnan(as_days[0])] = np.nan
        out.append(write_cog(
            folder / "change.tif", layers, grid,
            ["day of change (days since 1970-01-01)",
             "middle of the last clear month before (days since 1970-01-01)",
             "middle of the first clear month after (days since 1970-01-01)",
             "confidence (0-1)", "change-vector magnitude (reflectance)"],
            float("nan"), tags={"period": period},
        ))  # fmt: skip
    if data.period is not None:
        from nampo.analysis.events import to_geojson

        to_geojson(data.events, folder / "events.geojson")
        out.append(folder / "events.geojson")
    return out


def check_readable(path: Path) -> tuple[str, int]:
    """GDAL's view of a written file: its CRS and band count (raises when unreadable)."""
    with rasterio.open(path) as src:
        return str(src.crs), src.count
