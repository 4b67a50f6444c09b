"""What a run reports: each unit's outcome, and the run's metadata written to the store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from nampo.errors import NampoError
from nampo.io.store import Store, StoreLocation
from nampo.products.version import PRODUCT_VERSION
from nampo.run.units import AnyUnit, unit_from_id

if TYPE_CHECKING:
    from nampo.run.plan import RunPlan

__all__ = ["RunReport", "Status", "UnitResult", "after_failure", "done_in_run", "finish_run"]

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class UnitResult:
    """The outcome of one unit in a run (returned by the workers, so plain values)."""

    unit_id: str
    """The unit's id (``x01y02/2017-05``, ``x01y02/baseline``); :attr:`unit` parses it."""
    status: Status
    """``done`` (computed in this run), ``skipped`` (complete before) or ``failed``."""
    scenes: int = 0
    """Scenes over the unit's window (those that could not be read included)."""
    skipped_scenes: dict = field(default_factory=dict)
    """Scene id -> why it could not be read (the unit completed without it)."""
    seconds: float = 0.0
    """Wall time of the unit's work on its worker."""
    error: str | None = None
    """Why the unit failed."""

    @property
    def unit(self) -> AnyUnit:
        return unit_from_id(self.unit_id)


@dataclass(frozen=True)
class RunReport:
    """Every unit's outcome of one run."""

    run_id: str
    """The run's id (its metadata's key in the store)."""
    results: list[UnitResult]
    """One per unit of the plan: skipped ones first, then in the order they finished."""

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[UnitResult]:
        return [r for r in self.results if r.status == "failed"]


def done_in_run(store: Store, unit: AnyUnit, run_id: str) -> bool:
    """Whether run `run_id` wrote the unit's completion record (an earlier attempt of a
    retried task did)."""
    try:
        return store.record(unit.id).get("run") == run_id
    except NampoError:
        return False


def after_failure(
    location: StoreLocation, units: Iterable[AnyUnit], run_id: str, error: str
) -> list[UnitResult]:
    """A failed task's units: done if this run wrote their record before the failure."""
    store = Store(location)
    return [
        UnitResult(u.id, "done") if done_in_run(store, u, run_id)
        else UnitResult(u.id, "failed", error=error)
        for u in units
    ]  # fmt: skip


def finish_run(plan: RunPlan, results: Sequence[UnitResult], **extra: Any) -> RunReport:
    """Write the run's metadata (every unit's outcome, the scenes it skipped) to the store,
    after its units; `extra` adds fields (what a monitoring run saw)."""
    Store(plan.location).write_run(
        plan.run_id,
        {
            "site": plan.site.name,
            "first": f"{plan.first:%Y-%m}",
            "last": f"{plan.last:%Y-%m}",
            "loader": plan.loader,
            "force": plan.force,
            "catalog": plan.spec.profile,
            "units": {r.unit_id: r.status for r in results},
            "skipped_scenes": {k: v for r in results for k, v in r.skipped_scenes.items()},
            "product_version": PRODUCT_VERSION,
            # units of the period an older product version wrote: recomputed, or left
            "stale": {"policy": plan.stale_policy, "units": list(plan.stale)},
            **extra,
        },
    )
    return RunReport(plan.run_id, list(results))
