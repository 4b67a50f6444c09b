"""The one scheduling policy (nampo.run.schedule) that both executors follow."""

from __future__ import annotations

import pytest

from nampo.run.schedule import Schedule, chains
from nampo.run.units import BaselineUnit, Unit, parse_month


def test_a_tiles_months_run_as_chains_in_month_order_period_by_period():
    def unit(m: str, tile: str) -> Unit:
        return Unit(parse_month(m), tile)

    units = [unit(f"2017-{m:02d}", t) for m in range(12, 0, -1) for t in ("x01y00", "x00y00")]
    units += [unit("2018-01", "x00y00")]
    got = chains(units, size=12)
    # period by period; within one, the tiles in the order the units give them
    assert [c.name for c in got] == [
        "x01y00/2017-01..2017-12", "x00y00/2017-01..2017-12", "x00y00/2018-01"
    ]  # fmt: skip
    assert [c.name for c in chains(units[::-1], size=12)][:2] == [
        "x00y00/2017-01..2017-12", "x01y00/2017-01..2017-12"
    ]  # fmt: skip
    assert sorted(u.id for c in got for u in c.units) == sorted(u.id for u in units)
    assert all(len({u.tile_id for u in c.units}) == 1 for c in got)
    assert all(list(c.units) == sorted(c.units) for c in got)
    assert chains([], size=12) == []

    # what waits for what: a chain for its tile's chain before it, and its tile's baseline
    # (when the run computes it) stops it
    schedule = Schedule((BaselineUnit("x01y00"),), tuple(got))
    assert [schedule.previous(c) for c in got] == [None, None, got[1]]
    assert [schedule.stopped_by(c) for c in got] == [BaselineUnit("x01y00"), None, None]
    with pytest.raises(ValueError, match="not in the schedule"):
        schedule.previous(chains([unit("2019-01", "x00y00")])[0])


def test_a_site_is_cut_into_strips_of_consecutive_tiles_one_per_worker():
    """On a cluster each worker computes one strip of the site's tiles and reads ahead the
    blocks of the full-width band they span: every tile in exactly one strip, in row
    order, the strips' costs (a unit's fixed cost and its pixels) as even as consecutive
    tiles allow; none when tiles are fewer than workers."""
    from nampo.grid import Grid
    from nampo.run.schedule import UNIT_COST_PX, strips
    from nampo.sites import Site

    grid = Grid(32651, 10.0, 700_000.0, 4_300_000.0, width=1020, height=600)
    site = Site("s", "s", grid, tile_px=256)  # 4 x 3 tiles, the last row 88 px high
    assert strips(site, 1)[0].grid == grid
    assert strips(site, 13) == ()
    two = strips(site, 2)
    ordered = [t.id for t in sorted(site.tiles, key=lambda t: (t.iy, t.ix))]
    assert [t for s in two for t in s.tiles] == ordered
    # row 0 and the first tile of row 1, then the rest: bands of rows 0-1 and 1-2
    assert [len(s.tiles) for s in two] == [5, 7]
    assert [s.rows for s in two] == [(0, 2), (1, 3)]
    assert all(s.grid.width == grid.width and s.grid.x0 == grid.x0 for s in two)
    assert [(s.grid.y0, s.grid.height) for s in two] == [(grid.y0, 512), (grid.y0 - 2560, 344)]

    def cost(strip) -> int:
        return sum(
            UNIT_COST_PX + site.tile(t).shape[0] * site.tile(t).shape[1] for t in strip.tiles
        )

    # no cut of the 12 tiles into 2 runs has a smaller largest cost
    tiles = [site.tile(t) for t in ordered]
    costs = [UNIT_COST_PX + t.shape[0] * t.shape[1] for t in tiles]
    assert max(cost(s) for s in two) == min(
        max(sum(costs[:i]), sum(costs[i:])) for i in range(1, len(costs))
    )
    four = strips(site, 4)
    assert len(four) == 4 and sorted(t for s in four for t in s.tiles) == sorted(ordered)


def test_the_flows_sweep_each_strip_month_by_month_period_by_period():
    """The Prefect flows' task: a strip's tiles over up to `size` months, month-major
    (every tile's month, then the next month); sweeps start by first month, then strip;
    a strip's sweep follows its sweep before. Without strips (fewer tiles than workers),
    one tile a sweep, not pinned."""
    from nampo.grid import Grid
    from nampo.run.schedule import strips, sweep_before, sweeps
    from nampo.sites import Site

    grid = Grid(32651, 10.0, 700_000.0, 4_300_000.0, width=512, height=512)
    site = Site("s", "s", grid, tile_px=256)  # 2 x 2 tiles
    two = strips(site, 2)
    assert [s.tiles for s in two] == [("x00y00", "x01y00"), ("x00y01", "x01y01")]
    months = [f"2017-{m:02d}" for m in range(1, 13)] + ["2018-01"]
    units = [Unit(parse_month(m), t.id) for t in site.tiles for m in months]
    units.remove(Unit(parse_month("2017-03"), "x01y00"))  # done before: not in the plan
    got = sweeps(units, two, size=12)
    assert [s.name for s in got] == [
        "x00y00..x01y00/2017-01..2017-12", "x00y01..x01y01/2017-01..2017-12",
        "x00y00..x01y00/2018-01", "x00y01..x01y01/2018-01",
    ]  # fmt: skip
    assert [s.strip for s in got] == [two[0], two[1], two[0], two[1]]
    first = got[0].units
    assert [u.id for u in first[:5]] == [
        "x00y00/2017-01", "x01y00/2017-01", "x00y00/2017-02", "x01y00/2017-02",
        "x00y00/2017-03",
    ]  # fmt: skip
    assert all(list(s.units) == sorted(s.units, key=lambda u: u.month) for s in got)
    assert sorted(u.id for s in got for u in s.units) == sorted(u.id for u in units)
    before = sweep_before(got)
    assert [before[s] for s in got] == [None, None, got[0], got[1]]

    alone = sweeps(units, (), size=12)
    assert {s.strip for s in alone} == {None}
    # (months the units have, as chains: x01y00's 12 reach into 2018)
    assert [s.name for s in alone[:2]] == ["x00y00/2017-01..2017-12", "x01y00/2017-01..2018-01"]
    assert sweep_before(alone)[alone[4]] == alone[0]  # x00y00/2018-01 after its year
    assert sweeps([], two) == []
