"""The sites nampo knows by name, so that flows and commands take a name (a dropdown in the
Prefect UI) instead of a file.

Each is described by a scenario file (its grid, facilities and period) plus what a scenario
does not say: the tile size of its store and the length of its baseline. A site's store
keeps these, so they are properties of the site, never of a run. The site's seasons (when
its water may freeze, when its vegetation is green) are its climate, which change dating
needs (``docs/change.md``, rule 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nampo.analysis.dating import ChangeParams
from nampo.errors import NampoError
from nampo.sites import Site

if TYPE_CHECKING:
    from nampo.io.store import Store
    from nampo.report.data import Scorer

__all__ = [
    "KNOWN_SITES",
    "SCENARIOS",
    "KnownSite",
    "change_params",
    "known_site",
    "load_site",
    "scenario_archive",
    "site_for",
    "truth_score",
]

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@dataclass(frozen=True)
class KnownSite:
    scenario: Path
    tile_px: int
    baseline_months: int
    ice_months: tuple[int, ...] = (12, 1, 2, 3)
    """Months in which the site's water may freeze (none where it never freezes)."""
    growing_months: tuple[int, ...] = (5, 6, 7, 8, 9)
    """Months in which its vegetation is reliably green (every month where it is evergreen)."""

    def change_params(self) -> ChangeParams:
        return ChangeParams(ice_months=self.ice_months, growing_months=self.growing_months)


KNOWN_SITES: dict[str, KnownSite] = {
    "nampo": KnownSite(SCENARIOS / "nampo.yaml", tile_px=256, baseline_months=12),
    # The small test harbour: 2 x 2 tiles of 64 px, a 3-month baseline (fast end-to-end runs).
    "harbour-mini": KnownSite(SCENARIOS / "tests" / "harbour-mini.yaml", 64, 3),
    # Two further test ports (issue 5), 2.4 x 1.8 km over 18 months: 2 x 2 tiles of 120 px,
    # a 6-month baseline that holds a green season. A North Sea estuary (brackish, tidal)
    # does not freeze; on the equator nothing freezes and the vegetation is evergreen.
    "river-port": KnownSite(SCENARIOS / "tests" / "river-port.yaml", 120, 6, ice_months=()),
    # Ships moored close together (issue 18): 2 x 2 tiles of 64 px, a 3-month baseline.
    "pier-mini": KnownSite(SCENARIOS / "tests" / "pier-mini.yaml", 64, 3),
    "tropical-port": KnownSite(
        SCENARIOS / "tests" / "tropical-port.yaml",
        120,
        6,
        ice_months=(),
        growing_months=tuple(range(1, 13)),
    ),
}


def known_site(name: str) -> KnownSite:
    try:
        return KNOWN_SITES[name]
    except KeyError:
        raise NampoError(f"unknown site {name!r}; known sites: {', '.join(KNOWN_SITES)}") from None


def change_params(name: str) -> ChangeParams:
    """Change dating's parameters for the site called `name`: its seasons (the defaults,
    Nampo's, for a site nampo does not know)."""
    return KNOWN_SITES[name].change_params() if name in KNOWN_SITES else ChangeParams()


def load_site(name: str) -> Site:
    """The site called `name`, with its grid, tiles, baseline and facilities."""
    from nampo.scenario.model import load_scenario

    k = known_site(name)
    return Site.from_scenario(load_scenario(k.scenario), k.tile_px, k.baseline_months)


def site_for(store: Store, scenario: Path | None = None) -> Site:
    """The store's site with its facilities: from a scenario file, else from the known
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
    """The cached archive of a known site's scenario, when it has been rendered."""
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
