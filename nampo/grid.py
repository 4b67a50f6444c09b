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

__all__ = ["SNAP_M", "Grid", "grid_for_outline", "utm_epsg"]


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
        return tuple(self.footprint_lonlat().bounds)


SNAP_M = 60.0
"""Lattice the origin of a grid derived from an outline is snapped to (metres): Sentinel-2's
10, 20 and 60 m pixels all have corners on multiples of 60 m in UTM (MGRS tile origins
are), so a snapped 10 m grid reads Sentinel-2 without resampling, and two runs of one
outline always give the same grid."""


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 UTM zone of a point (326zz north, 327zz south).

    >>> utm_epsg(125.38, 38.73), utm_epsg(-47.9, -15.8), utm_epsg(180.0, 10.0)
    (32651, 32723, 32660)
    """
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(f"({lon}, {lat}) is not a longitude/latitude")
    zone = min(int((lon + 180.0) // 6) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def grid_for_outline(outline, resolution: float = 10.0, snap: float = SNAP_M) -> Grid:
    """The fixed grid of a site known only by its outline (a shapely geometry in lon/lat).

    The CRS is the UTM zone of the outline's centre; the grid covers the outline's
    projected bounds, its edges moved outward to multiples of `snap` metres (see
    :data:`SNAP_M`), so the same outline always gives the same grid and pixels of every
    run line up.
    """
    if outline.is_empty or not outline.is_valid:
        raise ValueError("the outline is empty or not a valid polygon")
    if snap % resolution:
        raise ValueError(f"snap {snap} m is not a multiple of the resolution {resolution} m")
    centre = outline.centroid
    epsg = utm_epsg(centre.x, centre.y)
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    xmin, ymin, xmax, ymax = _reproject(to_utm, outline.segmentize(0.001)).bounds
    x0, y0 = np.floor(xmin / snap) * snap, np.ceil(ymax / snap) * snap
    x1, y1 = np.ceil(xmax / snap) * snap, np.floor(ymin / snap) * snap
    width, height = round((x1 - x0) / resolution), round((y0 - y1) / resolution)
    return Grid(epsg, resolution, float(x0), float(y0), int(width), int(height))


def _reproject(transformer: Transformer, geom):
    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, fn)
