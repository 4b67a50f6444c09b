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
