"""Benchmark: the cost of change dating (nampo.analysis.dating) per tile and for a whole store, and
how it grows with the length of the series.

Reads a processed store (e.g. the Nampo one written by `nampo-flows demo`), times
`detect` on one full tile for the store's series and for series 2x and 4x as long (its
first year repeated before it: the same changes in a longer history; the per-month cost
should stay flat, linear in the number of months), then
`change_map(...).compute()` over the whole site. Run:

    uv run python benchmarks/change_cost.py --store ~/.nampo/stores/nampo.zarr \
        [--first 2015-07 --last 2018-06]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nampo.analysis.dating import change_map, detect
from nampo.analysis.events import store_period
from nampo.io.store import Store
from nampo.products.variables import COMPOSITE_BANDS
from nampo.run.units import months, parse_month


def _tile_arrays(ds, tile):
    sub = ds.isel(y=slice(*tile.rows), x=slice(*tile.cols)).load()
    lc = sub["landcover"].values
    bands = np.stack([sub[b].values for b in COMPOSITE_BANDS]).astype("float32")
    return lc, bands, sub["time"].dt.month.values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--first")
    ap.add_argument("--last")
    ap.add_argument("--repeat", type=int, default=3, help="timings per case (best is kept)")
    args = ap.parse_args()
    store = Store(args.store)
    first, last = store_period(store)
    first = parse_month(args.first) if args.first else first
    last = parse_month(args.last) if args.last else last
    n_months = len(months(first, last))
    ds = store.open().sel(time=slice(np.datetime64(first, "D"), np.datetime64(last, "D")))
    site = store.site
    tile = max(site.tiles, key=lambda t: t.shape[0] * t.shape[1])
    lc, bands, moy = _tile_arrays(ds, tile)
    px = lc.shape[1] * lc.shape[2]
    print(f"store {store.url}: {n_months} months, {len(site.tiles)} tiles of up to {tile.shape}")
    print(f"{'months':>7s} {'tile s':>8s} {'us/px/month':>12s}")
    per_month = []
    for k in (1, 2, 4):
        # a longer history: the first year repeated before the series (stable months, so
        # the same changes to find in a series k times as long)
        extra = n_months * (k - 1)
        reps = max(1, -(-extra // 12))
        pre = (np.concatenate([lc[:12]] * reps)[:extra],
               np.concatenate([bands[:, :12]] * reps, axis=1)[:, :extra],
               np.tile(moy[:12], reps)[:extra])  # fmt: skip
        series = (np.concatenate([pre[0], lc]), np.concatenate([pre[1], bands], axis=1),
                  np.concatenate([pre[2], moy]))  # fmt: skip
        best = min(_timed(detect, *series) for _ in range(args.repeat))
        per_month.append(best / (n_months * k))
        print(f"{n_months * k:7d} {best:8.2f} {1e6 * best / px / (n_months * k):12.2f}")
    growth = per_month[-1] / per_month[0]
    print(f"cost per month at 4x the series / at 1x: {growth:.2f} (aim: about 1, linear)")
    t0 = time.perf_counter()
    cm = change_map(ds).compute()
    site_s = time.perf_counter() - t0
    print(
        f"whole site: {site_s:.1f} s for {len(site.tiles)} tiles "
        f"({int((cm['type'] > 0).sum())} changed pixels), on the default Dask scheduler"
    )


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
