"""A run's plan, decided on the client before any unit runs: the inputs checked, the
scenes found, the units to compute and those already complete."""

from __future__ import annotations

import datetime as dt
import typing
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

from nampo.errors import NampoError
from nampo.io import catalog
from nampo.io.cube import Loader, Reading
from nampo.io.scenes import NormalisedItem
from nampo.io.store import Store, StoreLocation
from nampo.products.variables import LAST_CLEAR_MONTHS
from nampo.products.version import is_stale
from nampo.run.results import UnitResult
from nampo.run.units import BaselineUnit, Unit, add_months, month_end, months
from nampo.sites import Site, Tile

__all__ = [
    "CALENDAR",
    "LOADERS",
    "CatalogSpec",
    "PipelineError",
    "STALE_POLICIES",
    "RunPlan",
    "StalePolicy",
    "find_scenes",
    "largest_first",
    "new_run_id",
    "plan_run",
    "validate_period",
]

CALENDAR = months(dt.date(2015, 6, 1), dt.date(2035, 12, 1))
"""The fixed monthly calendar of every store: Sentinel-2's first month to 2035."""

LOADERS: tuple[Loader, ...] = typing.get_args(Loader)


class PipelineError(NampoError):
    """Parameters or inputs that make a run impossible (raised before any unit runs)."""


@dataclass(frozen=True)
class CatalogSpec:
    """The STAC catalog a run searches."""

    profile: str = "local"
    """A profile of :data:`nampo.io.catalog.PROFILES` (``local`` is the local STAC API)."""
    url: str | None = None
    """The API's URL instead of the profile's."""
    max_cloud: float | None = None
    """Leave out scenes cloudier than this (``eo:cloud_cover``, percent)."""
    timeout: float = 30.0
    """Seconds each attempt of a catalog request may take (retries follow)."""
    collection: str | None = None
    """Collection to search instead of the profile's (e.g. ``sentinel-2-l1c``)."""


StalePolicy = typing.Literal["recompute", "leave"]
STALE_POLICIES: tuple[str, ...] = typing.get_args(StalePolicy)


@dataclass(frozen=True)
class RunPlan:
    """What a run will do: the scenes it found, the units it will compute, and those it
    skips because they are complete."""

    site: Site
    """The site (grid, tiles, baseline period)."""
    first: dt.date
    """First month of the period."""
    last: dt.date
    """Last month of the period."""
    run_id: str
    """The run's id, in every record its units write."""
    location: StoreLocation
    """Where the store is (created by :func:`plan_run`)."""
    spec: CatalogSpec
    """The catalog the scenes came from."""
    loader: Loader
    """The cube loader the units read with."""
    force: bool
    """Whether complete units are computed again."""
    scenes: list[NormalisedItem]
    """Every scene the units need (the period, the months before it, the baseline)."""
    baselines: tuple[BaselineUnit, ...]
    """Baseline units that run (before any month of their tile), largest tile first."""
    months: tuple[Unit, ...]
    """Month units that run, in month order, then largest tile first."""
    skipped: tuple[UnitResult, ...]
    """Complete units left alone."""
    stale: tuple[str, ...] = ()
    """Units of the run written by an older product version: recomputed (among
    `baselines` and `months`) or, with the `leave` policy, left alone and reported."""
    stale_policy: StalePolicy = "recompute"
    reading: Reading = field(default_factory=Reading)
    """How the units read their cubes: `loader`, the operator's read settings and the
    catalog's signing hook (shipped to the workers with every unit)."""

    @property
    def total(self) -> int:
        return len(self.skipped) + len(self.baselines) + len(self.months)


def validate_period(first: dt.date, last: dt.date) -> None:
    if last < first:
        raise PipelineError(f"period ends ({last:%Y-%m}) before it starts ({first:%Y-%m})")
    if first < CALENDAR[0] or last > CALENDAR[-1]:
        raise PipelineError(
            f"period {first:%Y-%m}..{last:%Y-%m} is outside the store calendar "
            f"{CALENDAR[0]:%Y-%m}..{CALENDAR[-1]:%Y-%m}"
        )


def _baseline_period(site: Site) -> tuple[dt.date, dt.date]:
    if site.baseline is None:
        raise PipelineError(f"site {site.name!r} has no baseline period")
    return site.baseline


def find_scenes(
    site: Site, first: dt.date, last: dt.date, spec: CatalogSpec
) -> list[NormalisedItem]:
    """Every scene the units of the period need: the period, the LAST_CLEAR_MONTHS months
    before it (the latest clear month cva_prev compares with), and the site's baseline."""
    base_first, base_last = _baseline_period(site)
    start = min(add_months(first, -LAST_CLEAR_MONTHS), base_first)
    end = max(month_end(last), month_end(base_last))
    scenes = catalog.search_scenes(
        spec.profile, spec.url, site.footprint_lonlat, start, end, spec.max_cloud,
        timeout=spec.timeout, collection=spec.collection,
    )  # fmt: skip
    return scenes


def largest_first(site: Site) -> list[Tile]:
    """The site's tiles, most pixels first (then in grid order): the small edge tiles fill
    the gaps at the end of a phase (see docs/run.md)."""
    return sorted(site.tiles, key=lambda t: -t.shape[0] * t.shape[1])


def new_run_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def plan_run(
    site: Site,
    first: dt.date,
    last: dt.date,
    *,
    store: Store,
    spec: CatalogSpec = CatalogSpec(),  # noqa: B008 (frozen)
    loader: str = "stackstac",
    force: bool = False,
    recompute: Collection[str] = (),
    scenes: list[NormalisedItem] | None = None,
    run_id: str | None = None,
    stale: StalePolicy = "recompute",
    reading: Reading | None = None,
) -> RunPlan:
    """Check a run's inputs and decide its units; raises before anything is written when
    the period, the catalog or the store make the run impossible, then creates the store
    (idempotent) so that the units can write their chunks.

    `recompute` names complete units (``x00y00/2017-05``) to compute again although the
    run is not forced; `scenes` skips the catalog search (the caller searched already).
    `stale`: what to do with the run's units written by an older product version
    (:mod:`nampo.products.version`): ``recompute`` them, or ``leave`` them and report.
    `reading`: the operator's read settings (:meth:`Reading.from_settings`); its loader is
    replaced by `loader`, and, unless it has a signing hook, the catalog profile's signer
    is added (Planetary Computer's hrefs are signed on the workers, right before each
    read, and signed again once when a token expired meanwhile).
    """
    if stale not in STALE_POLICIES:
        raise PipelineError(f"unknown stale policy {stale!r}; choose one of {STALE_POLICIES}")
    first, last = first.replace(day=1), last.replace(day=1)
    validate_period(first, last)
    if loader not in LOADERS:  # narrows `loader` to a Loader
        raise PipelineError(f"unknown loader {loader!r}; choose one of {', '.join(LOADERS)}")
    base = reading if reading is not None else Reading()
    sign = base.sign if base.sign is not None else catalog.scene_signer(spec.profile)
    reading = base.replace(loader=loader, sign=sign)
    _baseline_period(site)
    if scenes is None:
        scenes = find_scenes(site, first, last, spec)
    if not scenes:
        raise PipelineError(
            f"the catalog has no scenes of site {site.name!r} for {first:%Y-%m}..{last:%Y-%m} "
            f"(nor its baseline): is the site inside the catalog's coverage?"
        )
    store.check_writable()  # before any unit runs, and after the catalog had its say
    store.create(site, CALENDAR)
    tiles = largest_first(site)
    ours = {BaselineUnit(t.id).id for t in tiles} | {
        Unit(m, t.id).id for m in months(first, last) for t in tiles
    }
    records = store.records()
    old = sorted(u for u, r in records.items() if u in ours and is_stale(r))
    done = set() if force else set(records) - set(recompute)
    if stale == "recompute":
        done -= set(old)
    baselines = [BaselineUnit(t.id) for t in tiles if BaselineUnit(t.id).id not in done]
    running = {b.tile_id for b in baselines}
    skipped = [
        UnitResult(BaselineUnit(t.id).id, "skipped") for t in site.tiles if t.id not in running
    ]
    month_units = [Unit(m, t.id) for m in months(first, last) for t in tiles]
    todo = [u for u in month_units if u.id not in done]
    skipped += [UnitResult(u.id, "skipped") for u in month_units if u.id in done]
    return RunPlan(
        site, first, last, run_id or new_run_id(), store.location, spec,
        loader, force, scenes, tuple(baselines), tuple(todo), tuple(skipped), tuple(old),
        stale, reading,
    )  # fmt: skip
