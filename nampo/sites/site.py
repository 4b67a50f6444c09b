"""A watched site: its fixed pixel grid, its tiles, and its facilities.

Tiles are fixed squares of the grid counted from its upper-left corner; the last row and
column may be narrower. A tile is the spatial half of a unit of work and exactly one Zarr
chunk in y and x, so every unit writes its own chunks and nothing else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

from shapely.geometry import Polygon, box, shape

from nampo.errors import NampoError
from nampo.grid import Grid, grid_for_outline
from nampo.sites.climate import Climate, derived_climate

__all__ = [
    "DEFAULT_TILE_PX",
    "AlertRule",
    "Site",
    "Tile",
    "outline_geometry",
    "tiles_touching",
]

DEFAULT_TILE_PX = 256


@dataclass(frozen=True)
class Tile:
    """One tile of a site's grid."""

    ix: int
    """Column of the tile (0 = west)."""
    iy: int
    """Row of the tile (0 = north)."""
    rows: tuple[int, int]
    """[start, stop) pixel rows of the tile in the site grid."""
    cols: tuple[int, int]
    """[start, stop) pixel columns."""

    @property
    def id(self) -> str:
        """Stable identifier, like odc-stats' tile ids: ``x01y02``."""
        return f"x{self.ix:02d}y{self.iy:02d}"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows[1] - self.rows[0], self.cols[1] - self.cols[0])


@dataclass(frozen=True)
class AlertRule:
    """Which of a site's new events are announced: large enough, of a listed type, at a
    listed facility (None: every type, every facility)."""

    min_area_m2: float = 2000.0
    types: tuple[str, ...] | None = None
    facilities: tuple[str, ...] | None = None

    def wants(self, event_type: str, area_m2: float, facilities: tuple[str, ...]) -> bool:
        if area_m2 < self.min_area_m2:
            return False
        if self.types is not None and event_type not in self.types:
            return False
        return self.facilities is None or bool(set(facilities) & set(self.facilities))


@dataclass(frozen=True)
class Site:
    """A watched site: its grid, tiles, baseline period and facilities."""

    name: str
    """Short name (``nampo``, ``harbour-mini``)."""
    title: str
    """Name for people (the report's heading)."""
    grid: Grid
    """The fixed pixel grid every product of the site lives on."""
    tile_px: int = DEFAULT_TILE_PX
    """Side of a tile in pixels (one Zarr chunk in y and x)."""
    baseline: tuple[dt.date, dt.date] | None = None
    """First and last month of the baseline period that change is measured against. A
    property of the site, not of a run: every run compares with the same baseline."""
    facilities: tuple[tuple[str, str, Polygon], ...] = field(default=(), compare=False)
    """(name, title, outline in lon/lat) of each facility."""
    berths: tuple[tuple[str, tuple[Polygon, ...]], ...] = field(default=(), compare=False)
    """(facility name, outlines in lon/lat) of the berths where ships moor, per facility
    that has any (vessels are counted there: nampo.analysis.activity)."""
    kinds: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """(facility name, kind) of each facility whose kind is known (``docs/sites.md``)."""
    climate: Climate | None = field(default=None, compare=False)
    """The site's seasons; None: derived from the latitude of the grid's centre."""
    alerts: AlertRule = field(default_factory=AlertRule, compare=False)
    """Which new events are announced."""

    def __post_init__(self) -> None:
        if self.climate is None:
            lat = self.grid.footprint_lonlat().centroid.y
            object.__setattr__(self, "climate", derived_climate(lat))

    @property
    def seasons(self) -> Climate:
        """The site's climate (never None after construction)."""
        assert self.climate is not None
        return self.climate

    def kind(self, facility: str) -> str:
        """The kind of a facility (``other`` when the site does not say)."""
        return dict(self.kinds).get(facility, "other")

    @cached_property
    def tiles(self) -> tuple[Tile, ...]:
        g, t = self.grid, self.tile_px
        out = []
        for iy in range(-(-g.height // t)):
            for ix in range(-(-g.width // t)):
                out.append(
                    Tile(
                        ix,
                        iy,
                        (iy * t, min((iy + 1) * t, g.height)),
                        (ix * t, min((ix + 1) * t, g.width)),
                    )
                )
        return tuple(out)

    def tile(self, tile_id: str) -> Tile:
        for t in self.tiles:
            if t.id == tile_id:
                return t
        raise KeyError(f"site {self.name!r} has no tile {tile_id!r}")

    def tile_grid(self, tile: Tile) -> Grid:
        """The tile as a grid of its own (same CRS, resolution and pixel lattice)."""
        g = self.grid
        return Grid(
            g.epsg,
            g.resolution,
            g.x0 + tile.cols[0] * g.resolution,
            g.y0 - tile.rows[0] * g.resolution,
            tile.shape[1],
            tile.shape[0],
        )

    def tile_footprint_lonlat(self, tile: Tile) -> Polygon:
        return self.tile_grid(tile).footprint_lonlat()

    @property
    def footprint_lonlat(self) -> Polygon:
        return self.grid.footprint_lonlat()

    @classmethod
    def from_scenario(
        cls, scenario, tile_px: int = DEFAULT_TILE_PX, baseline_months: int = 12
    ) -> Site:
        """The site a scenario describes (same grid, same facilities and climate); its
        baseline is the scenario's first `baseline_months` months."""
        own = getattr(scenario, "site_definition", None)
        known = own.to_site() if own is not None else None
        facilities = tuple((f.name, f.title, Polygon(f.polygon)) for f in scenario.facilities)
        berths = tuple(
            (f.name, tuple(Polygon(b) for b in f.berths)) for f in scenario.facilities if f.berths
        )
        first = scenario.period.start.replace(day=1)
        last_month = first.month + baseline_months - 2
        last = dt.date(first.year + last_month // 12, last_month % 12 + 1, 1)
        return cls(
            scenario.name,
            scenario.title,
            scenario.site_grid,
            tile_px,
            (first, last),
            facilities,
            berths,
            kinds=known.kinds if known else (),
            climate=known.climate if known else None,
        )

    @classmethod
    def from_outline(
        cls,
        name: str,
        outline,
        *,
        baseline: tuple[dt.date, dt.date],
        title: str | None = None,
        tile_px: int = DEFAULT_TILE_PX,
        resolution: float = 10.0,
    ) -> Site:
        """A site known only by its outline: a shapely geometry or a GeoJSON mapping
        (Geometry, Feature or FeatureCollection) in lon/lat. Its grid is derived by
        :func:`~nampo.grid.grid_for_outline` (UTM zone of its centre, `resolution`, origin
        snapped to a fixed lattice); the outline is its one facility."""
        geom = outline_geometry(outline)
        first, last = baseline
        if last < first:
            raise NampoError(f"baseline of site {name!r} ends before it starts")
        try:
            grid = grid_for_outline(geom, resolution)
        except ValueError as exc:
            raise NampoError(f"site {name!r}: {exc}") from None
        poly = geom if isinstance(geom, Polygon) else geom.convex_hull
        return cls(
            name,
            title or name,
            grid,
            tile_px,
            (first.replace(day=1), last.replace(day=1)),
            ((name, title or name, poly),),
        )


def outline_geometry(outline):
    """A shapely geometry from a shapely geometry or a GeoJSON mapping (Geometry, Feature,
    or FeatureCollection: the union of its features)."""
    if hasattr(outline, "geom_type"):
        return outline
    kind = outline.get("type") if isinstance(outline, dict) else None
    try:
        if kind == "FeatureCollection":
            from shapely import union_all

            return union_all([shape(f["geometry"]) for f in outline["features"]])
        if kind == "Feature":
            return shape(outline["geometry"])
        return shape(outline)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NampoError(f"not a GeoJSON outline: {exc}") from None


def tiles_touching(site: Site, bounds: tuple[float, float, float, float]) -> list[Tile]:
    """Tiles of the site whose area intersects `bounds` (in the grid's CRS)."""
    area = box(*bounds)
    return [t for t in site.tiles if site.tile_grid(t).footprint.intersects(area)]
