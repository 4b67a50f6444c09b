"""Watched sites: what a site is (its grid, tiles, facilities and climate), the document
that defines one, and the registry that holds the watched ones (``docs/sites.md``)."""

from nampo.sites.climate import Climate, derived_climate
from nampo.sites.definition import (
    FACILITY_KINDS,
    MAX_SITE_PX,
    FacilityDef,
    GridDef,
    SiteDefinition,
    SiteError,
    parse_definition,
)
from nampo.sites.site import (
    DEFAULT_TILE_PX,
    AlertRule,
    Site,
    Tile,
    outline_geometry,
    tiles_touching,
)

__all__ = [
    "DEFAULT_TILE_PX",
    "FACILITY_KINDS",
    "AlertRule",
    "MAX_SITE_PX",
    "Climate",
    "FacilityDef",
    "GridDef",
    "Site",
    "SiteDefinition",
    "SiteError",
    "Tile",
    "derived_climate",
    "outline_geometry",
    "parse_definition",
    "tiles_touching",
]
