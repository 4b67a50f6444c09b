"""The sites nampo knows by name, so that flows and commands take a name (a dropdown in the
Prefect UI) instead of a file.

Each is described by a scenario file (its grid, facilities and period) plus what a scenario
does not say: the tile size of its store and the length of its baseline. A site's store
keeps these, so they are properties of the site, never of a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nampo.errors import NampoError
from nampo.sites import Site

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@dataclass(frozen=True)
class KnownSite:
    scenario: Path
    tile_px: int
    baseline_months: int


KNOWN_SITES: dict[str, KnownSite] = {
    "nampo": KnownSite(SCENARIOS / "nampo.yaml", tile_px=256, baseline_months=12),
    # The small test harbour: 2 x 2 tiles of 64 px, a 3-month baseline (fast end-to-end runs).
    "harbour-mini": KnownSite(SCENARIOS / "tests" / "harbour-mini.yaml", 64, 3),
    # Two further test ports (issue 5), 2.4 x 1.8 km over 18 months: 2 x 2 tiles of 120 px,
    # a 6-month baseline that holds a green season.
    "river-port": KnownSite(SCENARIOS / "tests" / "river-port.yaml", 120, 6),
    "tropical-port": KnownSite(SCENARIOS / "tests" / "tropical-port.yaml", 120, 6),
}


def known_site(name: str) -> KnownSite:
    try:
        return KNOWN_SITES[name]
    except KeyError:
        raise NampoError(f"unknown site {name!r}; known sites: {', '.join(KNOWN_SITES)}") from None


def load_site(name: str) -> Site:
    """The site called `name`, with its grid, tiles, baseline and facilities."""
    from nampo.scenario.model import load_scenario

    k = known_site(name)
    return Site.from_scenario(load_scenario(k.scenario), k.tile_px, k.baseline_months)
