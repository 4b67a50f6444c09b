"""Render one datatake of a scenario: the ground on its date, the sky, the sensor, and the
files Earth Search would publish for it (one item per MGRS tile), plus the truth.

Order of operations, as light travels: ground reflectance on the fine grid (land cover,
texture, phenology, ice, ships) -> averaged into each band's pixels -> sub-pixel
misregistration of the scene -> cloud shadow, cloud, fog and cirrus -> residual
atmospheric error -> sensor noise -> digital numbers (with the +1000 offset from
processing baseline 04.00) -> Scene Classification from the observed reflectance.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio import features
from scipy import ndimage
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from nampo.grid import Grid
from nampo.io.cog import write_cog
from nampo.io.stac_items import RasterAsset
from nampo.scenario import spectra as sp
from nampo.scenario.layout import Layout, day_number, event_geometry, ship_polygon
from nampo.scenario.model import EventType, LandCover, MgrsTile, Scenario
from nampo.scenario.schedule import Datatake, swath_edge, tile_bounds
from nampo.scenario.sky import MTF_SIGMA_PX, Sky, correlated_noise, make_sky, noise_sigma
from nampo.scenario.stac_items import SceneMeta, build_item, item_id, processing_baseline_for

WATER, ICE, SHIP = LandCover.water.code, LandCover.ice.code, LandCover.ship.code
TEN_M = [i for i, b in enumerate(sp.BANDS) if b.resolution == 10]
TWENTY_M = [i for i, b in enumerate(sp.BANDS) if b.resolution == 20]
SIXTY_M = [i for i, b in enumerate(sp.BANDS) if b.resolution == 60]
B = sp.BAND_INDEX


@dataclass
class Context:
    """Everything a worker needs, built once per process (it is large: fine-grid rasters)."""

    scenario: Scenario
    layout: Layout
    out_dir: Path  # where files are written now (a temporary folder)
    final_dir: Path  # where the archive will live (hrefs point here)
    ice_masks: dict[str, np.ndarray] = field(default_factory=dict)  # event id -> fine mask
    # event id -> float32 rank in (0, 1) of each water pixel of the event's region in the
    # order it freezes (1 elsewhere): a peak_fraction of 0.6 freezes 60 % of that water.
    freeze_rank: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class TakeResult:
    items: list[dict]
    truth: dict
    vessels: list[dict]


def prepare(scenario: Scenario, layout: Layout, out_dir: Path, final_dir: Path) -> Context:
    ctx = Context(scenario, layout, out_dir, final_dir)
    for ev in scenario.events:
        if ev.type == EventType.seasonal_ice:
            geom = event_geometry(ev, layout.grid)
            region = features.rasterize(
                [(geom, 1)],
                out_shape=layout.fine.shape,
                transform=layout.fine.transform,
                dtype="uint8",
            ).astype(bool)
            ctx.ice_masks[ev.id] = region
            water = region & (layout.base == WATER)
            rank = np.ones(layout.fine.shape, "f4")
            if water.any():
                order = np.argsort(np.argsort(layout.freeze_key[water], kind="stable"))
                rank[water] = (order + 0.5) / water.sum()
            ctx.freeze_rank[ev.id] = rank
    return ctx


def _mmdd(s: str, year: int) -> dt.date:
    m, d = (int(x) for x in s.split("-"))
    return dt.date(year, m, min(d, 28 if m == 2 else d))


def ice_fraction(ev, date: dt.date, seed: int) -> float:
    """Share of the event's water frozen on a date: a ramp up to the winter's peak, then down."""
    if not ev.start <= date <= ev.end:
        return 0.0
    season = ev.ice
    for winter_start_year in (date.year - 1, date.year):
        freeze = _mmdd(season.freeze, winter_start_year)
        # peak and thaw fall in the next calendar year when they come before the freeze date
        peak = _mmdd(season.peak, winter_start_year + (season.peak < season.freeze))
        thaw = _mmdd(season.thaw, winter_start_year + (season.thaw < season.freeze))
        if freeze <= date <= thaw:
            strength = np.random.default_rng([seed, 4, winter_start_year]).uniform(0.6, 1.2)
            peak_frac = min(1.0, season.peak_fraction * strength)
            if date <= peak:
                f = (date - freeze).days / max(1, (peak - freeze).days)
            else:
                f = (thaw - date).days / max(1, (thaw - peak).days)
            return float(np.clip(f, 0, 1) * peak_frac)
    return 0.0


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape[0] // k, a.shape[1] // k
    return a[: h * k, : w * k].reshape(h, k, w, k).mean(axis=(1, 3), dtype="f4")


def _majority(cls: np.ndarray, k: int, strict_fill: int | None = None) -> np.ndarray:
    """The class covering most of each k x k block. Ties are broken by a fixed per-pixel
    pseudo-random priority of the classes, so that no class wins every tie (ascending code
    order would always favour water over ships and ice). With `strict_fill`, a class must
    cover more than half of the block, else the block gets `strict_fill`."""
    h, w = cls.shape[0] // k, cls.shape[1] // k
    blocks = cls.reshape(h, k, w, k)
    best = np.zeros((h, w), cls.dtype)
    best_key = np.full((h, w), -1.0, "f4")
    pixel = (np.arange(h)[:, None] * 7919 + np.arange(w)[None, :] * 104729).astype("u4")
    for code in np.unique(cls):
        n = (blocks == code).sum(axis=(1, 3), dtype="i2")
        # Count first, then a priority in [0, 1) that differs by class and pixel.
        tie = ((pixel * 2654435761 + int(code) * 40503) % 65521).astype("f4") / 65521
        key = n + tie
        take = (n > 0) & (key > best_key)
        best[take], best_key[take] = code, key[take]
    if strict_fill is not None:
        best[best_key < k * k / 2 + 1] = strict_fill
    return best


def _zoom2(a: np.ndarray) -> np.ndarray:
    return ndimage.zoom(a, 2, order=1, grid_mode=True, mode="nearest").astype("f4")


def _window(lo: float, hi: float, origin: float, res: float) -> tuple[float, float]:
    """Snap [lo, hi] inwards to the lattice of step `res` through `origin`."""
    return (
        origin + math.ceil((lo - origin) / res) * res,
        origin + math.floor((hi - origin) / res) * res,
    )


@dataclass(frozen=True)
class ItemWindow:
    """The part of the site one tile's item covers, at one resolution."""

    res: int
    x0: float
    y0: float  # north edge
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        return Affine(self.res, 0, self.x0, 0, -self.res, self.y0)

    def offset_in(self, grid: Grid) -> tuple[int, int]:
        """(row, col) of this window's corner in `grid` (same lattice)."""
        return (
            round((grid.y0 - self.y0) / grid.resolution),
            round((self.x0 - grid.x0) / grid.resolution),
        )


def item_windows(site: Grid, tile: MgrsTile) -> dict[int, ItemWindow] | None:
    txmin, tymin, txmax, tymax = tile_bounds(tile)
    sxmin, symin, sxmax, symax = site.bounds
    lo_x, hi_x = max(txmin, sxmin), min(txmax, sxmax)
    lo_y, hi_y = max(tymin, symin), min(tymax, symax)
    if hi_x - lo_x < 60 or hi_y - lo_y < 60:
        return None
    out = {}
    for res in (10, 20, 60):
        x0, x1 = _window(lo_x, hi_x, tile.x_origin, res)
        y_lo, y_hi = _window(lo_y, hi_y, tile.y_origin, res)
        out[res] = ItemWindow(res, x0, y_hi, round((x1 - x0) / res), round((y_hi - y_lo) / res))
    return out


def _valid_mask(win: ItemWindow, coverage: BaseGeometry) -> np.ndarray:
    return features.rasterize(
        [(coverage, 1)], out_shape=(win.height, win.width), transform=win.transform, dtype="uint8"
    ).astype(bool)


def _ground(ctx: Context, take: Datatake, rng):
    """Class codes on the fine grid (with ice and ships), the texture multiplier, the share
    of each pixel's alternate end-member, the vessels present, and the ice fraction."""
    lay, sc = ctx.layout, ctx.scenario
    cls = lay.classes_at(day_number(take.date))
    ice_share = math.nan
    regions = np.zeros(cls.shape, bool)
    for ev in sc.events:
        if ev.type != EventType.seasonal_ice:
            continue
        f = ice_fraction(ev, take.date, sc.seed)
        region = ctx.ice_masks[ev.id] & (cls == WATER)
        regions |= region
        if f > 0:
            cls[region & (ctx.freeze_rank[ev.id] < f + rng.normal(0, 0.02))] = ICE
    if regions.any():
        # Share of the ice events' open water that is frozen (all ice events together).
        ice_share = float((cls[regions] == ICE).mean())

    vessels, ships = [], []
    for ev in sc.events:
        if ev.type != EventType.vessel_visits or not ev.start <= take.date <= ev.end:
            continue
        berths = lay.berths[ev.facility]
        for bi in ev.berths if ev.berths is not None else range(len(berths)):
            if rng.uniform() >= ev.rate:
                continue
            length = rng.uniform(*ev.ships.length_m)
            beam = rng.uniform(*ev.ships.beam_m)
            hull = ship_polygon(berths[bi], length, beam, rng.uniform())
            if not _floats(hull, cls, lay):
                continue  # a berth over land (a pier not yet built): no ship that day
            ships.append(hull)
            lon, lat = lay.grid.to_lonlat(hull.centroid).coords[0]
            vessels.append(
                {
                    "datatake": take.id,
                    "date": take.date.isoformat(),
                    "facility": ev.facility,
                    "berth": bi,
                    "event": ev.id,
                    "length_m": round(length, 1),
                    "beam_m": round(beam, 1),
                    "lon": round(lon, 6),
                    "lat": round(lat, 6),
                }
            )
    if ships:
        hulls = features.rasterize(
            [(s, 1) for s in ships],
            out_shape=lay.fine.shape,
            transform=lay.fine.transform,
            dtype="uint8",
        ).astype(bool)
        # Ships float: they only cover water (or ice broken by their passage).
        cls[hulls & ((cls == WATER) | (cls == ICE))] = SHIP

    amp = sp.texture_table()[cls]
    mult = 1 + amp * lay.texture
    _, base, spread = sp.alternate_tables()
    share = np.clip(base[cls] + spread[cls] * lay.mix_field, 0, 1)
    return cls, mult.astype("f4"), share.astype("f4"), vessels, ice_share


def _floats(hull, cls: np.ndarray, lay: Layout) -> bool:
    """Whether at least 80 % of a ship's hull lies on water or ice on the fine grid."""
    # Rasterize in the hull's own window of the fine grid, not over the whole site.
    fine = lay.fine
    xmin, ymin, xmax, ymax = hull.bounds
    c0 = max(0, math.floor((xmin - fine.x0) / fine.resolution))
    c1 = min(fine.width, math.ceil((xmax - fine.x0) / fine.resolution))
    r0 = max(0, math.floor((fine.y0 - ymax) / fine.resolution))
    r1 = min(fine.height, math.ceil((fine.y0 - ymin) / fine.resolution))
    if c1 <= c0 or r1 <= r0:
        return False
    inside = features.rasterize(
        [(hull, 1)],
        out_shape=(r1 - r0, c1 - c0),
        transform=fine.transform * Affine.translation(c0, r0),
        dtype="uint8",
        all_touched=False,
    ).astype(bool)
    under = cls[r0:r1, c0:c1][inside]
    return under.size > 0 and ((under == WATER) | (under == ICE)).mean() >= 0.8


def _scl(refl20: dict[str, np.ndarray], sky: Sky, valid: np.ndarray) -> np.ndarray:
    """Scene Classification from what the sensor saw, with Sen2Cor-like tests: clouds by
    opacity and brightness (bright roofs and tanks get flagged too, as in real SCL),
    thin cirrus, shadows, snow/ice by NDSI, water, vegetation, dark features."""
    blue, green, red = refl20["blue"], refl20["green"], refl20["red"]
    nir, swir = refl20["nir08"], refl20["swir16"]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-4)
    ndsi = (green - swir) / np.maximum(green + swir, 1e-4)
    scl = np.full(blue.shape, sp.SCL_NOT_VEGETATED, "u1")
    scl[ndvi > 0.35] = sp.SCL_VEGETATION
    dark = (np.maximum.reduce([blue, green, red, nir]) < 0.075) & (ndvi < 0.25)
    scl[dark] = sp.SCL_DARK
    water = (nir < 0.07) & (ndvi < 0.0) & (ndsi > 0.2)
    scl[water] = sp.SCL_WATER
    scl[(ndsi > 0.42) & (green > 0.2)] = sp.SCL_SNOW_ICE
    scl[(sky.shadow > 0.45) & (sky.cloud < 0.3)] = sp.SCL_CLOUD_SHADOW
    scl[(sky.cirrus >= 0.08) & (sky.cloud < 0.3)] = sp.SCL_CIRRUS
    bright = (blue > 0.33) & (ndsi < 0.4)
    scl[((sky.cloud >= 0.3) & (sky.cloud < 0.6)) | (bright & (sky.cloud < 0.6))] = (
        sp.SCL_CLOUD_MEDIUM
    )
    scl[sky.cloud >= 0.6] = sp.SCL_CLOUD_HIGH
    scl[~valid] = sp.SCL_NO_DATA
    return scl


def render_datatake(ctx: Context, take: Datatake) -> TakeResult:
    sc, lay = ctx.scenario, ctx.layout
    site, fine = lay.grid, lay.fine
    g20 = site.coarsen(2)
    rng = np.random.default_rng([sc.seed, 10, take.index])
    baseline = processing_baseline_for(take.date)
    dn_offset = 1000 if baseline >= "04.00" else 0

    cls, mult, share, vessels, ice_share = _ground(ctx, take, rng)
    alt_table, _, _ = sp.alternate_tables()
    doy = take.date.timetuple().tm_yday
    table = sp.class_table(sp.greenness(doy + rng.normal(0, 4), sc.climate.phenology))
    turbidity = float(rng.lognormal(0, 0.18))  # sediment load of the estuary varies by day
    table[WATER] *= turbidity
    alt_table[WATER] *= turbidity
    # Day-to-day variation of each class (moisture, sun angle), on both end-members.
    day_factor = (1 + rng.normal(0, 0.03, size=(table.shape[0], 1))).astype("f4")
    table *= day_factor
    alt_table *= day_factor
    sky = make_sky(rng, take, sc.climate, g20.shape, len(sp.BANDS))

    # Misregistration: whole-scene sub-pixel shift; worse before the 2021 geometric refinement.
    sigma_px = 0.3 if baseline < "03.00" else 0.1
    shift10 = rng.normal(0, sigma_px, size=2)

    sky10 = {k: _zoom2(getattr(sky, k)) for k in ("cloud", "cirrus", "shadow", "haze")}
    sky20 = {k: getattr(sky, k) for k in ("cloud", "cirrus", "shadow", "haze")}
    wl = np.array([b.wavelength_nm for b in sp.BANDS], "f4")

    def observe(
        ground: np.ndarray, bi: int, s: dict[str, np.ndarray], shift: np.ndarray
    ) -> np.ndarray:
        ground = ndimage.gaussian_filter(ground, MTF_SIGMA_PX, mode="nearest")
        ground = ndimage.shift(ground, shift, order=1, mode="nearest")
        lit = ground * (1 - s["shadow"] * (1 - sp.SHADOW_KEEP[bi]))
        top = (1 - s["cloud"]) * lit + s["cloud"] * sp.CLOUD[bi] + s["cirrus"] * sp.CIRRUS[bi]
        top = top * sky.gain + sky.offsets[bi] + s["haze"] * 0.012 * (490 / wl[bi]) ** 1.5
        res = sp.BANDS[bi].resolution
        return (top + correlated_noise(rng, top.shape) * noise_sigma(top, res)).astype("f4")

    refl10: dict[int, np.ndarray] = {}
    refl20: dict[int, np.ndarray] = {}
    fine60: dict[int, np.ndarray] = {}
    for bi, band in enumerate(sp.BANDS):
        ground_fine = ((1 - share) * table[cls, bi] + share * alt_table[cls, bi]) * mult
        if band.resolution == 10:
            refl10[bi] = observe(_block_mean(ground_fine, 2), bi, sky10, shift10)
        elif band.resolution == 20:
            refl20[bi] = observe(_block_mean(ground_fine, 4), bi, sky20, shift10 / 2)
        else:
            fine60[bi] = ground_fine  # averaged per tile lattice below
    # SCL needs visible bands at 20 m: average the observed 10 m bands.
    vis20 = {b: _block_mean(refl10[B[b]], 2) for b in ("blue", "green", "red")}

    coverage = swath_edge(sc, take) or box(*site.bounds)
    items, item_ids = [], []
    site_valid10 = np.zeros(site.shape, bool)
    for tile in sc.acquisitions.tiles:
        wins = item_windows(site, tile)
        if wins is None:
            continue
        tile_cov = coverage.intersection(box(*tile_bounds(tile)))
        if tile_cov.area < 0.005 * site.footprint.area:
            continue  # the datatake barely touches this tile's part of the site
        meta_id = item_id(
            SceneMeta(
                take.platform,
                tile.code,
                take.datetime,
                site.epsg,
                site.to_lonlat(tile_cov),
                0.0,
                {},
                baseline,
                take.relative_orbit,
                take.absolute_orbit,
                take.sun_azimuth,
                take.sun_elevation,
            )
        )
        item_dir = ctx.out_dir / "items" / meta_id
        item_dir.mkdir(parents=True, exist_ok=True)
        assets: list[RasterAsset] = []

        def emit(
            key: str,
            name: str,
            data: np.ndarray,
            win: ItemWindow,
            resampling: str,
            item_dir: Path = item_dir,
            assets: list = assets,
            meta_id: str = meta_id,
        ) -> None:
            path = item_dir / f"{name}.tif"
            write_cog(path, data, win.transform, site.epsg, nodata=0, resampling=resampling)
            assets.append(
                RasterAsset(
                    key,
                    ctx.final_dir / "items" / meta_id / path.name,
                    tuple(data.shape[-2:]),
                    win.transform,
                )
            )

        def crop(a: np.ndarray, win: ItemWindow, grid: Grid) -> np.ndarray:
            r, c = win.offset_in(grid)
            return a[r : r + win.height, c : c + win.width]

        valid = {res: _valid_mask(w, tile_cov) for res, w in wins.items()}
        r10, c10 = wins[10].offset_in(site)
        site_valid10[r10 : r10 + wins[10].height, c10 : c10 + wins[10].width] |= valid[10]

        def to_dn(refl: np.ndarray, ok: np.ndarray) -> np.ndarray:
            dn = np.clip(np.rint(refl * 10000) + dn_offset, 1, 65535).astype("u2")
            dn[~ok] = 0
            return dn

        for bi, band in enumerate(sp.BANDS):
            res = band.resolution
            win = wins[res]
            if res == 10:
                data = crop(refl10[bi], win, site)
            elif res == 20:
                data = crop(refl20[bi], win, g20)
            else:
                rf, cf = win.offset_in(fine)
                k = 60 // int(fine.resolution)
                ground = _block_mean(
                    fine60[bi][rf : rf + win.height * k, cf : cf + win.width * k], k
                )
                r20, c20 = win.offset_in(g20)
                s60 = {
                    n: _block_mean(a[r20 : r20 + win.height * 3, c20 : c20 + win.width * 3], 3)
                    for n, a in sky20.items()
                }
                data = observe(ground, bi, s60, shift10 / 6)
            emit(band.key, band.name, to_dn(data, valid[res]), win, "average")

        w20 = wins[20]
        refl20_named = {b: crop(vis20[b], w20, g20) for b in vis20}
        refl20_named.update({sp.BANDS[i].key: crop(refl20[i], w20, g20) for i in TWENTY_M})
        sky_crop = Sky(
            **{
                **sky.__dict__,
                **{n: crop(getattr(sky, n), w20, g20) for n in ("cloud", "cirrus", "shadow")},
            }
        )
        scl = _scl(refl20_named, sky_crop, valid[20])
        emit("scl", "SCL", scl, w20, "nearest")
        aot = np.clip(np.rint(crop(sky.aot, w20, g20) * 1000), 1, 65535).astype("u2")
        wvp = np.clip(np.rint(crop(sky.wvp, w20, g20) * 1000), 1, 65535).astype("u2")
        aot[~valid[20]] = 0
        wvp[~valid[20]] = 0
        emit("aot", "AOT", aot, w20, "average")
        emit("wvp", "WVP", wvp, w20, "average")
        rgb = np.stack([crop(refl10[B[k]], wins[10], site) for k in ("red", "green", "blue")])
        tci = np.clip(np.rint(rgb * 10000 * 255 / 2000), 1, 255).astype("u1")
        tci[:, ~valid[10]] = 0
        emit("visual", "TCI", tci, wins[10], "average")

        n_valid = int(valid[20].sum())
        counts = np.bincount(scl[valid[20]], minlength=12) if n_valid else np.zeros(12, int)
        pct = {
            key: round(100 * float(counts[code]) / max(n_valid, 1), 6)
            for code, key in sp.SCL_PERCENT_KEYS.items()
        }
        pct["nodata_pixel"] = round(100 * (1 - n_valid / valid[20].size), 6)
        cloud_pct = pct["medium_proba_clouds"] + pct["high_proba_clouds"] + pct["thin_cirrus"]
        meta = SceneMeta(
            take.platform,
            tile.code,
            take.datetime,
            site.epsg,
            site.to_lonlat(tile_cov),
            round(cloud_pct, 6),
            pct,
            baseline,
            take.relative_orbit,
            take.absolute_orbit,
            take.sun_azimuth,
            take.sun_elevation,
        )
        items.append(build_item(meta, assets))
        item_ids.append(meta_id)

    truth = _truth(ctx, take, cls, sky10, site_valid10, vessels, ice_share, item_ids)
    return TakeResult(items, truth, vessels)


def _truth(
    ctx: Context,
    take: Datatake,
    cls: np.ndarray,
    sky10: dict[str, np.ndarray],
    valid10: np.ndarray,
    vessels: list[dict],
    ice_share: float,
    item_ids: list[str],
) -> dict:
    """Write the datatake's truth raster and return its row of the scenes table."""
    site = ctx.layout.grid
    cls10 = _majority(cls, 2)
    cloud = np.rint(sky10["cloud"] * 100).astype("u1")
    shadow = np.rint(sky10["shadow"] * 100).astype("u1")
    stack = np.stack(
        [np.where(valid10, cls10, 0).astype("u1"), cloud, shadow, valid10.astype("u1")]
    )
    path = ctx.out_dir / "truth" / "scenes" / f"{take.id}.tif"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_cog(path, stack, site.transform, site.epsg, nodata=None, resampling="nearest")
    n_valid = int(valid10.sum())
    row = {
        "datatake": take.id,
        "datetime": take.datetime.isoformat().replace("+00:00", "Z"),
        "date": take.date.isoformat(),
        "platform": take.platform,
        "items": " ".join(item_ids),
        "valid_fraction": round(n_valid / valid10.size, 4),
        "cloud_fraction": round(
            float((sky10["cloud"][valid10] >= 0.3).mean()) if n_valid else math.nan, 4
        ),
        "shadow_fraction": round(
            float((sky10["shadow"][valid10] >= 0.45).mean()) if n_valid else math.nan, 4
        ),
        "cirrus": bool((sky10["cirrus"] >= 0.08).any()),
        "ice_fraction": None if math.isnan(ice_share) else round(ice_share, 4),
        "sun_azimuth": round(take.sun_azimuth, 2),
        "sun_elevation": round(take.sun_elevation, 2),
    }
    for name in ctx.layout.berths:
        if ctx.layout.berths[name]:
            row[f"vessels_{name}"] = sum(v["facility"] == name for v in vessels)
    return row
