"""How a run's units read their cubes: one frozen value built at the edge (CLI, flow) from
the operator's settings and shipped with every unit to the worker that reads.

Library code never reads the environment: :meth:`Reading.from_settings` is the one place
where ``NAMPO_READ_THREADS``, ``NAMPO_READ_AHEAD_MIB`` and ``NAMPO_GDAL_CACHE_MIB`` become
arguments (docs/cube.md, "Settings for operators in the cloud").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from nampo.errors import CubeError
from nampo.io.gdal import GdalSettings
from nampo.io.scenes import NormalisedItem

if TYPE_CHECKING:
    from nampo.settings import Settings

__all__ = ["PREFETCH_MB", "READ_THREADS", "Loader", "Reading", "Signer"]

Loader = Literal["stackstac", "odc"]

Signer = Callable[[NormalisedItem], NormalisedItem]
"""Returns a scene whose band hrefs can be read now (``CatalogProfile.sign_scene``)."""

PREFETCH_MB = 256
"""At most this many MiB of decoded blocks are read ahead for one cube (:func:`read_cube`'s
`prefetch`; GDAL's block cache is raised by as much to hold them): a month unit's scenes
over a site like Nampo (~100 MiB), not a baseline's year (~600 MiB), whose files would
push each other's blocks out before the next tile reads them."""

READ_THREADS = 16
"""Threads that read one cube's remote assets at once in :func:`read_cube` (files on
local disk are read in the calling thread). A read over HTTP spends nearly all its time
waiting for the server (20-80 ms a request in the cloud, a few ms of decoding): with
this many reads in flight, the waits of a unit's ~50-100 requests overlap instead of
adding up. GDAL releases the GIL while it waits and decodes (docs/cube.md)."""

MAX_READ_THREADS = 256

CACHE_SHARE = 0.25
"""At most this share of a worker's memory limit goes to GDAL's block cache and the
read-ahead together: the rest holds a unit's arrays (a baseline tile's year of bands is
~0.5-1 GiB while it is composited), the open files (~160 MiB, ``OPEN_FILES``), Python and
Dask. With nampo's defaults (64 + 256 MiB) a worker needs 1.25 GiB for them to fit."""


@dataclass(frozen=True)
class Reading:
    """How the units of a run read their cubes (frozen and picklable: it travels with the
    units to the Dask workers).

    Examples
    --------
    >>> Reading(read_threads=8).read_threads
    8
    >>> Reading(read_ahead_mib=0).read_ahead_mib        # no read-ahead
    0
    """

    loader: Loader = "stackstac"
    """The cube loader (``stackstac`` or ``odc``)."""
    read_threads: int = READ_THREADS
    """Remote assets read at once per unit (local files are read one at a time)."""
    read_ahead_mib: int = PREFETCH_MB
    """Budget of the read-ahead of a file's blocks under the site (or the part of it the
    worker computes), decoded, per cube; 0 turns the read-ahead off."""
    gdal: GdalSettings = field(default_factory=GdalSettings)
    """GDAL settings applied where the reads happen (``cache_max_mb`` is the block cache
    outside the read-ahead, which adds its own budget while a unit reads ahead)."""
    sign: Signer | None = None
    """The catalog's signing hook, called right before each read (None: public hrefs).
    It must pickle: a module-level function, a bound method of a frozen object, or
    :class:`nampo.io.catalog.profiles.ProfileSigner`, which travels as a profile name."""

    def __post_init__(self) -> None:
        if self.loader not in ("stackstac", "odc"):
            raise CubeError(f"unknown loader {self.loader!r}; valid: 'stackstac', 'odc'")
        if not isinstance(self.read_threads, int) or not (
            1 <= self.read_threads <= MAX_READ_THREADS
        ):
            raise CubeError(
                f"read_threads must be an integer from 1 to {MAX_READ_THREADS}, "
                f"not {self.read_threads!r}"
            )
        if not isinstance(self.read_ahead_mib, int) or self.read_ahead_mib < 0:
            raise CubeError(
                f"read_ahead_mib must be an integer >= 0 (0: no read-ahead), "
                f"not {self.read_ahead_mib!r}"
            )
        if self.sign is not None and not callable(self.sign):
            raise CubeError(f"sign must be callable or None, not {self.sign!r}")

    def replace(self, **changes: object) -> Reading:
        """A copy with `changes` (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def within(self, memory_limit: int | None) -> Reading:
        """This reading for workers of `memory_limit` bytes (None or 0: no limit): GDAL's
        block cache and the read-ahead budget shrunk, the read-ahead first, until both
        together fit in :data:`CACHE_SHARE` of it (GDAL's cache is memory the worker's
        own accounting does not see, and a worker over its limit is restarted)."""
        if not memory_limit:
            return self
        room = int(CACHE_SHARE * memory_limit / 2**20)
        cache = min(self.gdal.cache_max_mb, max(8, room))
        ahead = min(self.read_ahead_mib, max(0, room - cache))
        if (cache, ahead) == (self.gdal.cache_max_mb, self.read_ahead_mib):
            return self
        gdal = dataclasses.replace(self.gdal, cache_max_mb=cache)
        return self.replace(gdal=gdal, read_ahead_mib=ahead)

    @classmethod
    def from_settings(cls, settings: Settings, loader: Loader = "stackstac") -> Reading:
        """The reading an operator asked for through ``NAMPO_READ_THREADS``,
        ``NAMPO_READ_AHEAD_MIB`` and ``NAMPO_GDAL_CACHE_MIB`` (validated when `settings`
        was read)."""
        return cls(
            loader=loader,
            read_threads=settings.read_threads,
            read_ahead_mib=settings.read_ahead_mib,
            gdal=GdalSettings(cache_max_mb=settings.gdal_cache_mib),
        )
