"""The one scheduling policy of a run, for every executor: which units run, in which
order and grouping, and what waits for what (the reasons: docs/run.md).

- The baselines run first, largest tile first; every chain waits for all of them.
- A tile's months run as chains of up to :data:`CHAIN_MONTHS` months in month order, one
  task each; chains start by first month, then in the plan's tile order.
- A chain waits for its tile's chain before it; that chain's failure does not stop it.
- A failed baseline stops its own tile's months only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nampo.run.plan import RunPlan
from nampo.run.units import BaselineUnit, Unit

__all__ = ["CHAIN_MONTHS", "Chain", "Schedule", "chains", "schedule"]

CHAIN_MONTHS = 12
"""Months of one tile per task: a year of a site's backfill is one task a tile."""


@dataclass(frozen=True)
class Chain:
    """Months of one tile (those the run computes), computed by one task in month order."""

    units: tuple[Unit, ...]
    """The month units, all of one tile, in month order (at least one)."""

    @property
    def tile_id(self) -> str:
        return self.units[0].tile_id

    @property
    def name(self) -> str:
        """``x00y00/2017-01..2017-12``; a one-month chain is named by its unit id."""
        first, last = self.units[0], self.units[-1]
        return first.id if len(self.units) == 1 else f"{first.id}..{last.month:%Y-%m}"


@dataclass(frozen=True)
class Schedule:
    """A plan's units as tasks in the order they are submitted, with their waits."""

    baselines: tuple[BaselineUnit, ...]
    """Baseline units, one task each, largest tile first; every chain waits for them all."""
    chains: tuple[Chain, ...]
    """Month chains, in the order they should start."""

    def previous(self, chain: Chain) -> Chain | None:
        """The chain of the same tile before `chain`, which it waits for (its failure does
        not stop `chain`)."""
        before = None
        for other in self.chains:
            if other == chain:
                return before
            if other.tile_id == chain.tile_id:
                before = other
        raise ValueError(f"chain {chain.name} is not in the schedule")

    def stopped_by(self, chain: Chain) -> BaselineUnit | None:
        """The baseline of the chain's tile when the run computes it: if it fails, the
        chain does not run (another tile's failed baseline does not stop it)."""
        return next((b for b in self.baselines if b.tile_id == chain.tile_id), None)


def chains(units: Iterable[Unit], size: int = CHAIN_MONTHS) -> list[Chain]:
    """The months of each tile in month order, cut into chains of at most `size`; in the
    order they should start: by their first month, then in the order `units` gives the
    tiles (the plan's: largest tile first)."""
    units = list(units)
    rank: dict[str, int] = {}
    for unit in units:
        rank.setdefault(unit.tile_id, len(rank))
    by_tile: dict[str, list[Unit]] = {}
    for unit in sorted(units, key=lambda u: u.month):
        by_tile.setdefault(unit.tile_id, []).append(unit)
    runs = [
        Chain(tuple(ms[i : i + size])) for ms in by_tile.values() for i in range(0, len(ms), size)
    ]
    return sorted(runs, key=lambda c: (c.units[0].month, rank[c.tile_id]))


def schedule(plan: RunPlan, size: int = CHAIN_MONTHS) -> Schedule:
    """The plan's baselines and month chains, in submission order."""
    return Schedule(plan.baselines, tuple(chains(plan.months, size)))
