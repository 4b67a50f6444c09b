"""Score events against a scenario archive's ground truth (``truth/events.geojson`` and
``truth/events.tif``): recall, precision, timing and area errors, per type and overall.

The matching rules (``docs/change.md``), on the truth's 10 m grid:

- a truth event's pixels are those ``events.tif`` gives its number (more than half of the
  pixel is the event's and no later event covers it); its area is their count times the
  pixel area, its date the median of their days of change. Only land-cover events count
  (not ``vessel_visits`` or ``seasonal_ice``); one without pixels (smaller than a pixel,
  the fourth crane) is *sub-pixel*: any product event touching its outline is a claim
  the product cannot make, reported as ``subpixel_claims``;
- each product event is rasterised (pixel centres) and *assigned* to the truth event it
  overlaps most, when that overlap is at least :data:`ASSIGN_SHARE` of its own pixels or
  of the truth event's; otherwise it is a false event. Overlap here counts the truth
  event's pixels and the ring of pixels around them (one pixel, 10 m): the mixed pixels
  along a new pier or roof change with it, and are not a false event;
- a truth event is *detected* when the product events assigned to it cover at least
  :data:`DETECT_SHARE` of its pixels;
- per type, truth events count under the product type their type maps to
  (:data:`EXPECTED_TYPE`: a ``pier`` under ``reclamation``), product events under their own;
- recall: detected truth events of at least ``min_area`` m² over all of them; precision:
  assigned product events of at least ``min_area`` m² over all of them;
- timing error of a detected event: days between the overlap-weighted median date of its
  product events and the truth's median day of change; area error: the summed area of its
  product events against the truth area, in percent;
- type agreement: the overlap-weighted majority type of its product events equals the
  product type the truth type maps to (:data:`EXPECTED_TYPE`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from scipy import ndimage
from shapely.geometry import shape

ASSIGN_SHARE = 0.3
DETECT_SHARE = 0.25
MIN_AREA_M2 = 2000.0
NOT_LAND = ("vessel_visits", "seasonal_ice")
EXPECTED_TYPE = {
    "drainage": "drainage",
    "reclamation": "reclamation",
    "pier": "reclamation",
    "construction": "construction",
    "storage": "construction",
    "equipment": "construction",
    "coal_cover": "coal_cover",
    "new_tank": "new_tank",
    "demolition": "demolition",
}
"""The product type (:data:`nampo.analysis.dating.TYPES`) each scenario event type should get."""
EPOCH = dt.date(1970, 1, 1)


@dataclass
class TruthEvent:
    number: int
    id: str
    type: str
    pixels: int
    area_m2: float
    date: dt.date | None
    geometry: object  # lon/lat


@dataclass
class Match:
    truth: TruthEvent
    events: list[tuple[dict, int]] = field(default_factory=list)
    """Product events assigned to it, with their overlap in pixels."""

    @property
    def covered(self) -> int:
        return sum(n for _, n in self.events)

    @property
    def detected(self) -> bool:
        return self.truth.pixels > 0 and self.covered >= DETECT_SHARE * self.truth.pixels

    def _weighted_median(self, values: list[float]) -> float:
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
        return max(votes, key=votes.get) if votes else None


@dataclass
class Score:
    matches: list[Match]
    events: list[dict]
    assigned: list[int | None]
    """Per product event: the number of the truth event it is assigned to, or None."""
    subpixel_claims: list[str]
    """Ids of sub-pixel truth events that a product event touches."""
    min_area: float = MIN_AREA_M2

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
        "median_area_error_pct": _median([m.area_error_pct for m in det]),
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


# --------------------------------------------------------------------------------------
# Activity: vessel counts and ice fractions per scene (truth/scenes.csv)


@dataclass
class ActivityScore:
    """Vessel-count and ice-fraction errors of a store's activity series against an
    archive's ``truth/scenes.csv``.

    Matching rules (``docs/change.md``): a truth datatake and a product scene match by
    their day of acquisition (UTC). Vessels: every (scene, facility) pair with berths whose
    product count is known, i.e. at least ``min_clear_share`` of the facility's berth
    pixels were clear (:func:`nampo.analysis.activity.vessel_series`); the truth counts every ship
    drawn, so a ship the product could not see under a cloud is not held against it only
    because the scene does not count, never because the ship is left out. Ice: the scenes
    whose facility water is clear enough, for the facility of each ``seasonal_ice`` truth
    event, against the truth's frozen share of that event's open water.
    """

    vessels: list[dict]
    """Per matched (date, facility): ``product``, ``truth``."""
    ice: list[dict]
    """Per matched (date, facility): ``product``, ``truth`` (fractions)."""

    def vessel_rows(self) -> list[dict]:
        by: dict[str, list[dict]] = defaultdict(list)
        for v in self.vessels:
            by[v["facility"]].append(v)
        rows = [_mae_row("overall", self.vessels)]
        rows += [_mae_row(name, by[name]) for name in sorted(by)]
        return rows

    @property
    def ice_mae(self) -> float | None:
        errs = [abs(i["product"] - i["truth"]) for i in self.ice]
        return float(np.mean(errs)) if errs else None

    def to_dict(self) -> dict:
        return {
            "vessels": self.vessel_rows(),
            "ice": {"scenes": len(self.ice), "mean_abs_error": _round3(self.ice_mae)},
        }

    def format(self) -> str:
        head = f"{'facility':20s} {'scenes':>6s} {'truth':>6s} {'found':>6s} {'MAE':>6s}"
        lines = ["vessels per facility per clear scene", head]
        for r in self.vessel_rows():
            lines.append(
                f"{r['facility']:20s} {r['scenes']:6d} {_f(r['truth_mean'], 6)} "
                f"{_f(r['product_mean'], 6)} {_f(r['mean_abs_error'], 6)}"
            )
        ice = self.ice_mae
        lines.append(
            f"ice fraction of the harbour water: {len(self.ice)} clear scenes, mean absolute "
            f"error {'-' if ice is None else f'{ice:.3f}'}"
        )
        return "\n".join(lines)


def _round3(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _mae_row(name: str, matched: list[dict]) -> dict:
    errs = [abs(v["product"] - v["truth"]) for v in matched]
    return {
        "facility": name,
        "scenes": len(matched),
        "truth_mean": _round3(float(np.mean([v["truth"] for v in matched]))) if matched else None,
        "product_mean": _round3(float(np.mean([v["product"] for v in matched])))
        if matched
        else None,
        "mean_abs_error": _round3(float(np.mean(errs))) if errs else None,
    }


def score_activity(docs, archive: Path, params=None) -> ActivityScore:
    """Score a store's activity documents (:meth:`nampo.io.store.Store.activity`) against an
    archive's per-scene truth.

    Examples
    --------
    >>> print(score_activity(store.activity(), archive_path).format())  # doctest: +SKIP
    """
    import csv

    from nampo.analysis.activity import ActivityParams, ice_series, vessel_series

    params = params or ActivityParams()
    docs = list(docs)
    archive = Path(archive)
    with open(archive / "truth" / "scenes.csv", newline="") as f:
        scenes = list(csv.DictReader(f))
    features = json.loads((archive / "truth" / "events.geojson").read_text())["features"]
    ice_facilities = {
        f["properties"]["facility"] for f in features
        if f["properties"]["type"] == "seasonal_ice" and f["properties"].get("facility")
    }  # fmt: skip
    counted = {
        (r.date, r.facility): r.vessels
        for r in vessel_series(docs, params).itertuples()
        if not np.isnan(r.vessels)
    }
    frozen = {
        (r.date, r.facility): r.ice_fraction
        for r in ice_series(docs, params).itertuples()
        if not np.isnan(r.ice_fraction)
    }
    vessels, ice = [], []
    for row in scenes:
        day = dt.date.fromisoformat(row["date"])
        for key, value in row.items():
            if key.startswith("vessels_") and (day, key[8:]) in counted:
                found = counted[(day, key[8:])]
                vessels.append(
                    {"date": day.isoformat(), "facility": key[8:], "product": int(found),
                     "truth": int(value)}
                )  # fmt: skip
        if row.get("ice_fraction") not in (None, ""):
            for name in sorted(ice_facilities):
                if (day, name) in frozen:
                    ice.append(
                        {"date": day.isoformat(), "facility": name,
                         "product": float(frozen[(day, name)]),
                         "truth": float(row["ice_fraction"])}
                    )  # fmt: skip
    return ActivityScore(vessels, ice)
