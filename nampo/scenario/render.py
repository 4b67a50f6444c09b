"""Render one datatake of a scenario: the ground on its date, the sky, the sensor, and the
files Earth Search would publish for it (one item per MGRS tile), plus the truth.

Order of operations, as light travels: ground reflectance on the fine grid (land cover,
texture, phenology, ice, ships) -> averaged into each band's pixels -> sub-pixel
misregistration of the scene -> cloud shadow, cloud, fog and cirrus -> residual
atmospheric error -> sensor noise -> digital numbers (with the +1000 offset from
processing baseline 04.00) -> Scene Classification from the observed reflectance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasterio import features
from scipy import ndimage
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from nampo.grid import Grid
from nampo.io.cog import write_cog
from nampo.io.scenes import S2_BOA_OFFSET
from nampo.io.stac_format import REFLECTANCE_SCALE
from nampo.io.stac_items import RasterAsset
from nampo.scenario import spectra as sp
from nampo.scenario.day_tables import day_tables
from nampo.scenario.ground import Ground, ground
from nampo.scenario.layout import Layout, event_geometry
from nampo.scenario.model import EventType, LandCover, MgrsTile, Scenario
from nampo.scenario.schedule import Datatake, swath_edge, tile_bounds
from nampo.scenario.sky import MTF_SIGMA_PX, Sky, correlated_noise, make_sky, noise_sigma
from nampo.scenario.stac_items import (
    SceneMeta,
    boa_offset_applies,
    build_item,
    item_id,
    processing_baseline_for,
)
from nampo.scenario.windows import (
    ItemWindow,
    block_mean,
    crop,
    item_windows,
    majority,
    valid_mask,
    zoom2,
)

__all__ = ["Context", "TakeResult", "prepare", "render_datatake"]

WATER = LandCover.water.code
TWENTY_M = [i for i, b in enumerate(sp.BANDS) if b.resolution == 20]
B = sp.BAND_INDEX
DN_OFFSET = round(-S2_BOA_OFFSET / REFLECTANCE_SCALE)
"""ESA's BOA_ADD_OFFSET in digital numbers (+1000) of baselines from 04.00."""
SKY_LAYERS = ("cloud", "cirrus", "shadow", "haze")


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


@dataclass
class _Take:
    """One datatake's state between the rendering steps."""

    take: Datatake
    rng: np.random.Generator
    baseline: str
    ground: Ground
    sky: Sky
    shift10: np.ndarray
    """Whole-scene misregistration in 10 m pixels (rows, cols)."""
    sky10: dict[str, np.ndarray]
    sky20: dict[str, np.ndarray]
    wavelengths: np.ndarray
    refl10: dict[int, np.ndarray] = field(default_factory=dict)
    """Observed reflectance of the 10 m bands on the site grid, by band index."""
    refl20: dict[int, np.ndarray] = field(default_factory=dict)
    """Observed reflectance of the 20 m bands on the 20 m grid."""
    fine60: dict[int, np.ndarray] = field(default_factory=dict)
    """Ground reflectance of the 60 m bands on the fine grid (observed per tile)."""
    vis20: dict[str, np.ndarray] = field(default_factory=dict)
    """The observed visible 10 m bands averaged to 20 m (for the SCL), by band key."""


def render_datatake(ctx: Context, take: Datatake) -> TakeResult:
    """Render `take`: its items' COGs, its items, and its row of the truth."""
    site = ctx.layout.grid
    state = _begin(ctx, take)
    coverage = swath_edge(ctx.scenario, take) or box(*site.bounds)
    items, item_ids = [], []
    site_valid10 = np.zeros(site.shape, bool)
    for tile in ctx.scenario.acquisitions.tiles:
        item = _tile_item(ctx, state, tile, coverage, site_valid10)
        if item is not None:
            items.append(item)
            item_ids.append(item["id"])
    g = state.ground
    truth = _truth(ctx, take, g.cls, state.sky10, site_valid10, g.vessels, g.ice_share, item_ids)
    return TakeResult(items, truth, g.vessels)


def _begin(ctx: Context, take: Datatake) -> _Take:
    """The ground, the day's reflectance of each class, the sky and the misregistration of
    `take`, and the observed reflectance of its 10 and 20 m bands (the rng's draws in
    this order: the same seed gives the same scene)."""
    sc, lay = ctx.scenario, ctx.layout
    rng = np.random.default_rng([sc.seed, 10, take.index])
    baseline = processing_baseline_for(take.date)
    g = ground(sc, lay, ctx.ice_masks, ctx.freeze_rank, take, rng)
    table, alt_table = day_tables(sc, lay, take, rng)
    sky = make_sky(rng, take, sc.climate, lay.grid.coarsen(2).shape, len(sp.BANDS))
    # Misregistration: whole-scene sub-pixel shift; worse before the 2021 geometric refinement.
    sigma_px = 0.3 if baseline < "03.00" else 0.1
    shift10 = rng.normal(0, sigma_px, size=2)
    state = _Take(
        take, rng, baseline, g, sky, shift10,
        sky10={k: zoom2(getattr(sky, k)) for k in SKY_LAYERS},
        sky20={k: getattr(sky, k) for k in SKY_LAYERS},
        wavelengths=np.array([b.wavelength_nm for b in sp.BANDS], "f4"),
    )  # fmt: skip
    for bi, band in enumerate(sp.BANDS):
        ground_fine = ((1 - g.share) * table[g.row, bi] + g.share * alt_table[g.row, bi]) * g.mult
        if band.resolution == 10:
            state.refl10[bi] = _observe(state, block_mean(ground_fine, 2), bi, state.sky10, shift10)
        elif band.resolution == 20:
            state.refl20[bi] = _observe(
                state, block_mean(ground_fine, 4), bi, state.sky20, shift10 / 2
            )
        else:
            state.fine60[bi] = ground_fine  # averaged per tile lattice, in _write_bands
    # SCL needs visible bands at 20 m: average the observed 10 m bands.
    state.vis20 = {b: block_mean(state.refl10[B[b]], 2) for b in ("blue", "green", "red")}
    return state


def _observe(
    state: _Take, ground: np.ndarray, bi: int, s: dict[str, np.ndarray], shift: np.ndarray
) -> np.ndarray:
    """What the sensor records of `ground` in band `bi`: blur, misregistration, shadow,
    cloud, cirrus, haze, calibration gain and offset, and noise."""
    sky = state.sky
    ground = ndimage.gaussian_filter(ground, MTF_SIGMA_PX, mode="nearest")
    ground = ndimage.shift(ground, shift, order=1, mode="nearest")
    lit = ground * (1 - s["shadow"] * (1 - sp.SHADOW_KEEP[bi]))
    top = (1 - s["cloud"]) * lit + s["cloud"] * sp.CLOUD[bi] + s["cirrus"] * sp.CIRRUS[bi]
    haze = s["haze"] * 0.012 * (490 / state.wavelengths[bi]) ** 1.5
    top = top * sky.gain + sky.offsets[bi] + haze
    res = sp.BANDS[bi].resolution
    return (top + correlated_noise(state.rng, top.shape) * noise_sigma(top, res)).astype("f4")


class _ItemWriter:
    """Writes the COGs of one item and collects its assets."""

    def __init__(self, ctx: Context, meta_id: str, epsg: int) -> None:
        self.folder = ctx.out_dir / "items" / meta_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self.final = ctx.final_dir / "items" / meta_id  # where the hrefs point
        self.epsg = epsg
        self.assets: list[RasterAsset] = []

    def emit(self, key: str, name: str, data: np.ndarray, win: ItemWindow, resampling: str):
        path = self.folder / f"{name}.tif"
        write_cog(path, data, win.transform, self.epsg, nodata=0, resampling=resampling)
        shape = (int(data.shape[-2]), int(data.shape[-1]))
        self.assets.append(RasterAsset(key, self.final / path.name, shape, win.transform))


def _tile_item(
    ctx: Context,
    state: _Take,
    tile: MgrsTile,
    coverage: BaseGeometry,
    site_valid10: np.ndarray,
) -> dict | None:
    """The item of `tile` in this datatake, its COGs written (None when the datatake
    barely touches the tile's part of the site); its valid 10 m pixels marked in
    `site_valid10`."""
    site = ctx.layout.grid
    wins = item_windows(site, tile)
    if wins is None:
        return None
    tile_cov = coverage.intersection(box(*tile_bounds(tile)))
    if tile_cov.area < 0.005 * site.footprint.area:
        return None  # the datatake barely touches this tile's part of the site
    meta_id = item_id(_scene_meta(state, tile, site, tile_cov, 0.0, {}))
    writer = _ItemWriter(ctx, meta_id, site.epsg)
    valid = {res: valid_mask(w, tile_cov) for res, w in wins.items()}
    r10, c10 = wins[10].offset_in(site)
    site_valid10[r10 : r10 + wins[10].height, c10 : c10 + wins[10].width] |= valid[10]
    _write_bands(ctx, state, wins, valid, writer)
    scl = _write_scl_and_auxiliaries(ctx, state, wins, valid, writer)
    n_valid = int(valid[20].sum())
    counts = np.bincount(scl[valid[20]], minlength=12) if n_valid else np.zeros(12, int)
    pct = {
        key: round(100 * float(counts[code]) / max(n_valid, 1), 6)
        for code, key in sp.SCL_PERCENT_KEYS.items()
    }
    pct["nodata_pixel"] = round(100 * (1 - n_valid / valid[20].size), 6)
    cloud_pct = pct["medium_proba_clouds"] + pct["high_proba_clouds"] + pct["thin_cirrus"]
    meta = _scene_meta(state, tile, site, tile_cov, round(cloud_pct, 6), pct)
    return build_item(meta, writer.assets)


def _scene_meta(
    state: _Take, tile: MgrsTile, site: Grid, tile_cov: BaseGeometry, cloud: float, pct: dict
) -> SceneMeta:
    take = state.take
    return SceneMeta(
        take.platform,
        tile.code,
        take.datetime,
        site.epsg,
        site.to_lonlat(tile_cov),
        cloud,
        pct,
        state.baseline,
        take.relative_orbit,
        take.absolute_orbit,
        take.sun_azimuth,
        take.sun_elevation,
    )


def _write_bands(
    ctx: Context,
    state: _Take,
    wins: dict[int, ItemWindow],
    valid: dict[int, np.ndarray],
    writer: _ItemWriter,
) -> None:
    """The item's reflectance COGs, as digital numbers (0: no data)."""
    site, fine = ctx.layout.grid, ctx.layout.fine
    g20 = site.coarsen(2)
    dn_offset = DN_OFFSET if boa_offset_applies(state.baseline) else 0
    for bi, band in enumerate(sp.BANDS):
        res = band.resolution
        win = wins[res]
        if res == 10:
            data = crop(state.refl10[bi], win, site)
        elif res == 20:
            data = crop(state.refl20[bi], win, g20)
        else:
            rf, cf = win.offset_in(fine)
            k = 60 // int(fine.resolution)
            ground = block_mean(
                state.fine60[bi][rf : rf + win.height * k, cf : cf + win.width * k], k
            )
            r20, c20 = win.offset_in(g20)
            s60 = {
                n: block_mean(a[r20 : r20 + win.height * 3, c20 : c20 + win.width * 3], 3)
                for n, a in state.sky20.items()
            }
            data = _observe(state, ground, bi, s60, state.shift10 / 6)
        dn = np.clip(np.rint(data * 10000) + dn_offset, 1, 65535).astype("u2")
        dn[~valid[res]] = 0
        writer.emit(band.key, band.name, dn, win, "average")


def _write_scl_and_auxiliaries(
    ctx: Context,
    state: _Take,
    wins: dict[int, ItemWindow],
    valid: dict[int, np.ndarray],
    writer: _ItemWriter,
) -> np.ndarray:
    """The item's SCL, AOT, WVP and true-colour COGs; its SCL."""
    site = ctx.layout.grid
    g20 = site.coarsen(2)
    sky, w20 = state.sky, wins[20]
    refl20_named = {b: crop(state.vis20[b], w20, g20) for b in state.vis20}
    refl20_named.update({sp.BANDS[i].key: crop(state.refl20[i], w20, g20) for i in TWENTY_M})
    sky_crop = Sky(
        **{
            **sky.__dict__,
            **{n: crop(getattr(sky, n), w20, g20) for n in ("cloud", "cirrus", "shadow")},
        }
    )
    scl = _scl(refl20_named, sky_crop, valid[20])
    writer.emit("scl", "SCL", scl, w20, "nearest")
    aot = np.clip(np.rint(crop(sky.aot, w20, g20) * 1000), 1, 65535).astype("u2")
    wvp = np.clip(np.rint(crop(sky.wvp, w20, g20) * 1000), 1, 65535).astype("u2")
    aot[~valid[20]] = 0
    wvp[~valid[20]] = 0
    writer.emit("aot", "AOT", aot, w20, "average")
    writer.emit("wvp", "WVP", wvp, w20, "average")
    rgb = np.stack([crop(state.refl10[B[k]], wins[10], site) for k in ("red", "green", "blue")])
    tci = np.clip(np.rint(rgb * 10000 * 255 / 2000), 1, 255).astype("u1")
    tci[:, ~valid[10]] = 0
    writer.emit("visual", "TCI", tci, wins[10], "average")
    return scl


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
    cls10 = majority(cls, 2)
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
