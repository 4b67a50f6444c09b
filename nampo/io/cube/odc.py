"""The odc-stac loader, with nampo's GDAL settings shipped in the graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import odc.stac
import pystac
from odc.loader import RioDriver

from nampo.errors import CubeError
from nampo.grid import Grid
from nampo.io.cube.items import loader_item
from nampo.io.cube.layout import FILL, check_xy, geobox
from nampo.io.gdal import GdalSettings
from nampo.io.scenes import NormalisedItem

__all__ = ["OdcDriver", "load_odc"]


class OdcDriver(RioDriver):
    """odc-stac's rasterio driver with nampo's GDAL settings.

    odc-stac captures the reader environment once per load (``capture_env``) and restores
    it in every task, so the settings travel in the graph like stackstac's ``gdal_env``,
    instead of odc's process-global ``configure_rio``.
    """

    def __init__(self, gdal: GdalSettings) -> None:
        super().__init__()
        self.gdal = gdal

    def capture_env(self) -> dict[str, Any]:
        # odc-stac itself switches VSI_CACHE off around pixel reads.
        return dict(self.gdal.open_options())


def load_odc(
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: list[str],
    chunks: tuple[int, int],
    gdal: GdalSettings,
    tolerant: bool,
) -> da.Array:
    """The ``(time, band, y, x)`` Dask array of `scenes` read by odc-stac onto `grid`:
    one step per scene, in the order given (see :func:`nampo.io.cube.load_cube`)."""
    time_chunk, chunk_px = chunks
    items = [pystac.Item.from_dict(loader_item(s, bands)) for s in scenes]
    ds = odc.stac.load(
        items,
        bands=bands,
        geobox=geobox(grid),
        chunks={"time": time_chunk, "y": chunk_px, "x": chunk_px},
        resampling="nearest",
        dtype="uint16",
        nodata=FILL,
        groupby="id",  # one step per item, in the order given
        preserve_original_order=True,
        fail_on_error=not tolerant,
        driver=OdcDriver(gdal),
    )
    if ds.sizes["time"] != len(scenes):
        raise CubeError(f"odc-stac gave {ds.sizes['time']} time steps for {len(scenes)} scenes")
    check_xy(ds, grid, "odc-stac")
    return da.stack([ds[b].data for b in bands], axis=1)
