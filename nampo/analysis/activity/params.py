"""The parameters of facility activity: how vessels and ice are read from one scene (in
the unit) and counted (when read)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ActivityParams"]


@dataclass(frozen=True)
class ActivityParams:
    """How vessels and ice are read from one scene (in the unit) and counted (when read)."""

    ship_nir_contrast: float = 0.04
    """NIR reflectance a ship-like pixel has above the scene's open water at the berths
    (ships about 0.16, turbid water 0.02-0.04: a pixel a third covered by a hull passes).
    A pixel within half of it of the tile's open water shows water (``unit.water_colour``)."""
    ship_max_ndsi: float = 0.6
    """Largest NDSI of a ship-like pixel (steel about 0, turbid water and ice 0.7-0.9);
    at least this, a pixel shows water or ice. Not lower: the SWIR band is 20 m, so a
    15 m-wide hull shares its SWIR pixel with water and reads 0.4-0.5. Clear sea water
    reads 0.35-0.62 and is told by its NIR instead (``unit.water_colour``)."""
    ship_dip: float = 0.5
    """A ship-like group is cut where its brightness profile across or along the berth dips
    under this share of the lower peak beside it: a hull's centre line is at least three
    quarters hull, a pixel centred in 15 m of water between two ships at most a third
    (:mod:`.ships`)."""
    ship_min_length_m: float = 100.0
    """Shortest ship of the ports watched: a cut along the berth leaves at least half of it
    either side (the dark hatches of one hull are not two ships)."""
    ship_max_length_m: float = 250.0
    """Longest ship of the ports watched: a group longer than this along its berth is cut
    at its deepest dip even when that dip is shallow (ships bow to stern under 15 m apart)."""
    cloud_buffer_px: int = 10
    """Berth pixels within this many pixels (100 m) of an observation that is not clear
    count as not clear: the thin haze around a cloud, which the mask misses, is bright
    over water like a hull."""
    min_ship_px: int = 6
    """Smallest vessel in pixels (600 m², half a 80 m x 14 m coaster): fewer are noise,
    a cloud's unmasked edge, a buoy or a tug."""
    max_ship_px: int = 150
    """Largest vessel in pixels: more is a slick of haze or a pier under construction."""
    min_ship_width_px: int = 2
    """A vessel's box is at least this many pixels across its thinner side: a hull's beam
    (12-40 m) blurred over 10 m pixels lights two or more; a line one pixel thick along a
    berth is the shore's mixed pixels, lit when misregistration moves the land into them
    (issue 18: Nampo's container terminal, a grassy bank along its quay, read 1.44 ships
    a clear scene against 0.96). Box-based: it holds for berths along the grid's rows or
    columns; a thin line along a diagonal berth has a thicker box and is kept."""
    min_water_px: int = 10
    """Fewest clear berth pixels that show water (or ice), over all tiles, for a scene's
    vessels at a facility to be counted: without them haze the cloud mask missed
    (fog) lies over the berths, white, lighting them like hulls; unseen, as under a cloud."""
    min_clear_share: float = 0.9
    """Share of a facility's berth (or water) pixels that must be clear for a scene to
    count: a ship under a cloud is unseen, not absent."""
