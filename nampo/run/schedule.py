"""The one scheduling policy of a run, for every executor: which units run, in which
order and grouping, and what waits for what (the reasons: docs/run.md).

- The baselines run first, largest tile first; every chain waits for all of them.
- A tile's months run as chains in month order, one task each; chains start by first
  month, then in the plan's tile order. The library's executor uses chains of
  :data:`LIBRARY_CHAIN_MONTHS` (one month): its units then run month by month across the
  site (or a worker's strip), so that each month's files are opened and read ahead once.
- The Prefect flows (a task run costs 0.1-0.2 CPU-s) run a :class:`Sweep` a task: up to
  :data:`CHAIN_MONTHS` months of one worker's strip, month by month inside the task
  (:func:`sweeps`); a strip's sweep waits for the strip's sweep before it.
- A chain waits for its tile's chain before it; that chain's failure does not stop it.
- A failed baseline stops its own tile's months only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from nampo.grid import Grid
from nampo.run.plan import RunPlan
from nampo.run.units import BaselineUnit, Unit
from nampo.sites import Site

T = TypeVar("T", bound=Hashable)

__all__ = [
    "CHAIN_MONTHS",
    "LIBRARY_CHAIN_MONTHS",
    "Chain",
    "Schedule",
    "Strip",
    "Sweep",
    "chains",
    "schedule",
    "strips",
    "sweep_before",
    "sweeps",
]

CHAIN_MONTHS = 12
"""Months per task run in the Prefect flows (a :class:`Sweep`: a strip's tiles over up to
12 months): a year of a site's backfill is one task run a worker's strip (a task run costs
0.1-0.2 CPU-s whatever it computes; a unit about 0.5)."""

LIBRARY_CHAIN_MONTHS = 1
"""Months of one tile per task in the library's executor (``nampo.run.execute``): one.
Chains start by month, then tile, and a tile's month waits for its month before, so a
worker goes through all its tiles of one month before the next month: each month's files
are opened, and their blocks under the worker's strip read ahead, once for all its tiles.
With 12-month chains a worker went through 12 months of one tile, then of the next: a
file read ahead for its strip had left GDAL's block cache and the open files by the time
the strip's next tile reached that month (a 24-month backfill of Nampo over HTTP read 4.5x
the blocks it needed, 89 requests a unit; docs/benchmarks.md). A Dask task costs the
library a few milliseconds, against half a second a unit."""


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

    @cached_property
    def _before(self) -> dict[Chain, Chain | None]:
        return _before_in_group(self.chains, lambda c: c.tile_id)

    def previous(self, chain: Chain) -> Chain | None:
        """The chain of the same tile before `chain`, which it waits for (its failure does
        not stop `chain`)."""
        try:
            return self._before[chain]
        except KeyError:
            raise ValueError(f"chain {chain.name} is not in the schedule") from None

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


@dataclass(frozen=True)
class Strip:
    """The tiles one worker computes on a cluster (consecutive in row order), and the band
    of the site whose blocks it reads ahead when it opens a remote file: the full width of
    the site over the tile rows they span (a full-width band of a COG's block rows is one
    byte range)."""

    rows: tuple[int, int]
    """[first, last) tile rows the strip's tiles span (a row may be shared with the next
    strip)."""
    grid: Grid
    """The band's pixels, on the site's lattice."""
    tiles: tuple[str, ...]
    """Ids of its tiles."""


UNIT_COST_PX = 256 * 256
"""What a unit costs besides its pixels, in pixels of a tile: opening, reading and
writing cost about as much for a small edge tile as for a full one (measured at Nampo:
0.6-0.8 s for a 88 x 256 tile, 0.7-1.0 s for a 256 x 256 one)."""


def strips(site: Site, n: int) -> tuple[Strip, ...]:
    """The site's tiles, in row order, cut into `n` runs of consecutive tiles whose
    largest cost (a fixed :data:`UNIT_COST_PX` and the pixels of each tile) is as small as
    it can be; () when the site has fewer tiles than `n`.

    On a cluster each worker computes one strip's tiles (preferably: Dask may still give
    a tile to an idle worker) and reads ahead only the blocks of its strip's band: with 2
    workers each reading ahead the whole site, the workers read 1.6x the blocks the units
    need (each also read those of the other's tiles)."""
    tiles = sorted(site.tiles, key=lambda t: (t.iy, t.ix))
    if n < 1 or len(tiles) < n:
        return ()
    cost = [UNIT_COST_PX + t.shape[0] * t.shape[1] for t in tiles]
    m = len(tiles)
    # best[k][i]: the smallest largest run when tiles [0, i) make k runs; cut[k][i]: where
    # the last of them starts.
    inf = float("inf")
    best = [[inf] * (m + 1) for _ in range(n + 1)]
    cut = [[0] * (m + 1) for _ in range(n + 1)]
    best[0][0] = 0
    for k in range(1, n + 1):
        for i in range(k, m + 1):
            for j in range(k - 1, i):
                worst = max(best[k - 1][j], sum(cost[j:i]))
                if worst < best[k][i]:
                    best[k][i], cut[k][i] = worst, j
    runs, i = [], m
    for k in range(n, 0, -1):
        runs.append((cut[k][i], i))
        i = cut[k][i]
    g = site.grid
    out = []
    for first, last in reversed(runs):
        mine = tiles[first:last]
        top = min(t.rows[0] for t in mine)
        bottom = max(t.rows[1] for t in mine)
        grid = Grid(g.epsg, g.resolution, g.x0, g.y0 - top * g.resolution, g.width, bottom - top)
        rows = (mine[0].iy, mine[-1].iy + 1)
        out.append(Strip(rows, grid, tuple(t.id for t in mine)))
    return tuple(out)


@dataclass(frozen=True)
class Sweep:
    """Months of a strip's tiles computed by one task, month by month: every tile's month
    (in the strip's tile order), then the next month. The Prefect flows' task: one task
    run for many units (a task run costs 0.1-0.2 CPU-s), read the way the library's
    executor reads (each month's files opened, and read ahead for the strip, once)."""

    units: tuple[Unit, ...]
    """The month units, month-major (at least one)."""
    strip: Strip | None
    """The strip whose worker runs the sweep and whose band it reads ahead; None when the
    site has fewer tiles than workers (a sweep is then one tile's, on any worker, reading
    ahead the whole site)."""

    @property
    def tiles(self) -> tuple[str, ...]:
        """Ids of the tiles it computes, in the order it computes them each month."""
        return tuple(dict.fromkeys(u.tile_id for u in self.units))

    @property
    def name(self) -> str:
        """``x00y00..x01y00/2017-01..2017-12`` (its first and last tile and month); a sweep
        of one tile is named as a chain (``x00y00/2017-01..2017-12``, or the unit id)."""
        tiles = self.tiles
        first = min(u.month for u in self.units)
        last = max(u.month for u in self.units)
        where = tiles[0] if len(tiles) == 1 else f"{tiles[0]}..{tiles[-1]}"
        when = f"{first:%Y-%m}" if first == last else f"{first:%Y-%m}..{last:%Y-%m}"
        return f"{where}/{when}"

    @property
    def group(self) -> Strip | str:
        """What its sweeps before and after share: its strip, else its one tile."""
        return self.strip if self.strip is not None else self.units[0].tile_id


def sweeps(units: Iterable[Unit], strips: Sequence[Strip], size: int = CHAIN_MONTHS) -> list[Sweep]:
    """The units cut into sweeps: per strip (per tile when `strips` is empty, or for a tile
    in none of them), the months its units have, in month order, cut into runs of at most
    `size` months; each sweep month-major, the strip's tiles in its order. In the order
    they should start: by their first month, then the strips' order (tiles: the order
    `units` gives them). A sweep waits for its group's sweep before it (:func:`sweep_before`),
    so a tile's month still follows its month before."""
    units = list(units)
    groups: list[tuple[Strip | None, tuple[str, ...]]] = [(s, s.tiles) for s in strips]
    placed = {t for s in strips for t in s.tiles}
    for tile in dict.fromkeys(u.tile_id for u in units):
        if tile not in placed:
            groups.append((None, (tile,)))
    out: list[tuple[tuple, Sweep]] = []
    for g, (strip, tiles) in enumerate(groups):
        rank = {t: i for i, t in enumerate(tiles)}
        mine = [u for u in units if u.tile_id in rank]
        months = sorted({u.month for u in mine})
        for i in range(0, len(months), size):
            window = set(months[i : i + size])
            now = sorted(
                (u for u in mine if u.month in window), key=lambda u: (u.month, rank[u.tile_id])
            )
            out.append(((now[0].month, g), Sweep(tuple(now), strip)))
    return [s for _, s in sorted(out, key=lambda x: x[0])]


def sweep_before(order: Sequence[Sweep]) -> dict[Sweep, Sweep | None]:
    """Each sweep of `order` (as :func:`sweeps` gives them) -> its group's sweep before it,
    which it waits for (that sweep's failure does not stop it)."""
    return _before_in_group(order, lambda s: s.group)


def _before_in_group(items: Iterable[T], group: Callable[[T], Hashable]) -> dict[T, T | None]:
    """Each of `items` -> the last item before it in the same group (None for the first)."""
    last: dict[Hashable, T] = {}
    before: dict[T, T | None] = {}
    for item in items:
        before[item] = last.get(group(item))
        last[group(item)] = item
    return before
