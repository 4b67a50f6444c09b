"""Facility activity when read: site-wide series (vessels and ice per scene, coal per
month) from the units' partial counts, summed over the tiles, with objects cut by a tile
edge joined before the size filter; and the series said in a few sentences."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from nampo.analysis.activity.params import ActivityParams

__all__ = ["coal_series", "describe", "ice_series", "merge_objects", "vessel_series"]


def _by_month(docs: Iterable[Mapping]) -> dict[str, list[Mapping]]:
    out: dict[str, list[Mapping]] = defaultdict(list)
    for d in docs:
        out[d["month"]].append(d)
    return out


def _totals(docs: list[Mapping]) -> dict[str, dict[str, int]]:
    tot: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d in docs:
        for name, counts in d["facilities"].items():
            for k, v in counts.items():
                tot[name][k] += v
    return tot


def merge_objects(parts: list[list[list[int]]]) -> list[int]:
    """Sizes of the objects of one facility and scene, joining across tile edges.

    `parts` holds each tile's objects (``[pixels, row0, col0, row1, col1]``). Objects of
    different tiles whose boxes are at most two pixels apart (the gap a group bridges
    within a tile) are one object cut by the tile edge: within a tile, groups are whole.
    """
    return [n for n, _ in _merged(parts)]


def _merged(parts: list[list[list[int]]]) -> list[tuple[int, list[int]]]:
    """(pixels, [row0, col0, row1, col1]) of each object joined across tile edges
    (:func:`merge_objects`), largest first."""
    objs = [(t, o) for t, part in enumerate(parts) for o in part]
    parent = list(range(len(objs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (ti, a) in enumerate(objs):
        for j in range(i + 1, len(objs)):
            tj, b = objs[j]
            if (
                ti != tj
                and a[1] <= b[3] + 2
                and b[1] <= a[3] + 2
                and a[2] <= b[4] + 2
                and b[2] <= a[4] + 2
            ):
                parent[find(i)] = find(j)
    sizes: dict[int, int] = defaultdict(int)
    boxes: dict[int, list[int]] = {}
    for i, (_, o) in enumerate(objs):
        root = find(i)
        sizes[root] += o[0]
        box = boxes.get(root, o[1:5])
        boxes[root] = [min(box[0], o[1]), min(box[1], o[2]), max(box[2], o[3]), max(box[3], o[4])]
    return sorted(((sizes[r], boxes[r]) for r in sizes), key=lambda sb: -sb[0])


def _thickness(box: list[int]) -> int:
    """Pixels across the thinner side of a box (row0, col0, row1, col1)."""
    return min(box[2] - box[0], box[3] - box[1]) + 1


def vessel_series(
    docs: Iterable[Mapping],
    params: ActivityParams = ActivityParams(),  # noqa: B008 (frozen)
) -> pd.DataFrame:
    """Vessels counted per facility (with berths) and scene.

    Columns: ``date``, ``facility``, ``berth_px`` (the facility's berth pixels over all
    tiles), ``clear_share``, ``vessels`` (NaN when less than ``min_clear_share`` of the
    berths was clear, or fewer than ``min_water_px`` of them showed water: fog) and
    ``sizes`` (pixels of each vessel). A vessel is an object (joined across tiles) of
    ``min_ship_px`` to ``max_ship_px`` pixels, at least ``min_ship_width_px`` thick.
    """
    rows = []
    for docs_m in _by_month(docs).values():
        total = _totals(docs_m)
        scenes: dict[tuple[str, str], list[Mapping]] = defaultdict(list)
        for d in docs_m:
            for s in d["scenes"]:
                for name, e in s["facilities"].items():
                    if "berth_clear" in e:
                        scenes[(s["date"], name)].append(e)
        for (date, name), parts in scenes.items():
            berth_px = total[name]["berth_px"]
            share = sum(p["berth_clear"] for p in parts) / berth_px if berth_px else 0.0
            sizes = [
                n for n, box in _merged([p["objects"] for p in parts])
                if params.min_ship_px <= n <= params.max_ship_px
                and _thickness(box) >= params.min_ship_width_px
            ]  # fmt: skip
            # documents written before berth_water was stored count as showing water
            water = sum(p.get("berth_water", params.min_water_px) for p in parts)
            ok = berth_px > 0 and share >= params.min_clear_share and water >= params.min_water_px
            rows.append(
                {"date": dt.date.fromisoformat(date), "facility": name, "berth_px": berth_px,
                 "clear_share": round(share, 4), "vessels": len(sizes) if ok else np.nan,
                 "sizes": sizes if ok else []}
            )  # fmt: skip
    cols = ["date", "facility", "berth_px", "clear_share", "vessels", "sizes"]
    return pd.DataFrame(rows, columns=cols).sort_values(["date", "facility"], ignore_index=True)


def ice_series(
    docs: Iterable[Mapping],
    params: ActivityParams = ActivityParams(),  # noqa: B008 (frozen)
) -> pd.DataFrame:
    """Ice fraction of each facility's open water per scene.

    Columns: ``date``, ``facility``, ``water_px``, ``clear_share``, ``ice_fraction`` (NaN
    when less than ``min_clear_share`` of the water was clear).
    """
    rows = []
    for docs_m in _by_month(docs).values():
        total = _totals(docs_m)
        acc: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for d in docs_m:
            for s in d["scenes"]:
                for name, e in s["facilities"].items():
                    acc[(s["date"], name)][0] += e["water_clear"]
                    acc[(s["date"], name)][1] += e["ice_px"]
        for (date, name), (clear, ice) in acc.items():
            water = total[name]["water_px"]
            if not water:
                continue
            share = clear / water
            frac = ice / clear if clear and share >= params.min_clear_share else np.nan
            rows.append(
                {"date": dt.date.fromisoformat(date), "facility": name, "water_px": water,
                 "clear_share": round(share, 4), "ice_fraction": frac}
            )  # fmt: skip
    cols = ["date", "facility", "water_px", "clear_share", "ice_fraction"]
    return pd.DataFrame(rows, columns=cols).sort_values(["date", "facility"], ignore_index=True)


def coal_series(docs: Iterable[Mapping], resolution: float = 10.0) -> pd.DataFrame:
    """Coal-covered area of each facility per month (every facility; the coal yards are
    those where it is not zero).

    Columns: ``month``, ``facility``, ``area_m2`` (the outline), ``clear_share`` (of the
    outline with a clear month), ``coal_m2``.
    """
    px = resolution * resolution
    rows = []
    for month, docs_m in _by_month(docs).items():
        for name, t in _totals(docs_m).items():
            if not t["area_px"]:
                continue
            rows.append(
                {"month": dt.date.fromisoformat(month + "-01"), "facility": name,
                 "area_m2": t["area_px"] * px,
                 "clear_share": round(t["clear_month_px"] / t["area_px"], 4),
                 "coal_m2": t["coal_px"] * px}
            )  # fmt: skip
    cols = ["month", "facility", "area_m2", "clear_share", "coal_m2"]
    return pd.DataFrame(rows, columns=cols).sort_values(["month", "facility"], ignore_index=True)


def describe(docs: Iterable[Mapping], titles: Mapping[str, str] | None = None) -> list[str]:
    """The activity series in a few sentences: vessels per facility (mean per clear scene,
    per half-year), the winters' ice on the water, the coal on the yards."""
    docs = list(docs)
    titles = dict(titles or {})
    name = lambda n: titles.get(n, n.replace("_", " "))  # noqa: E731
    lines = []
    vs = vessel_series(docs).dropna(subset=["vessels"])
    for fac, g in vs.groupby("facility"):
        half = (
            pd.to_datetime(g["date"])
            .dt.to_period("Q")
            .map(lambda q: f"{q.year}H{1 + (q.quarter > 2)}")
        )
        per = g.groupby(half)["vessels"].mean()
        busiest = per.idxmax() if len(per) else "-"
        lines.append(
            f"{name(fac)}: {g['vessels'].mean():.1f} vessels per clear scene over {len(g)} "
            f"clear scenes, at most {int(g['vessels'].max())}; busiest {busiest} "
            f"({per.max():.1f} a scene), quietest {per.idxmin()} ({per.min():.1f})"
        )
    ice = ice_series(docs).dropna(subset=["ice_fraction"])
    if len(ice):
        water = ice.groupby("facility")["water_px"].max().idxmax()  # the widest water
        g = ice[ice["facility"] == water]
        frozen = g[g["ice_fraction"] >= 0.05]
        if len(frozen):
            peak = g.loc[g["ice_fraction"].idxmax()]
            lines.append(
                f"Ice on the {name(water)[:1].lower()}{name(water)[1:]}: seen in "
                f"{len(frozen)} of {len(g)} clear scenes, from "
                f"{frozen['date'].min():%d %b %Y} to {frozen['date'].max():%d %b %Y}, most "
                f"{peak['ice_fraction']:.0%} on {peak['date']:%d %b %Y}"
            )
        else:
            lines.append(f"No ice on the {name(water)} in {len(g)} clear scenes")
    coal = coal_series(docs)
    coal = coal[coal["clear_share"] >= 0.9]
    for fac, g in coal.groupby("facility"):
        if g["coal_m2"].max() < 1e4:  # a few dark pixels are not a coal yard
            continue
        top = g.loc[g["coal_m2"].idxmax()]
        lines.append(
            f"Coal at the {name(fac)[:1].lower()}{name(fac)[1:]}: {g['coal_m2'].mean() / 1e4:.1f} "
            f"ha on average over {len(g)} clear months, most {top['coal_m2'] / 1e4:.1f} ha in "
            f"{top['month']:%B %Y}"
        )
    return lines
