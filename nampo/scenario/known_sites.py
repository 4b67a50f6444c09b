"""The built-in sites and the scenarios that simulate them.

The built-in sites are registry entries like any other (``sites/<name>.yaml`` in the
repository: Nampo and the test ports); each scenario under ``scenarios/`` names the site
it simulates (``site:``). This module joins the two for the clients that need a scenario
behind a site: the main job, the suite and the benchmarks. Production code never imports
it: flows and commands find sites in the registry (:mod:`nampo.sites.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from nampo.analysis.dating import ChangeParams
from nampo.errors import NampoError
from nampo.sites import Site, SiteDefinition
from nampo.sites.registry import Registry, load_definition

if TYPE_CHECKING:
    from nampo.io.store import Store
    from nampo.report.data import Scorer

__all__ = [
    "BUILTIN_SITES",
    "KNOWN_SITES",
    "SCENARIOS",
    "KnownSite",
    "change_params",
    "known_site",
    "load_site",
    "register_builtin",
    "scenario_archive",
    "site_for",
    "truth_score",
]

REPOSITORY = Path(__file__).resolve().parents[2]
SCENARIOS = REPOSITORY / "scenarios"
BUILTIN_SITES = REPOSITORY / "sites"
"""The built-in sites' definitions: a folder registry of its own."""


@dataclass(frozen=True)
class KnownSite:
    """A built-in site and the scenario that simulates it."""

    scenario: Path
    definition: SiteDefinition

    @property
    def tile_px(self) -> int:
        return self.definition.tile_px

    @property
    def baseline_months(self) -> int:
        first, last = self.definition.baseline.months()
        return (last.year - first.year) * 12 + last.month - first.month + 1

    def site(self) -> Site:
        return self.definition.to_site()

    def change_params(self) -> ChangeParams:
        return ChangeParams.for_site(self.site())


def _known_sites() -> dict[str, KnownSite]:
    out = {}
    for path in sorted(SCENARIOS.rglob("*.yaml")):
        ref = (yaml.safe_load(path.read_text()) or {}).get("site")
        if isinstance(ref, str):
            definition = load_definition(path.parent / ref)
            out[definition.name] = KnownSite(path, definition)
    return out


KNOWN_SITES: dict[str, KnownSite] = _known_sites()


def known_site(name: str) -> KnownSite:
    try:
        return KNOWN_SITES[name]
    except KeyError:
        raise NampoError(f"unknown site {name!r}; known sites: {', '.join(KNOWN_SITES)}") from None


def change_params(name: str) -> ChangeParams:
    """Change dating's parameters for the built-in site `name` (the defaults otherwise)."""
    return KNOWN_SITES[name].change_params() if name in KNOWN_SITES else ChangeParams()


def load_site(name: str) -> Site:
    """The built-in site called `name`, with its grid, tiles, baseline and facilities."""
    return known_site(name).site()


def register_builtin(registry: Registry, name: str) -> bool:
    """Add the built-in site `name` to `registry` unless it holds one by that name already
    (then the registry's entry is kept: an operator may have edited it). True if added."""
    if name in registry:
        return False
    registry.add(known_site(name).definition)
    return True


def site_for(store: Store, scenario: Path | None = None) -> Site:
    """The store's site with its facilities: from a scenario file, else from the built-in
    site of the store's name when its grid is the store's, else without facilities."""
    from nampo.scenario.model import load_scenario

    own = store.site
    if scenario is not None:
        site = Site.from_scenario(load_scenario(scenario), tile_px=own.tile_px)
    elif own.name in KNOWN_SITES:
        site = load_site(own.name)
    else:
        return own
    if site.grid != own.grid:
        raise NampoError(
            f"the site {site.name!r} has grid {site.grid}, the store {store.url} {own.grid}"
        )
    return site


def scenario_archive(site_name: str, archives: Path) -> Path | None:
    """The cached archive of a built-in site's scenario, when it has been rendered."""
    from nampo.scenario.archive import archive_dir
    from nampo.scenario.model import load_scenario

    known = KNOWN_SITES.get(site_name)
    if known is None:
        return None
    path = archive_dir(load_scenario(known.scenario), archives)
    return path if (path / "truth" / "events.geojson").is_file() else None


def truth_score(archive: Path | None) -> Scorer | None:
    """The report's score of its events against a scenario archive's truth
    (:func:`nampo.evaluation.score.score`); None without an archive or its truth."""
    if archive is None or not (Path(archive) / "truth" / "events.geojson").is_file():
        return None
    truth = Path(archive)

    def scored(events, period):
        from nampo.evaluation.score import score

        found = [{**e.properties(), "geometry": e.geometry} for e in events]
        return score(found, truth, period=period).to_dict()

    return scored
