"""The scenario document: its parts checked against each other, and reading it from YAML
(every error names the field, ``events[3].start``, and the problem)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, model_validator
from shapely.geometry import Point, Polygon, box, shape

from nampo.errors import ScenarioError
from nampo.grid import Grid
from nampo.scenario.model.base import LonLat, Model
from nampo.scenario.model.cover import Area, Facility, LandcoverSpec
from nampo.scenario.model.events import Event, EventType
from nampo.scenario.model.site import Acquisitions, Climate, GridSpec, Period
from nampo.sites import SiteDefinition, SiteError, parse_definition
from nampo.sites.registry import load_definition

__all__ = ["Scenario", "area_shape", "load_scenario", "parse_scenario"]


class Scenario(Model):
    site: SiteDefinition | None = None
    """The site the scenario simulates (``site: <path of its definition>`` in the file,
    resolved by :func:`load_scenario`): its name, title, grid and facilities are the
    scenario's. A scenario without one carries them itself (a self-contained file)."""
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

    @model_validator(mode="before")
    @classmethod
    def _from_site(cls, data):
        """Take the name, title, grid and facilities from the site the scenario refers to."""
        if not isinstance(data, dict) or data.get("site") is None:
            return data
        site = data["site"]
        if isinstance(site, str):
            raise ValueError(
                f"site: {site!r} is a path; read the scenario with load_scenario, which "
                "resolves it against the scenario file"
            )
        if not isinstance(site, SiteDefinition):
            try:
                site = parse_definition(site, "site")
            except SiteError as exc:  # pydantic reports ValueErrors raised here
                raise ValueError(str(exc)) from None
        carried = sorted(k for k in ("name", "title", "grid", "facilities") if k in data)
        if carried:
            raise ValueError(
                f"{', '.join(carried)}: a scenario that refers to a site takes these from it"
            )
        grid = site.site_grid()
        return {
            **data,
            "site": site,
            "name": site.name,
            "title": site.title or site.name,
            "description": data.get("description") or site.description,
            "grid": {
                "crs": f"EPSG:{grid.epsg}",
                "origin": (grid.x0, grid.y0),
                "size": (grid.width, grid.height),
            },
            "facilities": [
                {"name": f.name, "title": f.title, "polygon": f.polygon, "berths": f.berths}
                for f in site.facilities
            ],
        }

    @property
    def site_definition(self) -> SiteDefinition | None:
        return self.site

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
            for j, berth in enumerate(f.berths):
                inside(berth, f"facilities[{i}] ({f.name}).berths[{j}]")
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
        for platform in self.acquisitions.platforms:
            if platform.first > self.period.end:
                raise ValueError(
                    f"acquisitions.platforms ({platform.name}): first {platform.first} is after "
                    "the period"
                )
        return self

    @property
    def site_grid(self) -> Grid:
        return self.grid.to_grid()

    def fingerprint(self) -> str:
        """A stable hash of the scenario's content (not its formatting): the cache key."""
        # The site's own fields (baseline, catalog, kinds) do not change what is rendered:
        # its name, grid and facilities are copied into the scenario's fields.
        content = self.model_dump(mode="json", by_alias=True, exclude={"site"})
        blob = json.dumps(content, sort_keys=True)
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


def parse_scenario(data: object, source: str = "scenario", base: Path | None = None) -> Scenario:
    """Validate a scenario given as plain data (what YAML gives); a `site:` path is read
    relative to `base` (the scenario file's folder)."""
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    if isinstance(data.get("site"), str) and base is not None:
        try:
            site = load_definition(base / data["site"])
        except SiteError as exc:
            raise ScenarioError(f"{source}: site: {exc}") from None
        data = {**data, "site": site}
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
    return parse_scenario(data, str(path), base=path.parent)
