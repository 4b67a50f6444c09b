"""Files for GIS users beside the report: Cloud-Optimized GeoTIFFs of the overview's
composite and of the change map (:func:`nampo.io.cog.write_cog`), and the events as
GeoJSON. Each is written under a temporary name and renamed into place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from nampo.analysis.dating import TYPES, change_dates
from nampo.grid import Grid
from nampo.io.cog import write_cog
from nampo.report.data import ReportData
from nampo.report.maps import TYPE_COLOURS, truecolour

__all__ = [
    "EPOCH",
    "export",
    "check_readable",
]

EPOCH = np.datetime64("1970-01-01", "D")


def _write_cog(
    path: Path,
    bands: np.ndarray,
    grid: Grid,
    descriptions: list[str],
    nodata: float | None,
    *,
    colormap: dict | None = None,
    tags: dict | None = None,
    resampling: str = "nearest",
) -> Path:
    """Write (bands, rows, cols) on the site's grid as a COG with band descriptions."""
    # 512 px tiles without a predictor, and the overviews' resampling named in the tags:
    # the exports' format since they were first written (with rio-cogeo's deflate profile)
    return write_cog(
        path, bands, grid.transform, grid.epsg, nodata=nodata, resampling=resampling,
        blocksize=512, predictor=1, descriptions=descriptions, colormap=colormap,
        tags={**(tags or {}), "OVERVIEW_RESAMPLING": resampling.upper()},
    )  # fmt: skip


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
        out.append(_write_cog(
            folder / "composite.tif", refl, grid,
            [f"{b} surface reflectance, latest clear month up to {when}"
             for b in ("red", "green", "blue")],
            float("nan"), tags={"month": when, "source": data.store_url}, resampling="average",
        ))  # fmt: skip
        tci = (truecolour(comp.rgb) * 255).round().astype("uint8")
        out.append(_write_cog(
            folder / "composite-truecolour.tif", np.moveaxis(tci, -1, 0), grid,
            ["red", "green", "blue"], None, tags={"month": when}, resampling="average",
        ))  # fmt: skip
    if data.change is not None and data.period is not None:
        cm = data.change
        period = f"{data.period[0]:%Y-%m}..{data.period[1]:%Y-%m}"
        colours = {0: (0, 0, 0, 0), **{c: _rgba(TYPE_COLOURS[t]) for c, t in TYPES.items()}}
        out.append(_write_cog(
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
        out.append(_write_cog(
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
