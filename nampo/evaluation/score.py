"""Score events against a scenario archive's ground truth (``truth/events.geojson`` and
``truth/events.tif``): recall, precision, timing and area errors, per type and overall.
The matching rules, on the truth's 10 m grid: ``docs/change.md``, "Score". The activity
series are scored by :mod:`nampo.evaluation.activity_score`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from scipy import ndimage
from shapely.geometry import shape

__all__ = [
    "ASSIGN_SHARE",
    "DETECT_SHARE",
    "EXPECTED_TYPE",
    "MIN_AREA_M2",
    "NOT_LAND",
    "Match",
    "Score",
    "TruthEvent",
    "read_truth",
    "score",
]

ASSIGN_SHARE = 0.3
"""A product event is assigned to the truth event it overlaps most when the overlap is at
least this share of its own pixels or of the truth event's."""
DETECT_SHARE = 0.25
"""A truth event is detected when its assigned events cover this share of its pixels."""
MIN_AREA_M2 = 2000.0
"""Recall and precision count events of at least this area."""
NOT_LAND = ("vessel_visits", "seasonal_ice")
"""Scenario event types that are not land-cover change (scored as activity)."""
EXPECTED_TYPE = {
    "drainage": "drainage",
    "reclamation": "reclamation",
    "pier": "reclamation",
    "construction": "construction",
    "storage": "construction",
    "equipment": "construction",
    "coal_cover": "coal_cover",
    "coal_removed": "coal_removed",
    "new_tank": "new_tank",
    "demolition": "demolition",
}
"""The product type (:data:`nampo.analysis.dating.TYPES`) each scenario event type should get."""
EPOCH = dt.date(1970, 1, 1)


@dataclass
class TruthEvent:
    """One land-cover event of a scenario's truth."""

    number: int
    """Its number in ``events.tif`` band 1."""
    id: str
    """Its id in ``events.geojson``."""
    type: str
    """Scenario event type (``pier``, ``storage``...; :data:`EXPECTED_TYPE`)."""
    pixels: int
    """Pixels ``events.tif`` gives it (0: sub-pixel)."""
    area_m2: float
    """Its pixels' area."""
    date: dt.date | None
    """Median day of change of its pixels (None: sub-pixel)."""
    geometry: object
    """Outline, shapely, in lon/lat."""


@dataclass
class Match:
    """A truth event and the product events assigned to it."""

    truth: TruthEvent
    events: list[tuple[dict, int]] = field(default_factory=list)
    """Product events assigned to it, with their overlap in pixels."""

    @property
    def covered(self) -> int:
        return sum(n for _, n in self.events)

    @property
    def detected(self) -> bool:
        return self.truth.pixels > 0 and self.covered >= DETECT_SHARE * self.truth.pixels

    def _weighted_median(self, values: Sequence[float]) -> float:
        w = np.array([n for _, n in self.events], float)
        order = np.argsort(values)
        cum = np.cumsum(w[order])
        return float(np.asarray(values)[order][np.searchsorted(cum, cum[-1] / 2)])

    @property
    def timing_error_days(self) -> float | None:
        if not self.detected or self.truth.date is None:
            return None
        days = [(_date(e["date"]) - EPOCH).days for e, _ in self.events]
        return abs(self._weighted_median(days) - (self.truth.date - EPOCH).days)

    @property
    def area_error_pct(self) -> float | None:
        if not self.detected:
            return None
        area = sum(e["area_m2"] for e, _ in self.events)
        return 100 * abs(area - self.truth.area_m2) / self.truth.area_m2

    @property
    def product_type(self) -> str | None:
        votes: dict[str, int] = defaultdict(int)
        for e, n in self.events:
            votes[e["type"]] += n
        return max(votes, key=lambda k: votes[k]) if votes else None


@dataclass
class Score:
    """The result of :func:`score`: per truth event its match, per product event its
    assignment; :meth:`rows`, :meth:`to_dict` and :meth:`format` summarise them."""

    matches: list[Match]
    """One per truth event with pixels."""
    events: list[dict]
    """The product events scored."""
    assigned: list[int | None]
    """Per product event: the number of the truth event it is assigned to, or None."""
    subpixel_claims: list[str]
    """Ids of sub-pixel truth events that a product event touches."""
    min_area: float = MIN_AREA_M2
    """Events smaller than this (m²) are left out of :meth:`rows`."""

    def rows(self) -> list[dict]:
        """One row per truth type, per product type (precision) and overall."""
        big = [m for m in self.matches if m.truth.area_m2 >= self.min_area]
        big_ev = [
            (e, a) for e, a in zip(self.events, self.assigned, strict=True)
            if e["area_m2"] >= self.min_area
        ]  # fmt: skip
        kinds = sorted({_kind(m) for m in big} | {e["type"] for e, _ in big_ev})
        out = [_row("overall", big, big_ev)]
        for k in kinds:
            out.append(
                _row(
                    k,
                    [m for m in big if _kind(m) == k],
                    [(e, a) for e, a in big_ev if e["type"] == k],
                )
            )
        return out

    def to_dict(self) -> dict:
        return {
            "min_area_m2": self.min_area,
            "rows": self.rows(),
            "truth_events": [
                {
                    "id": m.truth.id,
                    "type": m.truth.type,
                    "area_m2": m.truth.area_m2,
                    "date": m.truth.date.isoformat() if m.truth.date else None,
                    "detected": m.detected,
                    "covered_share": round(m.covered / max(m.truth.pixels, 1), 3),
                    "events": [e["id"] for e, _ in m.events],
                    "product_type": m.product_type,
                    "type_ok": m.product_type == EXPECTED_TYPE.get(m.truth.type),
                    "timing_error_days": m.timing_error_days,
                    "area_error_pct": _round(m.area_error_pct),
                }
                for m in self.matches
            ],
            "false_events": [
                e["id"] for e, a in zip(self.events, self.assigned, strict=True) if a is None
            ],
            "subpixel_claims": self.subpixel_claims,
        }

    def format(self) -> str:
        head = (
            f"{'type':14s} {'truth':>5s} {'found':>5s} {'recall':>6s} {'events':>6s} "
            f"{'true':>5s} {'precis.':>7s} {'timing d':>8s} {'area %':>6s} {'type ok':>7s}"
        )
        lines = [f"events of at least {self.min_area:,.0f} m2", head]
        for r in self.rows():
            lines.append(
                f"{r['type']:14s} {r['truth']:5d} {r['detected']:5d} {_f(r['recall'], 6)} "
                f"{r['events']:6d} {r['true_events']:5d} {_f(r['precision'], 7)} "
                f"{_f(r['median_timing_error_days'], 8, 0)} {_f(r['median_area_error_pct'], 6, 0)} "
                f"{_f(r['type_agreement'], 7)}"
            )
        missed = [m.truth.id for m in self.matches if m.truth.area_m2 >= self.min_area
                  and not m.detected]  # fmt: skip
        false = [
            f"{e['id']} ({e['type']}, {e['area_m2']:,.0f} m2)"
            for e, a in zip(self.events, self.assigned, strict=True)
            if a is None and e["area_m2"] >= self.min_area
        ]
        lines.append(f"missed: {', '.join(missed) or 'none'}")
        lines.append(f"false events: {', '.join(false) or 'none'}")
        lines.append(f"sub-pixel truth claimed: {', '.join(self.subpixel_claims) or 'none'}")
        return "\n".join(lines)


def _kind(m: Match) -> str:
    """The product type a truth event is counted under (``pier`` under ``reclamation``)."""
    return EXPECTED_TYPE.get(m.truth.type, m.truth.type)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _f(v: float | None, width: int, digits: int = 2) -> str:
    return f"{'-':>{width}s}" if v is None else f"{v:{width}.{digits}f}"


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def _row(name: str, matches: list[Match], events: list[tuple[dict, int | None]]) -> dict:
    det = [m for m in matches if m.detected]
    true_ev = sum(a is not None for _, a in events)
    timing = [m.timing_error_days for m in det if m.timing_error_days is not None]
    typed = [m.product_type == EXPECTED_TYPE.get(m.truth.type) for m in det]
    return {
        "type": name,
        "truth": len(matches),
        "detected": len(det),
        "recall": len(det) / len(matches) if matches else None,
        "events": len(events),
        "true_events": true_ev,
        "precision": true_ev / len(events) if events else None,
        "median_timing_error_days": _median(timing),
        "median_area_error_pct": _median(
            [e for m in det if (e := m.area_error_pct) is not None]  # all, when detected
        ),
        "type_agreement": float(np.mean(typed)) if typed else None,
    }


def _date(v) -> dt.date:
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10])


def read_truth(archive: Path) -> tuple[list[TruthEvent], dict]:
    """An archive's land-cover truth events, and its grid (``events.tif`` profile)."""
    archive = Path(archive)
    features = json.loads((archive / "truth" / "events.geojson").read_text())["features"]
    with rasterio.open(archive / "truth" / "events.tif") as src:
        number, day = src.read(1), src.read(2)
        profile = {"transform": src.transform, "crs": src.crs, "shape": (src.height, src.width)}
    res = abs(profile["transform"].a)
    out = []
    for f in features:
        p = f["properties"]
        if p["type"] in NOT_LAND:
            continue
        mask = number == p["number"]
        n = int(mask.sum())
        date = EPOCH + dt.timedelta(days=int(np.median(day[mask]))) if n else None
        out.append(
            TruthEvent(p["number"], p["id"], p["type"], n, n * res * res, date,
                       shape(f["geometry"]))
        )  # fmt: skip
    profile["number"] = number
    return out, profile


def score(
    events: list[dict],
    archive: Path,
    min_area: float = MIN_AREA_M2,
    period: tuple[dt.date, dt.date] | None = None,
) -> Score:
    """Score product events (dicts with ``id``, ``type``, ``area_m2``, ``date`` and a
    lon/lat shapely ``geometry``, as :func:`nampo.analysis.events.read_geojson` or
    ``Event.properties()`` give them) against an archive's truth.

    period : when given, only truth events whose median day of change lies in it count.

    Examples
    --------
    >>> s = score(read_geojson("events.geojson"), archive_path)  # doctest: +SKIP
    >>> print(s.format())  # doctest: +SKIP
    """
    truth, profile = read_truth(archive)
    if period is not None:
        truth = [t for t in truth if t.date is None or period[0] <= t.date <= period[1]]
    number = profile["number"]
    to_grid = Transformer.from_crs(4326, profile["crs"], always_xy=True).transform
    subpixel = [t for t in truth if t.pixels == 0]
    claims = set()
    assigned: list[int | None] = []
    matches = {t.number: Match(t) for t in truth if t.pixels > 0}
    # mixed pixels along a truth event's edge change with it: assignment looks one pixel
    # beyond the truth's pixels (coverage and areas do not)
    near = np.where(number > 0, number, ndimage.grey_dilation(number, size=(3, 3)))
    for e in events:
        geom = shapely.transform(e["geometry"], to_grid, interleaved=False)
        mask = rasterize(
            [(geom, 1)], out_shape=profile["shape"], transform=profile["transform"], dtype="uint8"
        ).astype(bool)
        for t in subpixel:
            if e["geometry"].intersects(t.geometry):
                claims.add(t.id)
        hits = np.bincount(near[mask], minlength=1)
        hits[0] = 0
        best, n = int(hits.argmax()), int(hits.max())
        size = max(int(mask.sum()), 1)
        m = matches.get(best)
        if (
            n > 0
            and m is not None
            and (n >= ASSIGN_SHARE * size or n >= ASSIGN_SHARE * m.truth.pixels)
        ):
            m.events.append((e, int((number[mask] == best).sum())))
            assigned.append(best)
        else:
            assigned.append(None)
    return Score(list(matches.values()), list(events), assigned, sorted(claims), min_area)
