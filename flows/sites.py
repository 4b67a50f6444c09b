"""Sites for the flows: a flow's `site` parameter is checked against the registry when the
run starts (an unknown name fails the run before any unit, listing the registered sites),
and the deployments' forms offer the registered sites as a dropdown."""

from __future__ import annotations

from typing import Any

from nampo.run.plan import CatalogSpec
from nampo.services import pgstac
from nampo.settings import Settings
from nampo.sites import SiteDefinition
from nampo.sites.registry import Registry

__all__ = ["catalog_for", "registered", "site_choices", "with_site_choices"]


def registered(settings: Settings, name: str) -> SiteDefinition:
    """The registered site `name` (SiteError naming the registered ones otherwise)."""
    return Registry.from_settings(settings).get(name)


def catalog_for(
    settings: Settings,
    definition: SiteDefinition,
    catalog: str | None,
    catalog_url: str | None,
    max_cloud: float | None,
) -> CatalogSpec:
    """The catalog a run searches: the one named, else the site's own profile and
    collection; the local profile's URL is the running local STAC API's."""
    profile = catalog or definition.catalog.profile
    catalog_url = catalog_url or (definition.catalog.url if not catalog else None)
    if profile == "local" and not catalog_url:
        catalog_url = pgstac.read_endpoint(settings.stac_dir).url
    return CatalogSpec(
        profile, catalog_url, max_cloud, settings.catalog_timeout, definition.catalog.collection
    )


def site_choices(settings: Settings) -> list[str]:
    return Registry.from_settings(settings).names()


def with_site_choices(schema: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A deployment's parameter schema whose site fields are dropdowns of `names` (the
    registered sites when the deployment is registered; a site added later is taken by
    the API and the command line at once, and shows in the form once the deployments are
    registered again: `nampo-flows serve` does it at each start)."""
    if not names:
        return schema
    props = schema.get("properties", {})
    if "site" in props:
        props["site"]["enum"] = list(names)
    if "sites" in props:
        for option in props["sites"].get("anyOf", [props["sites"]]):
            if option.get("type") == "array":
                option["items"]["enum"] = list(names)
    return schema
