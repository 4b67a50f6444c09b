"""A store's units against today's product: complete, stale (written by an older product
version) or missing, per month and tile (``nampo store status``; ``docs/store.md``)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from nampo.io.store import Store
from nampo.products.version import PRODUCT_VERSION, record_version
from nampo.run.units import BaselineUnit, Unit, months, unit_from_id

__all__ = ["StoreStatus", "store_status"]

States = dict[str, str]
"""Tile id -> ``complete``, ``stale`` or ``missing``."""


@dataclass
class StoreStatus:
    url: str
    site: str
    tiles: tuple[str, ...]
    version: int
    """The product version of this code."""
    versions: Counter = field(default_factory=Counter)
    """How many complete units each product version wrote."""
    baselines: States = field(default_factory=dict)
    months: dict[dt.date, States] = field(default_factory=dict)

    def count(self, state: str) -> int:
        every = [self.baselines, *self.months.values()]
        return sum(1 for states in every for s in states.values() if s == state)

    def units(self, state: str) -> list[str]:
        out = [BaselineUnit(t).id for t, s in self.baselines.items() if s == state]
        for m, states in self.months.items():
            out += [Unit(m, t).id for t, s in states.items() if s == state]
        return out

    def to_dict(self) -> dict:
        return {
            "store": self.url,
            "site": self.site,
            "product_version": self.version,
            "versions": {str(k): v for k, v in sorted(self.versions.items())},
            "baselines": self.baselines,
            "months": {f"{m:%Y-%m}": s for m, s in self.months.items()},
            "complete": self.count("complete"),
            "stale": self.count("stale"),
            "missing": self.count("missing"),
        }

    def format(self) -> str:
        v = ", ".join(f"v{k}: {n}" for k, n in sorted(self.versions.items())) or "none"
        lines = [
            f"store {self.url}: site {self.site}, {len(self.tiles)} tiles",
            f"product version {self.version}; complete units by version: {v}",
            "",
            f"{'':<9} {'complete':>8} {'stale':>6} {'missing':>8}",
        ]
        rows = [("baseline", self.baselines)] + [(f"{m:%Y-%m}", s) for m, s in self.months.items()]
        for label, states in rows:
            c = Counter(states.values())
            odd = [f"{s} {t}" for t, s in states.items() if s != "complete"]
            note = ("  " + ", ".join(odd)) if odd and len(odd) <= 6 else ""
            if odd and len(odd) > 6:
                note = f"  ({len(odd)} tiles)"
            lines.append(f"{label:<9} {c['complete']:>8} {c['stale']:>6} {c['missing']:>8}{note}")
        lines.append(
            f"total: {self.count('complete')} complete, {self.count('stale')} stale, "
            f"{self.count('missing')} missing"
        )
        if self.count("stale"):
            lines.append(
                "stale units are recomputed by a backfill or monitoring run over their "
                "months (policy stale=recompute, the default)"
            )
        return "\n".join(lines)


def store_status(
    store: Store, first: dt.date | None = None, last: dt.date | None = None
) -> StoreStatus:
    """The state of every unit of `store` from `first` to `last` (default: the months
    between its first and last complete month)."""
    site = store.site
    tiles = tuple(t.id for t in site.tiles)
    records = store.records()
    state = {
        uid: "stale" if record_version(r) < PRODUCT_VERSION else "complete"
        for uid, r in records.items()
    }
    status = StoreStatus(store.url, site.name, tiles, PRODUCT_VERSION)
    status.versions = Counter(record_version(r) for r in records.values())
    status.baselines = {t: state.get(BaselineUnit(t).id, "missing") for t in tiles}
    done_months = sorted(u.month for u in map(unit_from_id, records) if isinstance(u, Unit))
    first = first or (done_months[0] if done_months else None)
    last = last or (done_months[-1] if done_months else None)
    if first is not None and last is not None:
        for m in months(first, last):
            status.months[m] = {t: state.get(Unit(m, t).id, "missing") for t in tiles}
    return status
