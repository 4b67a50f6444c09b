"""What lies between the ground and the sensor in one scene: clouds and their shadows,
fog, thin cirrus, residual atmospheric error of the L2A correction, and sensor noise.

Clouds are fractal fields (power-law spectrum, as measured for cloud fields) drawn on a
20 m grid larger than the site, so clouds outside the site still cast shadows into it.
Cloud cover per scene follows the month's climate with the U-shaped distribution real
scenes have (many nearly clear, many nearly overcast).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from nampo.scenario.model import Climate
from nampo.scenario.schedule import Datatake

__all__ = [
    "MARGIN_M",
    "Sky",
    "fractal_field",
    "scene_cloud_fraction",
    "make_sky",
    "NOISE_FLOOR",
    "noise_sigma",
    "MTF_SIGMA_PX",
    "NOISE_CORRELATION_PX",
    "correlated_noise",
]

MARGIN_M = 3000.0  # clouds this far outside the site still shade it


@dataclass
class Sky:
    """One scene's sky on the site's 20 m grid (arrays have the 20 m site shape)."""

    cloud: np.ndarray  # float32 opacity of water clouds and fog, 0..1
    cirrus: np.ndarray  # float32 opacity of thin cirrus, 0..1
    shadow: np.ndarray  # float32 0..1 share of direct sun blocked by a cloud
    fog: bool
    gain: float  # residual calibration / BRDF gain of the whole scene
    offsets: np.ndarray  # per-band additive residual of the atmospheric correction
    haze: np.ndarray  # float32 0..1 smooth aerosol residual pattern
    aot: np.ndarray  # aerosol optical thickness at 550 nm, 20 m
    wvp: np.ndarray  # water vapour, cm, 20 m


def fractal_field(
    rng: np.random.Generator, shape: tuple[int, int], beta: float, min_scale_px: float = 1.0
) -> np.ndarray:
    """Gaussian field with power spectrum ~ k^-beta, zero mean and unit variance."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = 1.0
    amp = k ** (-beta / 2) * np.exp(-((k * min_scale_px) ** 2))
    amp[0, 0] = 0.0
    noise = rng.standard_normal((shape[0], kx.shape[1])) + 1j * rng.standard_normal(
        (shape[0], kx.shape[1])
    )
    field = np.fft.irfft2(noise * amp, s=shape)
    return ((field - field.mean()) / (field.std() + 1e-12)).astype("f4")


def scene_cloud_fraction(rng: np.random.Generator, mean: float) -> float:
    # Beta with a small concentration: U-shaped like real per-scene cloud cover.
    k = 0.9
    a, b = max(mean * k, 0.05), max((1 - mean) * k, 0.05)
    return float(rng.beta(a, b))


def make_sky(
    rng: np.random.Generator,
    take: Datatake,
    climate: Climate,
    shape20: tuple[int, int],
    n_bands: int,
) -> Sky:
    month = take.date.month - 1
    margin = int(MARGIN_M / 20)
    big = (shape20[0] + 2 * margin, shape20[1] + 2 * margin)
    inner = (slice(margin, margin + shape20[0]), slice(margin, margin + shape20[1]))

    fraction = scene_cloud_fraction(rng, climate.cloud_cover[month])
    # Cumulus fields are patchy (steep spectrum cut at small scales); stratus is broad.
    beta = rng.uniform(2.6, 3.6)
    field = fractal_field(rng, big, beta, min_scale_px=rng.uniform(1.0, 4.0))
    if fraction < 0.005:
        cloud_big = np.zeros(big, "f4")
    else:
        thr = np.quantile(field, 1 - fraction)
        softness = rng.uniform(0.25, 0.7)
        cloud_big = np.clip((field - thr) / softness, 0, 1) ** 0.8
    fog = bool(rng.uniform() < climate.fog[month])
    if fog:
        # Low fog/haze: thin, broad and fairly even (it lies over the estuary and the town).
        fog_field = fractal_field(rng, big, 4.0, 8.0)
        level = rng.uniform(0.12, 0.45)
        cloud_big = 1 - (1 - cloud_big) * (1 - np.clip(level * (1 + 0.35 * fog_field), 0, 1))

    # Shadows: the cloud field displaced away from the sun by height / tan(elevation).
    height = rng.uniform(*climate.cloud_height_m)
    dist = height / math.tan(math.radians(max(take.sun_elevation, 5)))
    az = math.radians(take.sun_azimuth)
    dx, dy = -math.sin(az) * dist / 20, -math.cos(az) * dist / 20  # metres -> 20 m pixels
    # Rows grow southwards, so a northward shift (dy > 0) is a negative row shift.
    shadow_big = ndimage.shift(cloud_big, (-dy, dx), order=1, mode="constant", cval=0.0)

    cirrus = np.zeros(shape20, "f4")
    if rng.uniform() < climate.cirrus:
        streaks = fractal_field(rng, big, 3.2, 3.0)
        cirrus_big = np.clip((streaks - rng.uniform(-0.5, 1.0)) * 0.25, 0, 0.35)
        cirrus = cirrus_big[inner].astype("f4")

    haze = fractal_field(rng, big, 4.0, 10.0)[inner]
    haze = (haze - haze.min()) / (np.ptp(haze) + 1e-9)
    aot = np.clip(0.08 + rng.gamma(2.0, 0.06) * (0.6 + 0.8 * haze), 0.02, 1.5).astype("f4")
    season = 0.5 - 0.5 * math.cos(2 * math.pi * (take.date.timetuple().tm_yday - 20) / 365)
    wvp = np.clip((0.5 + 3.5 * season) * rng.uniform(0.7, 1.3) * (0.9 + 0.2 * haze), 0.1, 6.0)

    # Residual error of the atmospheric correction: a gain common to all bands and an
    # offset that decreases with wavelength (aerosol residuals act mostly in the blue).
    gain = float(rng.normal(1.0, 0.03))
    wl = np.array([443, 490, 560, 665, 705, 740, 783, 842, 865, 945, 1610, 2190], "f4")
    offsets = (rng.normal(0, 0.006) * (490 / wl) ** 1.5).astype("f4")
    assert offsets.shape[0] == n_bands

    return Sky(
        cloud=cloud_big[inner].astype("f4"),
        cirrus=cirrus,
        shadow=np.clip(shadow_big[inner], 0, 1).astype("f4") * (1 - cloud_big[inner]),
        fog=fog,
        gain=gain,
        offsets=offsets,
        haze=haze.astype("f4"),
        aot=aot,
        wvp=wvp.astype("f4"),
    )


NOISE_FLOOR = {10: 0.0011, 20: 0.0022, 60: 0.0015}
"""Noise floor (reflectance) by band resolution, set so that the pixel-scale noise of calm
water matches real scenes (tests/scenario/test_scenario_realism.py): high-pass std about 0.0009 in
the 10 m bands (OSCD rivers) and 0.0015 in the 20 m bands (Virginia's sea)."""


def noise_sigma(reflectance: np.ndarray, resolution: int = 10) -> np.ndarray:
    """Per-pixel noise of L2A reflectance: a floor plus a share of the signal."""
    return np.sqrt(NOISE_FLOOR[resolution] ** 2 + (0.008 * reflectance) ** 2)


MTF_SIGMA_PX = 0.45
"""Blur of the instrument (its modulation transfer function) as a Gaussian, in pixels of
the band: MSI's MTF at Nyquist is about 0.15-0.3, which a Gaussian of 0.4-0.5 px matches."""

NOISE_CORRELATION_PX = 0.8
"""Noise of neighbouring pixels is correlated (detector blur, on-board compression,
resampling in L1C): white noise filtered with a Gaussian of this width gives the +0.3
neighbour correlation measured on real water."""


def correlated_noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Unit-variance noise with the neighbour correlation of real Sentinel-2 pixels."""
    white = rng.standard_normal(shape, "f4")
    smooth = ndimage.gaussian_filter(white, NOISE_CORRELATION_PX, mode="reflect")
    return smooth / _KERNEL_NORM


def _kernel_norm() -> float:
    delta = np.zeros((15, 15), "f4")
    delta[7, 7] = 1
    return float(np.sqrt((ndimage.gaussian_filter(delta, NOISE_CORRELATION_PX) ** 2).sum()))


_KERNEL_NORM = _kernel_norm()
