"""The scenario format: a declarative description of a site, its land cover and its events.

A scenario is a YAML file (see ``docs/scenario.md``). :func:`load_scenario` reads and
validates it; every error names the field (``events[3].start``) and the problem.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from shapely.geometry import Point, Polygon, box, shape
from shapely.validation import explain_validity

from nampo.errors import ScenarioError
from nampo.grid import Grid

LonLat = tuple[float, float]


class LandCover(StrEnum):
    """Surface classes the renderer knows. Their codes are the values of truth class maps."""

    water = "water"
    vegetation = "vegetation"
    bare = "bare"
    paved = "paved"
    pier = "pier"
    roof = "roof"
    coal = "coal"
    tank = "tank"
    containers = "containers"
    ice = "ice"
    ship = "ship"

    @property
    def code(self) -> int:
        return CLASS_CODES[self]


CLASS_CODES: dict[LandCover, int] = {c: i + 1 for i, c in enumerate(LandCover)}
"""Class code of each land cover in the truth rasters (0 = outside the site / no data)."""

# Classes a scenario may paint on the ground; ice and ships only appear through events.
GROUND_CLASSES = [c for c in LandCover if c not in (LandCover.ice, LandCover.ship)]


class Progress(StrEnum):
    """How a land-cover change spreads over its geometry between start and end."""

    step = "step"
    """Every pixel changes on the end date."""
    linear = "linear"
    """Pixels change in a spatially coherent random order, evenly spread over the window."""
    edge_inward = "edge_inward"
    """Pixels change from the polygon's edge towards its centre (a draining pond)."""
    sweep = "sweep"
    """Pixels change along ``direction`` (degrees from north: 90 runs west to east)."""
    per_object = "per_object"
    """Each polygon of the event changes all at once, on its own date within the window."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _ring(points: list[LonLat], where: str = "polygon") -> Polygon:
    if len(points) < 3:
        raise ValueError(f"{where} needs at least 3 [lon, lat] points, got {len(points)}")
    for lon, lat in points:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError(f"{where} point [{lon}, {lat}] is not a [lon, lat] pair in degrees")
    poly = Polygon(points)
    if not poly.is_valid:
        raise ValueError(f"{where} is not a valid polygon: {explain_validity(poly)}")
    return poly


class GridSpec(_Model):
    crs: str = Field(description="Projected CRS as 'EPSG:<code>' (the UTM zone of the site).")
    resolution: Literal[10] = 10
    origin: tuple[float, float] = Field(description="[x, y] of the upper-left corner, in the CRS.")
    size: tuple[int, int] = Field(description="[columns, rows] of 10 m pixels.")

    @field_validator("crs")
    @classmethod
    def _epsg(cls, v: str) -> str:
        if not v.upper().startswith("EPSG:") or not v[5:].isdigit():
            raise ValueError(f"must look like 'EPSG:32651', got {v!r}")
        code = int(v[5:])
        if not (32601 <= code <= 32660 or 32701 <= code <= 32760):
            raise ValueError(f"must be a WGS 84 / UTM zone (EPSG:326xx or 327xx), got {v}")
        return v.upper()

    @field_validator("origin")
    @classmethod
    def _aligned(cls, v: tuple[float, float]) -> tuple[float, float]:
        # Sentinel-2 tile origins lie on a 60 m lattice counted from x = 0 and the equator
        # (e.g. 699960 / 4300020): keep the site's 10 and 20 m pixels on those lattices.
        if v[0] % 20 or v[1] % 20:
            raise ValueError(
                f"must be multiples of 20 m (the Sentinel-2 pixel lattice), got {list(v)}"
            )
        return v

    @field_validator("size")
    @classmethod
    def _size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 60 or v[1] < 60 or v[0] % 6 or v[1] % 6:
            raise ValueError(f"must be at least 60 and multiples of 6 (60 m bands), got {list(v)}")
        if v[0] * v[1] > 4_000_000:
            raise ValueError(f"{v[0]}x{v[1]} pixels is larger than the 4 Mpx a scenario may have")
        return v

    def to_grid(self) -> Grid:
        return Grid(
            int(self.crs[5:]),
            float(self.resolution),
            self.origin[0],
            self.origin[1],
            self.size[0],
            self.size[1],
        )


class Period(_Model):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _order(self) -> Period:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start}")
        if self.start < dt.date(2015, 6, 23):
            raise ValueError(f"start {self.start} is before Sentinel-2A's launch (2015-06-23)")
        return self


LAUNCHES = {
    "sentinel-2a": dt.date(2015, 6, 23),
    "sentinel-2b": dt.date(2017, 3, 7),
    "sentinel-2c": dt.date(2024, 9, 5),
}


class Platform(_Model):
    name: Literal["sentinel-2a", "sentinel-2b", "sentinel-2c"]
    first: dt.date = Field(description="Date of this platform's first acquisition of the site.")
    last: dt.date | None = Field(default=None, description="Last acquisition (open if omitted).")
    revisit_days: int = Field(default=10, ge=1, le=30)

    @model_validator(mode="after")
    def _launched(self) -> Platform:
        if self.first < LAUNCHES[self.name]:
            raise ValueError(
                f"first {self.first} is before {self.name}'s launch ({LAUNCHES[self.name]})"
            )
        if self.last is not None and self.last < self.first:
            raise ValueError(f"last {self.last} is before first {self.first}")
        return self


class MgrsTile(_Model):
    code: str = Field(pattern=r"^\d{2}[C-X][A-Z]{2}$")
    x_origin: float = Field(description="x of the tile's west edge in the site CRS (e.g. 699960).")
    y_origin: float = Field(
        description="y of the tile's north edge in the site CRS (e.g. 4300020)."
    )
    size: float = 109800.0


class Acquisitions(_Model):
    platforms: list[Platform] = Field(min_length=1)
    relative_orbit: int = Field(ge=1, le=143)
    overpass_utc: dt.time = Field(description="UTC time of the overpass over the site.")
    tiles: list[MgrsTile] = Field(min_length=1)
    partial_coverage: float = Field(
        default=0.08,
        ge=0,
        le=1,
        description="Share of acquisitions whose swath or datastrip edge cuts the site.",
    )
    orbit_heading: float = Field(
        default=-167.0, description="Ground-track heading in degrees (descending orbit)."
    )


class Climate(_Model):
    cloud_cover: list[float] = Field(
        min_length=12,
        max_length=12,
        description="Mean cloud fraction of a scene, per calendar month (Jan..Dec).",
    )
    fog: list[float] = Field(
        default=[0.0] * 12,
        min_length=12,
        max_length=12,
        description="Probability of a thin fog/haze layer over the site, per month.",
    )
    cirrus: float = Field(default=0.1, ge=0, le=1, description="Probability of thin cirrus.")
    cloud_height_m: tuple[float, float] = (600.0, 2500.0)
    phenology: Literal["temperate", "evergreen"] = Field(
        default="temperate",
        description="Vegetation's year: temperate (green May-October, dormant in winter) or "
        "evergreen (humid tropics: green all year, a shallow dip in the drier months).",
    )

    @field_validator("cloud_height_m")
    @classmethod
    def _heights(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1] <= 15000:
            raise ValueError(
                f"must be [low, high] metres with 0 < low <= high <= 15000, got {list(v)}"
            )
        return v

    @field_validator("cloud_cover", "fog")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        bad = [x for x in v if not 0 <= x <= 1]
        if bad:
            raise ValueError(f"values must be fractions between 0 and 1, got {bad}")
        return v


class Mixture(_Model):
    """A heterogeneous surface (a town, a yard): random patches of several classes."""

    classes: dict[LandCover, float]
    grain_m: float = Field(default=20.0, ge=5, le=500, description="Typical patch size.")

    @field_validator("classes")
    @classmethod
    def _weights(cls, v: dict[LandCover, float]) -> dict[LandCover, float]:
        for c in v:
            if c not in GROUND_CLASSES:
                raise ValueError(f"class {c.value!r} cannot be painted on the ground")
        if abs(sum(v.values()) - 1) > 1e-6:
            raise ValueError(f"shares must add up to 1, got {sum(v.values()):.3f}")
        return v


# A class name, or a mapping describing a mixture: dispatch on the shape so that errors
# point at the right one instead of listing both alternatives.
Cover = Annotated[
    Annotated[LandCover, Tag("class-name")] | Annotated[Mixture, Tag("mixture")],
    Discriminator(lambda v: "mixture" if isinstance(v, dict | Mixture) else "class-name"),
]


class Area(_Model):
    """One polygon of the base land-cover map."""

    cover: Cover = Field(alias="class")
    polygon: list[LonLat] | None = None
    circle: tuple[float, float, float] | None = Field(
        default=None, description="[lon, lat, diameter_m] for round objects (tanks)."
    )
    note: str = ""

    @model_validator(mode="after")
    def _one_shape(self) -> Area:
        if (self.polygon is None) == (self.circle is None):
            raise ValueError("give exactly one of `polygon` or `circle`")
        return self

    @field_validator("cover")
    @classmethod
    def _ground(cls, v):
        if isinstance(v, LandCover) and v not in GROUND_CLASSES:
            raise ValueError(f"class {v.value!r} cannot be painted on the ground")
        return v

    @field_validator("polygon")
    @classmethod
    def _poly(cls, v: list[LonLat] | None) -> list[LonLat] | None:
        if v is not None:
            _ring(v)
        return v


class LandcoverSpec(_Model):
    default: LandCover = LandCover.vegetation
    areas: list[Area] = Field(default_factory=list)


class Facility(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    polygon: list[LonLat]
    berths: list[list[LonLat]] = Field(
        default_factory=list,
        description="Polygons where ships moor (long and thin: a ship lies along the long axis).",
    )

    @field_validator("polygon")
    @classmethod
    def _poly(cls, v):
        _ring(v)
        return v

    @field_validator("berths")
    @classmethod
    def _berths(cls, v):
        for i, b in enumerate(v):
            _ring(b, f"berth {i}")
        return v


class EventType(StrEnum):
    drainage = "drainage"
    reclamation = "reclamation"
    pier = "pier"
    construction = "construction"
    new_tank = "new_tank"
    coal_cover = "coal_cover"
    demolition = "demolition"
    storage = "storage"
    equipment = "equipment"
    vessel_visits = "vessel_visits"
    seasonal_ice = "seasonal_ice"


# What a land-cover event turns its pixels into when the scenario does not say.
DEFAULT_TARGET: dict[EventType, LandCover] = {
    EventType.drainage: LandCover.bare,
    EventType.reclamation: LandCover.paved,
    EventType.pier: LandCover.pier,
    EventType.construction: LandCover.roof,
    EventType.new_tank: LandCover.tank,
    EventType.coal_cover: LandCover.coal,
    EventType.demolition: LandCover.bare,
    EventType.storage: LandCover.containers,
    EventType.equipment: LandCover.roof,
}
ACTIVITY_EVENTS = (EventType.vessel_visits, EventType.seasonal_ice)


class Ships(_Model):
    length_m: tuple[float, float] = (60.0, 180.0)
    beam_m: tuple[float, float] = (12.0, 30.0)


def _check_mmdd(v: str) -> str:
    try:
        dt.date(2001, *(int(x) for x in v.split("-")))  # a non-leap year: no 02-29
    except ValueError:
        raise ValueError(f"{v!r} is not a month-day (MM-DD) of the calendar") from None
    return v


class IceSeason(_Model):
    """A winter ice season that repeats every year of the event's window."""

    freeze: str = Field(default="12-20", pattern=r"^\d{2}-\d{2}$", description="MM-DD ice appears")
    peak: str = Field(default="01-25", pattern=r"^\d{2}-\d{2}$", description="MM-DD most ice")
    thaw: str = Field(default="03-05", pattern=r"^\d{2}-\d{2}$", description="MM-DD ice gone")
    peak_fraction: float = Field(default=0.6, gt=0, le=1)

    @field_validator("freeze", "peak", "thaw")
    @classmethod
    def _day(cls, v: str) -> str:
        return _check_mmdd(v)


class Event(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: EventType
    title: str = ""
    brief: int | None = Field(default=None, description="Row of the brief's table it renders.")
    facility: str | None = None
    start: dt.date
    end: dt.date
    polygons: list[list[LonLat]] = Field(default_factory=list)
    circle: tuple[float, float, float] | None = Field(
        default=None, description="[lon, lat, diameter_m] for round objects (tanks)."
    )
    progress: Progress = Progress.linear
    direction: float = Field(default=90.0, description="Sweep direction, degrees from north.")
    via: LandCover | None = Field(
        default=None,
        description="Class the ground takes at `start` (e.g. bare for a cleared site).",
    )
    to: LandCover | None = None
    # activity events
    rate: float = Field(default=0.5, ge=0, le=1, description="Share of berths occupied at a scene.")
    berths: list[int] | None = Field(
        default=None, description="Indices of the facility's berths used (all if omitted)."
    )
    ships: Ships = Ships()
    ice: IceSeason = IceSeason()

    @model_validator(mode="after")
    def _check(self) -> Event:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if not self.polygons and self.circle is None and self.type != EventType.vessel_visits:
            raise ValueError("needs `polygons` or `circle`")
        for i, p in enumerate(self.polygons):
            _ring(p, f"polygons[{i}]")
        if self.type in ACTIVITY_EVENTS:
            if self.to is not None or self.via is not None:
                raise ValueError(f"`to`/`via` do not apply to {self.type.value} events")
        elif self.target in (LandCover.ice, LandCover.ship):
            raise ValueError(f"`to` cannot be {self.target.value}")
        elif self.via in (LandCover.ice, LandCover.ship):
            raise ValueError(f"`via` cannot be {self.via.value}")
        if self.type == EventType.vessel_visits and self.facility is None:
            raise ValueError("vessel_visits needs `facility` (ships moor at its berths)")
        return self

    @property
    def target(self) -> LandCover | None:
        if self.type in ACTIVITY_EVENTS:
            return None
        return self.to or DEFAULT_TARGET[self.type]


class Scenario(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    title: str
    description: str = ""
    seed: int = 0
    grid: GridSpec
    period: Period
    acquisitions: Acquisitions
    climate: Climate
    landcover: LandcoverSpec
    facilities: list[Facility] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        grid = self.grid.to_grid()
        # Half a pixel of slack: lon/lat with 5 decimals are only good to about a metre.
        site = grid.footprint.buffer(grid.resolution / 2, join_style="mitre")
        names = [f.name for f in self.facilities]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"facilities: duplicate names {sorted(dupes)}")
        ids = [e.id for e in self.events]
        dupes = {n for n in ids if ids.count(n) > 1}
        if dupes:
            raise ValueError(f"events: duplicate ids {sorted(dupes)}")

        def inside(points: list[LonLat], where: str) -> None:
            geom = grid.from_lonlat(Polygon(points))
            if not site.contains(geom):
                off = geom.difference(site).area
                raise ValueError(
                    f"{where} leaves the grid ({off:,.0f} m² outside {grid.bounds}); "
                    "move it or enlarge `grid`"
                )

        for i, a in enumerate(self.landcover.areas):
            # Land-cover areas may run past the grid (they are clipped): only reject
            # polygons that miss the grid entirely, which is always a mistake.
            if not site.intersects(area_shape(a, grid)):
                raise ValueError(f"landcover.areas[{i}].polygon lies entirely outside the grid")
        for i, f in enumerate(self.facilities):
            inside(f.polygon, f"facilities[{i}] ({f.name}).polygon")
            for j, b in enumerate(f.berths):
                inside(b, f"facilities[{i}] ({f.name}).berths[{j}]")
        for i, e in enumerate(self.events):
            where = f"events[{i}] ({e.id})"
            if e.facility is not None and e.facility not in names:
                raise ValueError(
                    f"{where}.facility: unknown facility {e.facility!r}; known: {names}"
                )
            for j, p in enumerate(e.polygons):
                inside(p, f"{where}.polygons[{j}]")
            if e.circle is not None:
                lon, lat, d = e.circle
                c = grid.from_lonlat(shape({"type": "Point", "coordinates": (lon, lat)}))
                if not site.contains(c.buffer(d / 2)):
                    raise ValueError(f"{where}.circle leaves the grid {grid.bounds}")
            if e.end < self.period.start or e.start > self.period.end:
                raise ValueError(
                    f"{where}: window {e.start}..{e.end} is outside the period "
                    f"{self.period.start}..{self.period.end}"
                )
            if e.type == EventType.vessel_visits:
                fac = next(f for f in self.facilities if f.name == e.facility)
                if not fac.berths:
                    raise ValueError(f"{where}: facility {fac.name!r} has no berths")
                for b in e.berths or []:
                    if not 0 <= b < len(fac.berths):
                        raise ValueError(
                            f"{where}.berths: {b} is not a berth of {fac.name!r} "
                            f"(it has {len(fac.berths)})"
                        )
        zone = grid.epsg % 100
        for i, t in enumerate(self.acquisitions.tiles):
            where = f"acquisitions.tiles[{i}] ({t.code})"
            # South of the equator the lattice counts from the false northing (10,000 km).
            northing = t.y_origin - (10_000_000 if grid.epsg > 32700 else 0)
            if t.x_origin % 60 or northing % 60:
                raise ValueError(f"{where}: origin must be on the 60 m lattice (multiples of 60)")
            if int(t.code[:2]) != zone:
                raise ValueError(f"{where}: tile of UTM zone {t.code[:2]} on a grid in zone {zone}")
            tile = box(t.x_origin, t.y_origin - t.size, t.x_origin + t.size, t.y_origin)
            if tile.intersection(grid.footprint).area == 0:
                raise ValueError(f"{where}: does not overlap the grid {grid.bounds}")
        for p in self.acquisitions.platforms:
            if p.first > self.period.end:
                raise ValueError(
                    f"acquisitions.platforms ({p.name}): first {p.first} is after the period"
                )
        return self

    @property
    def site_grid(self) -> Grid:
        return self.grid.to_grid()

    def fingerprint(self) -> str:
        """A stable hash of the scenario's content (not its formatting): the cache key."""
        blob = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def area_shape(area: Area, grid: Grid):
    """A land-cover area's shape in the grid's CRS."""
    if area.circle is not None:
        lon, lat, diameter = area.circle
        return grid.from_lonlat(Point(lon, lat)).buffer(diameter / 2, quad_segs=16)
    return grid.from_lonlat(Polygon(area.polygon))


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if part == "class-name":  # the tag of the union `class: <name> | <mixture>`
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "scenario"


def parse_scenario(data: object, source: str = "scenario") -> Scenario:
    """Validate a scenario given as plain data (what YAML gives)."""
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Keep the message one line: the field path, then what is wrong with it.
        msg = first["msg"].removeprefix("Value error, ")
        more = exc.error_count() - 1
        extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        where = f" {_loc(first['loc'])}:" if first["loc"] else ""
        raise ScenarioError(f"{source}:{where} {msg}{extra}") from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file.

    Examples
    --------
    >>> s = load_scenario("scenarios/nampo.yaml")  # doctest: +SKIP
    >>> s.site_grid.shape  # doctest: +SKIP
    (600, 1020)
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ScenarioError(
            f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    return parse_scenario(data, str(path))
