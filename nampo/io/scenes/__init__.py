"""STAC items of every catalog in one internal form, and duplicate acquisitions.

Catalogs describe the same Sentinel-2 or Landsat scene differently; the cube loader reads
one shape only, :class:`NormalisedItem`, built by :func:`normalise` from the band tables
of :mod:`.bands`. :func:`dedupe` keeps each acquisition once. The tables and the rules
are in docs/catalog.md.
"""

from nampo.io.scenes.bands import (
    LANDSAT_BANDS,
    LANDSAT_SR_OFFSET,
    LANDSAT_SR_SCALE,
    MASK_BANDS,
    S2_BOA_OFFSET,
    S2_OFFSET_BASELINE,
    S2_SCALE,
    SENTINEL2_BANDS,
    SENTINEL2_L1C_BANDS,
    BandSpec,
    processing_baseline,
    s2_offset,
)
from nampo.io.scenes.duplicates import SAME_FOOTPRINT, SAME_TIME, dedupe, sequence, version_key
from nampo.io.scenes.items import BandAsset, NormalisedItem
from nampo.io.scenes.normalisation import acquired, normalise, platform, tile

__all__ = [
    "LANDSAT_BANDS",
    "LANDSAT_SR_OFFSET",
    "LANDSAT_SR_SCALE",
    "MASK_BANDS",
    "S2_BOA_OFFSET",
    "S2_OFFSET_BASELINE",
    "S2_SCALE",
    "SAME_FOOTPRINT",
    "SAME_TIME",
    "SENTINEL2_BANDS",
    "SENTINEL2_L1C_BANDS",
    "BandAsset",
    "BandSpec",
    "NormalisedItem",
    "acquired",
    "dedupe",
    "normalise",
    "platform",
    "processing_baseline",
    "s2_offset",
    "sequence",
    "tile",
    "version_key",
]
