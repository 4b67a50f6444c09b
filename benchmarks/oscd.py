"""Benchmark: nampo's before/after change on the eight real OSCD cities, against their labels,
side by side with the naive change-vector baseline computed in the same run.

Every city goes through the normal pipeline, as any site would:

1. ``nampo.io.importer.import_scenes``: its two scene folders (``imgs_1``, ``imgs_2``, EPSG:4326
   GeoTIFFs) become COGs and ``sentinel-2-l1c`` items, loaded into a local STAC API
   (PostgreSQL + pgstac, started in a temporary folder and stopped at the end);
2. ``Site.from_outline``: the site from the city's GeoJSON outline (UTM grid, 10 m), with
   the month of the first date as its baseline;
3. ``execute.process`` over the month of the second date, with the catalog search on the
   ``sentinel-2-l1c`` collection: cube (reprojected onto the site grid), composites and
   change metrics written to a Zarr store;
4. the change products from the store: ``before_after.store_pair_change`` (nampo) and the
   naive baseline, the store's ``cva_base`` (change-vector magnitude over B02, B03, B04,
   B08, B11, B12 between the two dates) above its mean + 2 standard deviations.

The labels (``cm/<city>-cm.tif``, on the pixels of ``imgs_1`` from its top-left corner)
are georeferenced with ``imgs_1``'s B02 transform and reprojected onto the site grid
(nearest neighbour); pixels are scored where the label exists and both dates have data.

A second table checks what tuning on labels could add, without letting a city's labels
choose its own parameters: for each city, the (``smooth_px``, ``k``) of a small grid that
scores the best pooled F1 on the *other seven* cities is applied to it (leave-one-city-out,
from the same stores), beside the fixed defaults.

A third column is a logistic model over ``before_after.pair_features`` fitted
leave-one-city-out: for each city, scikit-learn's ``LogisticRegression`` on the other seven
cities' pixels (all changed pixels, 30,000 sampled unchanged ones per city weighted to stand
for all of them), its log-odds threshold the one with the best pooled F1 on those seven;
the city's own labels never touch its model. No coefficients are kept or shipped.

A fourth column, the ensemble, averages that logistic model's log-odds with those of
scikit-learn's ``HistGradientBoostingClassifier`` fitted on the same pixels (BOOSTED), takes
their mean over 3 x 3 valid pixels (rule 4 for the models) and calls a pixel changed above
the site's mean plus ``k`` standard deviations of that score (like rule 5), ``k`` the one of
ENSEMBLE_K with the best pooled F1 on the other seven cities. This design was chosen after
comparing about fifteen variants by their pooled leave-one-city-out F1 (docs/change.md says
which), so its pooled figure is not a blind one.

``--nested`` gives the blind figure for that choice: for each held-out city, each design of
NESTED_VARIANTS (fixed before the nested run) is scored leave-one-city-out on the other seven
cities alone (fitted on six, thresholds chosen on those six, scored on the seventh), and the
one with the best pooled F1 there is fitted on the seven and scores the city. Fits depend
only on their training cities, so one pair of fits per training set (28 of six cities, 8 of
seven) serves every variant; the logistic and ensemble columns then come from the same
seven-city fits.

``--bag K`` bags each model over K samplings of the unchanged pixels (seeds 0 .. K-1): the
logistic model's log-odds are the mean of K fits' (its threshold chosen on that mean), the
boosting model's likewise, so a fit depends less on its one sample. K=1 (the default) is the
one fit with seed 0 (as before the option existed).

The first column is the rules without their cloud test (``cloud_min_px=0``: the method as
it was before rule 0), so that what the cloud test changes shows in the same run.

Only OSCD's file layout (``dates.txt``, folder names, the label file) is known here; the
library runs the cities with the same code and parameters as any other site.

Run (about a minute a city on 2 cores)::

    uv run python benchmarks/oscd.py                      # all eight cities
    uv run python benchmarks/oscd.py --cities paris bercy
    uv run python benchmarks/oscd.py --cache /tmp/oscd     # keep each city's arrays ...
    uv run python benchmarks/oscd.py --cache /tmp/oscd --from-cache   # ... and re-score them
    uv run python benchmarks/oscd.py --cache /tmp/oscd --from-cache --nested   # + nested choice
    uv run python benchmarks/oscd.py --cache /tmp/oscd --from-cache --nested --bag 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from rasterio.warp import Resampling, reproject

from nampo.analysis.before_after import (
    LinearModel,
    PairParams,
    local_mean,
    model_change,
    pair_change,
    pair_features,
)
from nampo.io.importer import SceneFiles, import_scenes
from nampo.io.store import Store
from nampo.products.variables import COMPOSITE_BANDS
from nampo.run.execute import process
from nampo.run.plan import CatalogSpec
from nampo.services import pgstac
from nampo.sites import Site

REPO = Path(__file__).resolve().parent.parent
OSCD = REPO.parent / "shared" / "data" / "oscd"
CITIES = ("aguasclaras", "bercy", "bordeaux", "cupertino", "nantes", "paris", "pisa", "saclay_e")
NAIVE_K = 2.0
"""The naive baseline's threshold: mean + 2 standard deviations (as the issue defines it)."""
TILE_PX = 256
MODEL_THRESHOLDS = np.arange(-4.0, 2.01, 0.25)
"""Log-odds thresholds the leave-one-city-out model chooses from (on its training cities)."""
NEGATIVES_PER_CITY = 30000
"""Unchanged pixels sampled per training city (all its changed pixels are used), each
weighted to stand for the city's unchanged pixels."""
BOOSTED = {"max_iter": 150, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 200}
"""The gradient-boosting model of the ensemble (scikit-learn's defaults but 150 trees and
leaves of at least 200 training pixels)."""
ENSEMBLE_SMOOTH_PX = 3
"""The ensemble's log-odds are averaged over 3 x 3 pixels before the threshold."""
ENSEMBLE_K = np.arange(0.5, 8.01, 0.25)
"""Site-relative thresholds (the site's mean plus k standard deviations of the ensemble's
smoothed log-odds) the ensemble chooses k from, on its training cities."""
LOCO_GRID = [(s, k) for s in (1, 3, 5) for k in (2.0, 2.5, 3.0)]
"""(smooth_px, k) pairs the leave-one-city-out check chooses from."""


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Counts) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def counts(pred: np.ndarray, truth: np.ndarray, scored: np.ndarray) -> Counts:
    p, t = pred & scored, truth & scored
    return Counts(int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum()))


def dates(city_dir: Path) -> tuple[dt.date, dt.date]:
    found = {}
    for line in (city_dir / "dates.txt").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip():
            found[key.strip()] = dt.datetime.strptime(value.strip(), "%Y%m%d").date()
    return found["date_1"], found["date_2"]


def city_site(city: str, city_dir: Path, first: dt.date) -> Site:
    outline = json.loads((city_dir / f"{city}.geojson").read_text())
    return Site.from_outline(city, outline, baseline=(first, first), tile_px=TILE_PX)


def label_on_grid(city: str, city_dir: Path, site: Site) -> tuple[np.ndarray, np.ndarray]:
    """(changed, known) on the site grid: the label reprojected from imgs_1's pixels."""
    with rasterio.open(city_dir / "cm" / f"{city}-cm.tif") as src:
        label = src.read(1)
    [b02] = glob.glob(str(city_dir / "imgs_1" / "*_B02.tif"))
    with rasterio.open(b02) as ref:
        transform, crs = ref.transform, ref.crs
    out = np.zeros(site.grid.shape, dtype="uint8")  # 0: outside the label
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reproject(
            label,
            out,
            src_transform=transform,
            src_crs=crs,
            src_nodata=0,
            dst_transform=site.grid.transform,
            dst_crs=site.grid.crs,
            dst_nodata=0,
            resampling=Resampling.nearest,
        )
    return out == 2, out > 0


def run_city(city: str, endpoint, work: Path) -> dict:
    """The city through import, the STAC API and the pipeline: the two dates' composites from
    the store, the naive baseline's ``cva_base`` and the labels, all on the site grid."""
    city_dir = OSCD / city
    first, second = dates(city_dir)
    t0 = time.perf_counter()
    scenes = [
        SceneFiles(city_dir / "imgs_1", dt.datetime.combine(first, dt.time(), dt.UTC)),
        SceneFiles(city_dir / "imgs_2", dt.datetime.combine(second, dt.time(), dt.UTC)),
    ]
    archive = import_scenes(city, scenes, work / "archives" / city)
    pgstac.load(endpoint, archive.path)
    site = city_site(city, city_dir, first)
    store = Store(work / "stores" / f"{city}.zarr")
    spec = CatalogSpec("local", endpoint.url, collection="sentinel-2-l1c")
    month = second.replace(day=1)
    report = process(site, month, month, store=store, spec=spec)
    if report.failed:
        raise RuntimeError(f"{city}: units failed: {[(r.unit_id, r.error) for r in report.failed]}")
    ds = store.open()
    now = ds[list(COMPOSITE_BANDS)].sel(time=f"{month:%Y-%m}").isel(time=0)
    changed, known = label_on_grid(city, city_dir, site)
    g = site.grid
    return {
        "city": city,
        "dates": (first.isoformat(), second.isoformat()),
        "grid": f"EPSG:{g.epsg} {g.width}x{g.height} px",
        "seconds": time.perf_counter() - t0,
        "before": np.stack([ds[f"base_{b}"].values for b in COMPOSITE_BANDS]),
        "after": np.stack([now[b].values for b in COMPOSITE_BANDS]),
        "y": ds["y"].values,
        "x": ds["x"].values,
        "cva": ds["cva_base"].sel(time=f"{month:%Y-%m}").isel(time=0).values,
        "changed": changed,
        "known": known,
    }


def save_city(data: dict, path: Path) -> None:
    arrays = {k: v for k, v in data.items() if isinstance(v, np.ndarray)}
    meta = {k: v for k, v in data.items() if not isinstance(v, np.ndarray)}
    np.savez_compressed(path, meta=json.dumps(meta), **arrays)


def load_city(path: Path) -> dict:
    with np.load(path) as f:
        data = {k: f[k] for k in f.files if k != "meta"}
        data.update(json.loads(str(f["meta"])))
    return data


def composites(data: dict) -> tuple[xr.Dataset, xr.Dataset]:
    coords = {"y": data["y"], "x": data["x"]}
    return tuple(
        xr.Dataset(
            {b: (("y", "x"), data[key][i]) for i, b in enumerate(COMPOSITE_BANDS)}, coords=coords
        )
        for key in ("before", "after")
    )


def score_city(data: dict, params: PairParams) -> dict:
    """nampo's and the naive baseline's counts on one city's arrays."""
    before, after = composites(data)
    cva = data["cva"]
    valid = np.isfinite(cva)
    naive = valid & (cva > np.nanmean(cva) + NAIVE_K * np.nanstd(cva))
    changed, scored = data["changed"], data["known"] & valid
    ours = pair_change(before, after, params)
    blind = pair_change(before, after, replace(params, cloud_min_px=0))  # the last version
    grid_counts = {}
    for smooth, k in LOCO_GRID:
        other = replace(params, smooth_px=smooth, k=k)
        found = pair_change(before, after, other)["change"].values
        grid_counts[(smooth, k)] = counts(found, changed, scored)
    return {
        "loco_grid": grid_counts,
        "city": data["city"],
        "dates": data["dates"],
        "grid": data["grid"],
        "seconds": data["seconds"],
        "ours": counts(ours["change"].values, changed, scored),
        "blind": counts(blind["change"].values, changed, scored),
        "obscured": int((ours["obscured"].values & scored).sum()),
        "naive": counts(naive, changed, scored),
        "pixels": int(scored.sum()),
        "changed": int((changed & scored).sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cities", nargs="+", default=list(CITIES), choices=CITIES)
    parser.add_argument(
        "--cache",
        type=Path,
        help="folder for each city's store arrays (<city>.npz): written after the pipeline ran",
    )
    parser.add_argument(
        "--no-model",
        dest="model",
        action="store_false",
        help="skip the logistic model fitted leave-one-city-out (it needs scikit-learn)",
    )
    parser.add_argument(
        "--from-cache",
        action="store_true",
        help="score the cached arrays instead of running the pipeline (for trying variants)",
    )
    parser.add_argument(
        "--nested",
        action="store_true",
        help="also choose the model design by nested leave-one-city-out (36 pairs of fits; "
        "with --cache, each pair's counts are kept in <cache>/nested/ and reused)",
    )
    parser.add_argument(
        "--bag",
        type=int,
        default=1,
        metavar="K",
        help="bag each model over K samplings of the unchanged pixels (seeds 0 .. K-1): the "
        "mean of K fits' log-odds (default 1: one fit, seed 0)",
    )
    args = parser.parse_args(argv)
    if args.bag < 1:
        parser.error("--bag needs K >= 1")
    if args.nested and not args.model:
        parser.error("--nested needs the models")
    if not OSCD.is_dir():
        print(f"no OSCD data at {OSCD}", file=sys.stderr)
        return 2
    params = PairParams()
    print(f"nampo before/after change ({params}) vs naive CVA (mean + {NAIVE_K:g} std)")
    if args.from_cache:
        if args.cache is None:
            parser.error("--from-cache needs --cache")
        cities = [load_city(args.cache / f"{city}.npz") for city in args.cities]
    else:
        cities = run_cities(args.cities, args.cache)
    rows = []
    for data in cities:
        rows.append(score_city(data, params))
        print(_line(rows[-1]), flush=True)
    if args.nested and len(cities) > 2:
        # the outer fits are the ones add_model_rows would make (same pixels, same seed)
        nested_rows(cities, rows, args.cache, args.bag)
        for row in rows:
            row["model"] = row["loco_variants"]["logit"]
            row["ensemble"] = row["loco_variants"]["ensmb 3x3 site"]
    elif args.model and len(cities) > 2:
        add_model_rows(cities, rows, args.bag)
    pooled = {"blind": Counts(), "ours": Counts(), "naive": Counts()}
    if args.model:
        pooled["model"] = Counts()
        pooled["ensemble"] = Counts()
    for row in rows:
        for key in pooled:
            pooled[key].add(row[key])
    print(_table(rows, pooled))
    if len(rows) > 1:
        print(_loco(rows, pooled))
    if "nested" in rows[0]:
        print(_nested(rows))
        pooled["nested"] = Counts()
        for row in rows:
            pooled["nested"].add(row["nested"])
    for key, name in (
        ("ours", "nampo (rules)"),
        ("model", "LOCO logistic model"),
        ("ensemble", "LOCO ensemble"),
        ("nested", "nested LOCO choice of design"),
    ):
        if key not in pooled:
            continue
        below = [r["city"] for r in rows if r[key].f1 < r["naive"].f1]
        f1 = pooled[key].f1
        print(
            f"aims, {name}: pooled F1 >= 0.40: {'met' if f1 >= 0.40 else 'NOT met'} ({f1:.3f}); "
            f"no city below the naive baseline: {'met' if not below else 'NOT met ' + str(below)}"
        )
    return 0


def run_cities(names: list[str], cache: Path | None) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory(prefix="nampo-oscd-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        state = work / "stac"
        endpoint = pgstac.start(state)
        try:
            for city in names:
                data = run_city(city, endpoint, work)
                if cache is not None:
                    cache.mkdir(parents=True, exist_ok=True)
                    save_city(data, cache / f"{city}.npz")
                print(f"  {city}: pipeline {data['seconds']:.0f} s", flush=True)
                out.append(data)
        finally:
            pgstac.stop(state)
    return out


def training_pixels(train: list[dict], seed: int = 0):
    """(names, x, y, weight) of the training cities: all their changed pixels and
    NEGATIVES_PER_CITY sampled unchanged ones per city, weighted to stand for all of them."""
    rng = np.random.default_rng(seed)
    xs, ys, ws = [], [], []
    for data in train:
        names, feats, ok = data["features"]
        x, y = feats[:, ok].T, data["changed"][ok]
        pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
        neg = rng.choice(neg, min(NEGATIVES_PER_CITY, len(neg)), replace=False)
        xs.append(x[np.r_[pos, neg]])
        ys.append(y[np.r_[pos, neg]])
        ws.append(np.r_[np.ones(len(pos)), np.full(len(neg), (~y).sum() / len(neg))])
    return names, np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)


def fit_logistic(train: list[dict], seed: int) -> LinearModel:
    """Logistic regression on the training cities' pixels (pair_features) sampled with
    ``seed``; no threshold."""
    from sklearn.linear_model import LogisticRegression

    names, x, y, w = training_pixels(train, seed)
    mean, scale = x.mean(0), x.std(0) + 1e-9
    fitted = LogisticRegression(C=1e-3, max_iter=2000).fit((x - mean) / scale, y, sample_weight=w)
    return LinearModel(
        names=tuple(names),
        coef=tuple(float(c) for c in fitted.coef_[0]),
        intercept=float(fitted.intercept_[0]),
        mean=tuple(float(m) for m in mean),
        scale=tuple(float(s) for s in scale),
    )


def mean_model(models: list[LinearModel]) -> LinearModel:
    """The one linear model whose log-odds are the mean of ``models``' log-odds (exactly,
    up to rounding: each is linear in the features), centred and scaled by their mean centre
    and scale."""
    if len(models) == 1:
        return models[0]
    mean = np.mean([m.mean for m in models], axis=0)
    scale = np.mean([m.scale for m in models], axis=0)
    # per model: b + sum c (f - m) / s = b + sum c (M - m) / s + sum (c S / s) (f - M) / S
    coef = np.mean([np.asarray(m.coef) * scale / m.scale for m in models], axis=0)
    intercept = np.mean(
        [m.intercept + np.sum(np.asarray(m.coef) * (mean - m.mean) / m.scale) for m in models]
    )
    return LinearModel(
        names=models[0].names,
        coef=tuple(float(c) for c in coef),
        intercept=float(intercept),
        mean=tuple(float(m) for m in mean),
        scale=tuple(float(s) for s in scale),
    )


def fit_model(train: list[dict], seeds: int = 1) -> LinearModel:
    """Logistic regression on the training cities' pixels (pair_features), bagged over the
    sampling seeds 0 .. seeds - 1 (the mean of the fits' log-odds), its threshold the one of
    MODEL_THRESHOLDS with the best pooled F1 of those mean log-odds over the same cities."""
    model = mean_model([fit_logistic(train, seed) for seed in range(seeds)])
    odds = [(model.log_odds(*d["features"][:2]), d) for d in train]

    def pooled_f1(t: float) -> float:
        c = Counts()
        for lo, d in odds:
            ok = d["features"][2]
            c.add(counts(ok & (lo > t), d["changed"], d["scored"]))
        return c.f1

    return replace(model, threshold=float(max(MODEL_THRESHOLDS, key=pooled_f1)))


def fit_boosted(train: list[dict], seeds: int = 1):
    """scikit-learn's histogram gradient boosting on the same training pixels as the
    logistic model (BOOSTED trees, equal total weight per pixel class as there), bagged over
    the sampling seeds 0 .. seeds - 1 like it (seed s also seeds the fit)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    fits = []
    for seed in range(seeds):
        _, x, y, w = training_pixels(train, seed)
        model = HistGradientBoostingClassifier(**BOOSTED, random_state=seed)
        fits.append(model.fit(x, y, sample_weight=w / w.mean()))
    return fits[0] if seeds == 1 else Bagged(fits)


@dataclass(frozen=True)
class Bagged:
    """Fitted classifiers as one: the mean of their log-odds (``decision_function``)."""

    fits: list

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return np.mean([f.decision_function(x) for f in self.fits], axis=0)


def ensemble_score(data: dict, linear: LinearModel, boosted) -> np.ndarray:
    """The mean of the two models' log-odds, averaged over ENSEMBLE_SMOOTH_PX x
    ENSEMBLE_SMOOTH_PX valid pixels (rule 4 for the models); NaN where not valid."""
    names, feats, ok = data["features"]
    odds = linear.log_odds(names, feats)
    odds[ok] = (odds[ok] + boosted.decision_function(feats[:, ok].T)) / 2
    smooth = local_mean(odds, ENSEMBLE_SMOOTH_PX, ok)
    return np.where(ok, smooth, np.nan)


def site_threshold(score: np.ndarray, k: float) -> np.ndarray:
    """Changed where the score is above the site's mean plus k standard deviations."""
    values = score[np.isfinite(score)]
    with np.errstate(invalid="ignore"):
        return score > values.mean() + k * values.std()


def add_model_rows(cities: list[dict], rows: list[dict], bag: int = 1) -> None:
    """Each city scored by models fitted on the other cities (leave-one-city-out): the
    logistic model alone (``model``) and its ensemble with gradient boosting (``ensemble``,
    the site-relative k chosen on the other cities); each model bagged over ``bag`` seeds."""
    for data in cities:
        before, after = composites(data)
        data["features"] = pair_features(before, after)
        data["scored"] = data["known"] & np.isfinite(data["cva"])
    for data, row in zip(cities, rows, strict=True):
        train = [d for d in cities if d is not data]
        model = fit_model(train, bag)
        before, after = composites(data)
        found = model_change(before, after, model)["change"].values
        row["model"] = counts(found, data["changed"], data["scored"])
        row["fitted"] = model
        boosted = fit_boosted(train, bag)
        scores = [(ensemble_score(d, model, boosted), d) for d in train]

        def pooled_f1(k: float, scores=scores) -> float:
            c = Counts()
            for score, d in scores:
                c.add(counts(site_threshold(score, k), d["changed"], d["scored"]))
            return c.f1

        k = float(max(ENSEMBLE_K, key=pooled_f1))
        found = site_threshold(ensemble_score(data, model, boosted), k)
        row["ensemble"] = counts(found, data["changed"], data["scored"])
        row["ensemble_k"] = k
        print(f"  {data['city']}: models fitted on the other cities (ensemble k {k:g})", flush=True)


@dataclass(frozen=True)
class Variant:
    """A way of turning the two models' log-odds into a mask: which log-odds (``logit``,
    ``boost`` or ``both``, their mean), averaged over ``smooth_px`` x ``smooth_px`` valid
    pixels (1: none), thresholded either at a log-odds of MODEL_THRESHOLDS (global) or at the
    site's mean plus k standard deviations, k of ENSEMBLE_K (site-relative)."""

    name: str
    models: str
    smooth_px: int
    site_relative: bool


NESTED_VARIANTS = (
    Variant("logit", "logit", 1, False),
    Variant("logit 3x3", "logit", 3, False),
    Variant("logit 5x5", "logit", 5, False),
    Variant("boost 3x3 site", "boost", 3, True),
    Variant("ensmb 3x3 global", "both", 3, False),
    Variant("ensmb 3x3 site", "both", 3, True),
)
"""The designs the nested selection chooses from: the ones the last session compared by
their pooled leave-one-city-out F1 (docs/change.md), fixed before the nested run."""


def threshold_counts(score: np.ndarray, data: dict, thresholds: np.ndarray) -> np.ndarray:
    """(tp, fp, fn) of ``score > t`` on the city's scored pixels, for each t: (len(t), 3).
    NaN scores are never changed (as ``counts`` on a mask that is False there)."""
    scored = data["scored"]
    positives = int((data["changed"] & scored).sum())
    keep = scored & np.isfinite(score)
    order = np.argsort(score[keep], kind="stable")
    values, labels = score[keep][order], data["changed"][keep][order]
    # tp_above[i]: changed pixels among values[i:]
    tp_above = np.r_[np.cumsum(labels[::-1])[::-1], 0]
    first = np.searchsorted(values, thresholds, side="right")  # values[first:] > t
    tp = tp_above[first]
    fp = (len(values) - first) - tp
    return np.stack([tp, fp, positives - tp], axis=1).astype("int64")


def fold_counts(
    cities: list[dict], left_out: tuple[str, ...], bag: int = 1
) -> dict[str, np.ndarray]:
    """Both models fitted once on the cities not in ``left_out`` (as add_model_rows fits
    them, bagged over ``bag`` seeds), every variant's (tp, fp, fn) per threshold on every
    city: {variant: (cities, thresholds, 3)}. The post-processing does not touch the fits, so
    one pair of fits serves all variants."""
    train = [d for d in cities if d["city"] not in left_out]
    linear, boosted = fit_model(train, bag), fit_boosted(train, bag)
    out = {v.name: [] for v in NESTED_VARIANTS}
    for data in cities:
        names, feats, ok = data["features"]
        logit = np.where(ok, linear.log_odds(names, feats), np.nan)
        boost = np.full(ok.shape, np.nan)
        boost[ok] = boosted.decision_function(feats[:, ok].T)
        raw = {"logit": logit, "boost": boost, "both": (logit + boost) / 2}
        for v in NESTED_VARIANTS:
            score = raw[v.models]
            if v.smooth_px > 1:
                score = np.where(ok, local_mean(score, v.smooth_px, ok), np.nan)
            if v.site_relative:
                values = score[np.isfinite(score)]
                thresholds = values.mean() + ENSEMBLE_K * values.std()
            else:
                thresholds = MODEL_THRESHOLDS
            out[v.name].append(threshold_counts(score, data, thresholds))
    return {name: np.stack(per_city) for name, per_city in out.items()}


def _f1(tp, fp, fn):
    return np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def held_out(folds: dict, names: list[str], left_out: tuple[str, ...], variant: str, city: str):
    """The (tp, fp, fn) on ``city`` of the variant fitted without ``left_out``, its threshold
    the one with the best pooled F1 on the fit's own training cities (in-sample)."""
    table = folds[left_out][variant]
    train = [i for i, n in enumerate(names) if n not in left_out]
    pooled = table[train].sum(axis=0)
    best = int(np.argmax(_f1(*pooled.T)))  # the first of equals, as max() in fit_model
    return Counts(*(int(v) for v in table[names.index(city), best]))


def nested_rows(cities: list[dict], rows: list[dict], cache: Path | None, bag: int = 1) -> None:
    """Nested leave-one-city-out selection of the design: for each held-out city c, each
    variant of NESTED_VARIANTS scored leave-one-city-out on the other seven cities only
    (fitted on six, thresholds chosen on those six, scored on the seventh, pooled over the
    seven), the best one fitted on the seven and scored on c. c's labels choose nothing.
    Every fit is bagged over ``bag`` seeds; with a cache, the counts of each training set are
    kept in ``<cache>/nested/`` (bag 1) or ``<cache>/nested-bag<K>/``, each file holding its
    ``bag`` too, so that counts of one bag are never taken for another's."""
    for data in cities:
        if "features" not in data:
            before, after = composites(data)
            data["features"] = pair_features(before, after)
            data["scored"] = data["known"] & np.isfinite(data["cva"])
    names = [d["city"] for d in cities]
    folds: dict[tuple[str, ...], dict] = {}

    def fold(left_out: tuple[str, ...]) -> dict:
        left_out = tuple(sorted(left_out))
        if left_out not in folds:
            folder = "nested" if bag == 1 else f"nested-bag{bag}"
            path = cache / folder / f"{'+'.join(left_out)}.npz" if cache else None
            if path is not None and path.exists():
                with np.load(path) as f:
                    found = int(f["bag"]) if "bag" in f.files else 1  # older files: one fit
                    if found != bag:
                        raise ValueError(f"{path} holds counts of bag {found}, not {bag}")
                    folds[left_out] = {v.name: f[v.name] for v in NESTED_VARIANTS}
            else:
                t0 = time.perf_counter()
                folds[left_out] = fold_counts(cities, left_out, bag)
                if path is not None:  # whole or not at all: a later run trusts what it finds
                    path.parent.mkdir(parents=True, exist_ok=True)
                    part = path.with_name(path.stem + ".part.npz")
                    np.savez(part, bag=np.int64(bag), **folds[left_out])
                    part.replace(path)
                print(f"    fits without {left_out}: {time.perf_counter() - t0:.0f} s", flush=True)
        return folds[left_out]

    for data, row in zip(cities, rows, strict=True):
        c = data["city"]
        inner = {}
        for v in NESTED_VARIANTS:
            total = Counts()
            for j in names:
                if j != c:
                    fold((c, j))
                    total.add(held_out(folds, names, tuple(sorted((c, j))), v.name, j))
            inner[v.name] = total.f1
        chosen = max(inner, key=inner.get)  # the first of equals
        fold((c,))
        row["nested"] = held_out(folds, names, (c,), chosen, c)
        row["nested_choice"] = chosen
        row["nested_inner"] = inner
        row["loco_variants"] = {
            v.name: held_out(folds, names, (c,), v.name, c) for v in NESTED_VARIANTS
        }
        print(
            f"  {c}: nested choice {chosen!r} (inner pooled F1 "
            + ", ".join(f"{k} {f:.3f}" for k, f in inner.items())
            + f"), F1 {row['nested'].f1:.3f}",
            flush=True,
        )


def _nested(rows: list[dict]) -> str:
    lines = [
        "\nnested leave-one-city-out choice of the design among "
        + ", ".join(v.name for v in NESTED_VARIANTS)
    ]
    cols = f"{'R':>5} {'F1':>5}"
    head = f"{'city':<12} | {'chosen':<16} | {'nested P':>8} {cols} | {'naive P':>7} {cols}"
    lines += [head, "-" * len(head)]
    total, naive = Counts(), Counts()
    for row in rows:
        n, b = row["nested"], row["naive"]
        total.add(n)
        naive.add(b)
        lines.append(
            f"{row['city']:<12} | {row['nested_choice']:<16} | {n.precision:8.3f} {n.recall:5.3f} "
            f"{n.f1:5.3f} | {b.precision:7.3f} {b.recall:5.3f} {b.f1:5.3f}"
        )
    lines.append(
        f"{'pooled':<12} | {'':<16} | {total.precision:8.3f} {total.recall:5.3f} {total.f1:5.3f} "
        f"| {naive.precision:7.3f} {naive.recall:5.3f} {naive.f1:5.3f}"
    )
    lines.append(
        "\nnot nested (each variant's plain leave-one-city-out F1, design chosen on all eight):"
    )
    for v in NESTED_VARIANTS:
        c = Counts()
        for row in rows:
            c.add(row["loco_variants"][v.name])
        per_city = " ".join(f"{row['loco_variants'][v.name].f1:.3f}" for row in rows)
        lines.append(f"  {v.name:<16} pooled F1 {c.f1:.3f}  (per city {per_city})")
    return "\n".join(lines)


def _loco(rows: list[dict], pooled: dict) -> str:
    """Each city scored with the grid's parameters that are best on the other cities."""
    lines = ["\nleave-one-city-out (smooth_px, k) from " + str(LOCO_GRID)]
    total = Counts()
    for row in rows:

        def f1_without(key, city=row["city"]) -> float:
            c = Counts()
            for other in rows:
                if other["city"] != city:
                    c.add(other["loco_grid"][key])
            return c.f1

        best = max(LOCO_GRID, key=f1_without)
        got = row["loco_grid"][best]
        total.add(got)
        lines.append(
            f"{row['city']:<12} chosen {best}: F1 {got.f1:.3f} "
            f"(defaults {row['ours'].f1:.3f}, naive {row['naive'].f1:.3f})"
        )
    lines.append(
        f"{'pooled':<12} F1 {total.f1:.3f} (P {total.precision:.3f}, R {total.recall:.3f}; "
        f"defaults {pooled['ours'].f1:.3f}, naive {pooled['naive'].f1:.3f})"
    )
    return "\n".join(lines)


def _line(row: dict) -> str:
    return (
        f"  {row['city']:<12} {row['dates'][0]} -> {row['dates'][1]}  {row['grid']}  "
        f"{row['changed']} of {row['pixels']} px changed, {row['obscured']} obscured  "
        f"{row['seconds']:.0f} s"
    )


def _table(rows: list[dict], pooled: dict) -> str:
    keys = [k for k in ("blind", "ours", "model", "ensemble", "naive") if k in pooled]
    title = {
        "blind": "nocld P",
        "ours": "rules P",
        "model": "logit P",
        "ensemble": "ensmb P",
        "naive": "naive P",
    }
    head = f"\n{'city':<12} | " + " | ".join(f"{title[k]:>7} {'R':>5} {'F1':>5}" for k in keys)
    lines = [head, "-" * len(head.strip())]

    def cells(c: Counts) -> str:
        return f"{c.precision:7.3f} {c.recall:5.3f} {c.f1:5.3f}"

    for row in rows:
        lines.append(f"{row['city']:<12} | " + " | ".join(cells(row[k]) for k in keys))
    lines.append(f"{'pooled':<12} | " + " | ".join(cells(pooled[k]) for k in keys))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
