"""Score a store's activity series (vessel counts and ice fractions per scene) against a
scenario archive's ``truth/scenes.csv``. The matching rules: ``docs/change.md``, "Score"."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nampo.analysis.activity import ActivityParams, ice_series, vessel_series

__all__ = ["ActivityScore", "score_activity"]


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


def _f(v: float | None, width: int, digits: int = 2) -> str:
    return f"{'-':>{width}s}" if v is None else f"{v:{width}.{digits}f}"
