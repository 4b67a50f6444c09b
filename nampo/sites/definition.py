"""The site definition: a document (YAML or JSON) that says everything nampo needs to watch
a place, checked field by field (``docs/sites.md``).

A definition is data, not code: adding a site is adding a document to the registry
(:mod:`nampo.sites.registry`). Its grid is derived from its outline by
:func:`nampo.grid.grid_for_outline` (the same outline always gives the same grid, as
``nampo process --outline`` does), unless the definition pins one; the registry pins the
derived grid when a site is added, so a later change of the rule never moves a site's
grid under its store.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from shapely.geometry import Polygon

from nampo.errors import NampoError
from nampo.grid import Grid, grid_for_outline, utm_epsg
from nampo.sites.climate import Climate, derived_climate
from nampo.sites.site import DEFAULT_TILE_PX, AlertRule, Site

__all__ = [
    "FACILITY_KINDS",
    "MAX_SITE_PX",
    "MAX_ZONE_OVERREACH_KM",
    "FacilityDef",
    "GridDef",
    "SiteDefinition",
    "SiteError",
    "on_s2_lattice",
    "parse_definition",
    "ring",
    "utm_crs",
]

LonLat = tuple[float, float]

FacilityKind = Literal[
    "berth",
    "quay",
    "yard",
    "container_yard",
    "coal_yard",
    "tank_farm",
    "shipyard",
    "dry_dock",
    "harbour_water",
    "breakwater",
    "industrial",
    "other",
]
FACILITY_KINDS: tuple[str, ...] = FacilityKind.__args__  # type: ignore[attr-defined]

MAX_SITE_PX = 16_000_000
"""Largest grid of one site (pixels; 4,000 x 4,000 = 40 km x 40 km at 10 m). Change dating's
maps and the report hold whole-site rasters in memory (about a dozen float32 layers: 0.8 GB
at this size) and events are vectorised from them in one piece; a larger region is better
watched as several sites."""

MAX_ZONE_OVERREACH_KM = 10.0
"""How far an outline may reach past the edge of the UTM zone of its centre, whose CRS the
grid takes. Sentinel-2's 109.8 km MGRS tiles are not cut at a zone's edge, so a site that
reaches a few km past it is still read from its own zone's tiles, on their pixel lattice;
further out its pixels come only from the neighbouring zone's tiles, resampled. Such a
region is better watched as two sites, one in each zone."""

MONTH = re.compile(r"^(19|20)\d\d-(0[1-9]|1[0-2])$")


class SiteError(NampoError):
    """A site definition that cannot be used; the message names the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def ring(points: list[LonLat], where: str = "polygon") -> Polygon:
    """A valid polygon of at least 3 [lon, lat] points (ValueError naming `where` if not);
    the scenario format checks its rings with this too."""
    if len(points) < 3:
        raise ValueError(f"{where} needs at least 3 [lon, lat] points, got {len(points)}")
    for lon, lat in points:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError(f"{where} point [{lon}, {lat}] is not a [lon, lat] pair in degrees")
    poly = Polygon(points)
    if not poly.is_valid:
        from shapely.validation import explain_validity

        raise ValueError(f"{where} is not a valid polygon: {explain_validity(poly)}")
    return poly


def utm_crs(v: str) -> str:
    """`v` as ``EPSG:<code>`` when it is a WGS 84 / UTM zone (ValueError otherwise)."""
    if not v.upper().startswith("EPSG:") or not v[5:].isdigit():
        raise ValueError(f"must look like 'EPSG:32651', got {v!r}")
    code = int(v[5:])
    if not (32601 <= code <= 32660 or 32701 <= code <= 32760):
        raise ValueError(f"must be a WGS 84 / UTM zone (EPSG:326xx or 327xx), got {v}")
    return v.upper()


def on_s2_lattice(v: tuple[float, float]) -> tuple[float, float]:
    """A grid origin on the Sentinel-2 pixel lattice (ValueError otherwise): tile origins
    lie on a 60 m lattice counted from x = 0 and the equator (e.g. 699960 / 4300020), so
    multiples of 20 m keep a grid's 10 and 20 m pixels on theirs."""
    if v[0] % 20 or v[1] % 20:
        raise ValueError(f"must be multiples of 20 m (the Sentinel-2 pixel lattice), got {list(v)}")
    return v


class FacilityDef(_Model):
    """A named part of the site that activity counts and event sentences refer to."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    kind: FacilityKind = "other"
    polygon: list[LonLat]
    berths: list[list[LonLat]] = Field(
        default_factory=list,
        description="Polygons where ships moor (long and thin: a ship lies along the long axis).",
    )

    @field_validator("polygon")
    @classmethod
    def _poly(cls, v):
        ring(v, "polygon")
        return v

    @field_validator("berths")
    @classmethod
    def _berths(cls, v):
        for i, b in enumerate(v):
            ring(b, f"berths[{i}]")
        return v


class GridDef(_Model):
    """A pinned grid: UTM CRS, 10 m pixels, upper-left corner and size."""

    crs: str
    resolution: Literal[10] = 10
    origin: tuple[float, float]
    size: tuple[int, int] = Field(description="[columns, rows]")

    @field_validator("crs")
    @classmethod
    def _epsg(cls, v: str) -> str:
        return utm_crs(v)

    @field_validator("origin")
    @classmethod
    def _aligned(cls, v: tuple[float, float]) -> tuple[float, float]:
        return on_s2_lattice(v)

    @field_validator("size")
    @classmethod
    def _size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 1 or v[1] < 1:
            raise ValueError(f"must be positive, got {list(v)}")
        return v

    def to_grid(self) -> Grid:
        return Grid(int(self.crs[5:]), float(self.resolution), *self.origin, *self.size)

    @classmethod
    def of(cls, grid: Grid) -> GridDef:
        return cls(
            crs=f"EPSG:{grid.epsg}", origin=(grid.x0, grid.y0), size=(grid.width, grid.height)
        )


class BaselineDef(_Model):
    """First and last month of the period change is measured against."""

    first: str
    last: str

    @field_validator("first", "last")
    @classmethod
    def _month(cls, v: str) -> str:
        v = str(v)
        if not MONTH.match(v):
            raise ValueError(f"must be a month YYYY-MM, got {v!r}")
        return v

    @model_validator(mode="after")
    def _order(self) -> BaselineDef:
        if self.last < self.first:
            raise ValueError(f"last {self.last} is before first {self.first}")
        return self

    def months(self) -> tuple[dt.date, dt.date]:
        return tuple(dt.date(int(m[:4]), int(m[5:]), 1) for m in (self.first, self.last))  # type: ignore[return-value]


class ClimateDef(_Model):
    """The site's seasons; a field left out is derived from the latitude."""

    ice_months: list[int] | None = None
    growing_months: list[int] | None = None

    @field_validator("ice_months", "growing_months")
    @classmethod
    def _months(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            bad = [m for m in v if not 1 <= m <= 12]
            if bad or len(set(v)) != len(v):
                raise ValueError(f"must be distinct months 1-12, got {v}")
        return v


class CatalogDef(_Model):
    """Where the site's scenes are searched by default (a run may name another)."""

    profile: Literal["local", "earth-search", "planetary-computer"] = "earth-search"
    collection: str | None = None
    url: str | None = Field(
        default=None, pattern=r"^https?://", description="STAC API URL (default: the profile's)"
    )


class AlertsDef(_Model):
    """Which new events are announced (``docs/sites.md``, alerts)."""

    min_area_m2: float = Field(default=2000.0, ge=0)
    types: list[str] | None = Field(default=None, description="change types (default: all)")
    facilities: list[str] | None = Field(
        default=None, description="facilities whose events are announced (default: all)"
    )


class SiteDefinition(_Model):
    """A watched site as a document (``docs/sites.md``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)
    title: str | None = None
    description: str = ""
    outline: list[LonLat] | None = None
    """The site's outline, a [lon, lat] ring; may be left out only when `grid` is pinned
    (the outline is then the grid's footprint)."""
    grid: GridDef | None = None
    tile_px: int = Field(default=DEFAULT_TILE_PX, ge=16, le=4096)
    baseline: BaselineDef
    climate: ClimateDef = ClimateDef()
    catalog: CatalogDef = CatalogDef()
    facilities: list[FacilityDef] = Field(default_factory=list)
    alerts: AlertsDef = AlertsDef()

    @model_validator(mode="after")
    def _consistent(self) -> SiteDefinition:
        if self.outline is None and self.grid is None:
            raise ValueError("outline: required (a [lon, lat] ring, or give a pinned grid)")
        if self.outline is not None:
            ring(self.outline, "outline")
        outline = self.outline_polygon()
        if self.outline is not None:
            lons = [p[0] for p in self.outline]
            if max(lons) - min(lons) > 180:
                raise ValueError(
                    "outline: crosses the antimeridian (longitudes span "
                    f"{min(lons)}..{max(lons)}); split it into a site on each side"
                )
            _check_zone(outline)
        grid = self.site_grid()
        if grid.width * grid.height > MAX_SITE_PX:
            km = (grid.width * grid.resolution / 1000, grid.height * grid.resolution / 1000)
            raise ValueError(
                f"outline: {km[0]:.1f} km x {km[1]:.1f} km ({grid.width * grid.height / 1e6:.1f} "
                f"Mpx) is larger than one store holds ({MAX_SITE_PX / 1e6:.0f} Mpx, e.g. 40 km x "
                "40 km at 10 m: change maps and the report hold whole-site rasters in memory); "
                "watch it as several sites"
            )
        # Half a pixel of slack: lon/lat with 5-6 decimals are only good to about a metre.
        slack = grid.resolution / 2
        frame = grid.footprint.buffer(slack, join_style="mitre")
        if self.outline is not None and not frame.contains(grid.from_lonlat(outline)):
            raise ValueError(f"grid: {grid.bounds} does not cover the outline")
        area = grid.from_lonlat(outline.segmentize(0.001)).buffer(slack, join_style="mitre")
        names = [f.name for f in self.facilities]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"facilities: duplicate names {dupes}")
        unknown = sorted(set(self.alerts.facilities or ()) - set(names))
        if unknown:
            raise ValueError(f"alerts.facilities: unknown facilities {unknown}; known: {names}")
        for i, f in enumerate(self.facilities):
            where = f"facilities[{i}] ({f.name})"
            for part, points in [("polygon", f.polygon)] + [
                (f"berths[{j}]", b) for j, b in enumerate(f.berths)
            ]:
                geom = grid.from_lonlat(Polygon(points))
                if not area.contains(geom):
                    off = geom.difference(area).area
                    raise ValueError(
                        f"{where}.{part}: {off:,.0f} m² of it lie outside the site's outline"
                    )
        return self

    def outline_polygon(self) -> Polygon:
        """The outline in lon/lat (the pinned grid's footprint when none is given)."""
        if self.outline is not None:
            return Polygon(self.outline)
        assert self.grid is not None
        return self.grid.to_grid().footprint_lonlat()

    def site_grid(self) -> Grid:
        """The pinned grid, or the one derived from the outline."""
        if self.grid is not None:
            return self.grid.to_grid()
        return grid_for_outline(Polygon(self.outline))

    def site_climate(self) -> Climate:
        """The seasons: what the definition says, the rest derived from the latitude."""
        rule = derived_climate(self.outline_polygon().centroid.y)
        given = self.climate
        return Climate(
            tuple(given.ice_months) if given.ice_months is not None else rule.ice_months,
            tuple(given.growing_months)
            if given.growing_months is not None
            else rule.growing_months,
            tuple(f for f in ("ice_months", "growing_months") if getattr(given, f) is None),
        )

    def pinned(self) -> SiteDefinition:
        """The same definition with its grid written out (what the registry stores)."""
        return self.model_copy(update={"grid": GridDef.of(self.site_grid())})

    def to_site(self) -> Site:
        facilities = tuple((f.name, f.title, Polygon(f.polygon)) for f in self.facilities)
        berths = tuple(
            (f.name, tuple(Polygon(b) for b in f.berths)) for f in self.facilities if f.berths
        )
        return Site(
            self.name,
            self.title or self.name,
            self.site_grid(),
            self.tile_px,
            self.baseline.months(),
            facilities,
            berths,
            kinds=tuple((f.name, f.kind) for f in self.facilities),
            climate=self.site_climate(),
            alerts=AlertRule(
                self.alerts.min_area_m2,
                tuple(self.alerts.types) if self.alerts.types is not None else None,
                tuple(self.alerts.facilities) if self.alerts.facilities is not None else None,
            ),
        )

    def to_document(self) -> dict:
        """Plain data for YAML or JSON (what :func:`parse_definition` reads back)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


def _check_zone(outline: Polygon) -> None:
    centre = outline.centroid
    zone = utm_epsg(centre.x, centre.y) % 100
    west, east = -180 + (zone - 1) * 6, -180 + zone * 6
    lo, hi = outline.bounds[0], outline.bounds[2]
    reach = max(west - lo, hi - east, 0.0) * 111.32 * math.cos(math.radians(centre.y))
    if reach > MAX_ZONE_OVERREACH_KM:
        raise ValueError(
            f"outline: reaches {reach:.1f} km past the edge of UTM zone {zone} "
            f"({west}°..{east}° E), whose CRS its grid takes; at most "
            f"{MAX_ZONE_OVERREACH_KM:g} km is allowed (past that its pixels come only from "
            "the neighbouring zone's tiles, resampled): watch each side as its own site"
        )


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_definition(data: object, source: str = "site") -> SiteDefinition:
    """Validate a site definition given as plain data; one error naming the field."""
    if not isinstance(data, dict):
        raise SiteError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return SiteDefinition.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = first["msg"].removeprefix("Value error, ")
        more = exc.error_count() - 1
        extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        where = _where(first["loc"])
        raise SiteError(f"{source}: {where + ': ' if where else ''}{msg}{extra}") from None
    except ValueError as exc:  # raised by the grid rule (e.g. an empty outline)
        raise SiteError(f"{source}: {exc}") from None
