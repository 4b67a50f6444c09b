"""The fixed pixel grid of a site: CRS, resolution, origin and size.

Every product of nampo lives on one such grid, so pixels of different runs, loaders and
dates line up exactly (no half-pixel shifts, no mixed UTM zones).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import Polygon, box


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid in a projected CRS."""

    epsg: int
    """EPSG code of the projected CRS (the UTM zone of the site)."""
    resolution: float
    """Pixel size in CRS units (metres), the same along x and y."""
    x0: float
    """x of the grid's upper-left corner (west edge)."""
    y0: float
    """y of the grid's upper-left corner (north edge)."""
    width: int
    """Number of columns."""
    height: int
    """Number of rows."""

    @property
    def crs(self) -> CRS:
        return CRS.from_epsg(self.epsg)

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.x0, 0.0, -self.resolution, self.y0)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the grid's CRS."""
        return (
            self.x0,
            self.y0 - self.height * self.resolution,
            self.x0 + self.width * self.resolution,
            self.y0,
        )

    def coarsen(self, factor: int) -> Grid:
        """The grid with pixels `factor` times larger (e.g. 20 m bands of a 10 m grid)."""
        if self.width % factor or self.height % factor:
            raise ValueError(f"grid {self.width}x{self.height} is not divisible by {factor}")
        return Grid(
            self.epsg,
            self.resolution * factor,
            self.x0,
            self.y0,
            self.width // factor,
            self.height // factor,
        )

    def refine(self, factor: int) -> Grid:
        """The grid with pixels `factor` times smaller (used to draw sub-pixel geometry)."""
        return Grid(
            self.epsg,
            self.resolution / factor,
            self.x0,
            self.y0,
            self.width * factor,
            self.height * factor,
        )

    def xy_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (x along columns, y along rows, y decreasing)."""
        r = self.resolution
        x = self.x0 + r * (np.arange(self.width) + 0.5)
        y = self.y0 - r * (np.arange(self.height) + 0.5)
        return x, y

    @cached_property
    def _to_lonlat(self) -> Transformer:
        return Transformer.from_crs(self.epsg, 4326, always_xy=True)

    @cached_property
    def _from_lonlat(self) -> Transformer:
        return Transformer.from_crs(4326, self.epsg, always_xy=True)

    def to_lonlat(self, geom):
        """A shapely geometry in the grid's CRS, reprojected to lon/lat (EPSG:4326)."""
        return _reproject(self._to_lonlat, geom)

    def from_lonlat(self, geom):
        """A shapely geometry in lon/lat, reprojected to the grid's CRS."""
        return _reproject(self._from_lonlat, geom)

    @property
    def footprint(self) -> Polygon:
        """The grid's outline in its own CRS."""
        return box(*self.bounds)

    def footprint_lonlat(self, densify: float | None = None) -> Polygon:
        """The grid's outline in lon/lat, densified so its edges follow the projection."""
        step = densify or self.resolution * 50
        return self.to_lonlat(self.footprint.segmentize(step))

    def bbox_lonlat(self) -> tuple[float, float, float, float]:
        return tuple(self.footprint_lonlat().bounds)  # type: ignore[return-value]


def _reproject(transformer: Transformer, geom):
    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, fn)
