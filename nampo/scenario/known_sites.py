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

from nampo.analysis.dating import ChangeParams
from nampo.errors import NampoError
from nampo.sites import Site

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
