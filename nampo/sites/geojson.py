"""A site definition made from GeoJSON files, as analysts draw them in a GIS: an outline
(one polygon) and facilities (one feature per facility, with ``name``, ``kind`` and an
optional ``title``; a feature of kind ``berth`` with a ``facility`` property is a berth of
that facility rather than a facility of its own)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shapely.geometry import Polygon, shape

from nampo.sites.definition import SiteDefinition, SiteError, parse_definition

__all__ = ["definition_from_geojson", "outline_ring"]


def _ring(polygon: Polygon) -> list[list[float]]:
    # lon/lat to 6 decimals: about 0.1 m, far below a pixel, and a stable document
    return [[round(x, 6), round(y, 6)] for x, y in list(polygon.exterior.coords)[:-1]]


def _geometries(doc: Any) -> list[tuple[dict, Any]]:
    """(properties, geometry) of each feature of a Geometry, Feature or FeatureCollection."""
    kind = doc.get("type") if isinstance(doc, Mapping) else None
    if kind == "FeatureCollection":
        return [(f.get("properties") or {}, f.get("geometry")) for f in doc.get("features", [])]
    if kind == "Feature":
        return [(doc.get("properties") or {}, doc.get("geometry"))]
    return [({}, doc)]


def _polygon(geometry: Any, where: str) -> Polygon:
    try:
        geom = shape(geometry)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise SiteError(f"{where}: not a GeoJSON geometry ({exc})") from None
    if geom.geom_type != "Polygon":
        raise SiteError(f"{where}: must be a Polygon, got a {geom.geom_type}")
    return geom


def outline_ring(doc: Any, where: str = "outline") -> list[list[float]]:
    """The [lon, lat] ring of an outline given as GeoJSON: exactly one polygon."""
    parts = _geometries(doc)
    if len(parts) != 1:
        raise SiteError(f"{where}: must be one polygon, got {len(parts)} features")
    return _ring(_polygon(parts[0][1], where))


def _facilities(doc: Any, where: str) -> list[dict]:
    facilities: dict[str, dict] = {}
    berths: list[tuple[str, list, str]] = []
    for i, (props, geometry) in enumerate(_geometries(doc)):
        at = f"{where}: feature {i}"
        name, kind = props.get("name"), props.get("kind", "other")
        if kind == "berth" and props.get("facility"):
            berths.append((str(props["facility"]), _ring(_polygon(geometry, at)), at))
            continue
        if not name:
            raise SiteError(f"{at}: needs a `name` property")
        at = f"{where}: feature {i} ({name})"
        poly = _ring(_polygon(geometry, at))
        fac = {"name": name, "title": props.get("title") or name, "kind": kind, "polygon": poly}
        if kind == "berth":
            fac["berths"] = [poly]
        facilities[name] = fac
    for facility, ring, at in berths:
        if facility not in facilities:
            raise SiteError(f"{at}: berth of unknown facility {facility!r}")
        facilities[facility].setdefault("berths", []).append(ring)
    return list(facilities.values())


def definition_from_geojson(
    name: str,
    outline: Any,
    *,
    baseline: tuple[str, str],
    facilities: Any | None = None,
    title: str | None = None,
    tile_px: int | None = None,
    catalog: Mapping[str, Any] | None = None,
    climate: Mapping[str, Any] | None = None,
    source: str = "site",
) -> SiteDefinition:
    """A site definition from GeoJSON documents (its grid derived from the outline)."""
    data: dict[str, Any] = {
        "name": name,
        "outline": outline_ring(outline),
        "baseline": {"first": baseline[0], "last": baseline[1]},
        "facilities": _facilities(facilities, "facilities") if facilities is not None else [],
    }
    if title:
        data["title"] = title
    if tile_px is not None:
        data["tile_px"] = tile_px
    if catalog:
        data["catalog"] = dict(catalog)
    if climate:
        data["climate"] = dict(climate)
    return parse_definition(data, source)
