"""The Dask workers nampo starts: a local multi-process cluster, and the environment its
worker processes need from their first instruction (why: docs/run.md, "The workers'
memory allocator")."""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import TYPE_CHECKING

import dask

if TYPE_CHECKING:
    from nampo.run.plan import RunPlan

__all__ = ["WORKER_ENV", "configure_workers", "fit_to_workers", "local_cluster"]

WORKER_ENV: dict[str, str] = {
    # Arrays up to 32 MiB (glibc's maximum; one band of a baseline tile is ~18 MiB) come
    # from the heap instead of a fresh mmap each.
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    # Keep up to 512 MiB of freed heap for the next unit instead of trimming it back.
    "MALLOC_TRIM_THRESHOLD_": str(512 * 2**20),
    # Grow the heap 64 MiB at a time rather than a page run at a time.
    "MALLOC_TOP_PAD_": str(64 * 2**20),
}
"""Environment of nampo's Dask worker processes (glibc malloc tuning, read once at start)."""


def configure_workers() -> None:
    """Make the worker processes that Dask's nannies spawn from this process start with
    :data:`WORKER_ENV` (on top of Dask's other pre-spawn variables). Idempotent."""
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.update(WORKER_ENV)
    dask.config.set({"distributed.nanny.pre-spawn-environ": env})
    # A nanny takes these variables from os.environ before its config, and every nanny
    # writes its own into os.environ before it spawns: once a cluster with Dask's
    # defaults has run in this process (MALLOC_TRIM_THRESHOLD_=65536), the config alone
    # would no longer reach the workers. The variables only act on processes started
    # from now on (glibc reads them at start).
    os.environ.update(WORKER_ENV)


def local_cluster(workers: int, **kwargs):
    """A ``distributed.LocalCluster`` of `workers` processes with one thread each, on
    loopback, its workers configured by :func:`configure_workers`; `kwargs` go to
    ``LocalCluster`` (e.g. ``silence_logs``, ``local_directory``)."""
    from distributed import LocalCluster

    configure_workers()
    options = {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
        **kwargs,
    }
    return LocalCluster(**options)


def fit_to_workers(plan: RunPlan, client) -> RunPlan:
    """The plan with its reading fitted to the smallest worker's memory limit
    (``Reading.within``), and a warning naming the settings when it had to shrink."""
    limits = [w.get("memory_limit") or 0 for w in client.scheduler_info()["workers"].values()]
    smallest = min((x for x in limits if x), default=None)
    fitted = plan.reading.within(smallest)
    if fitted != plan.reading and smallest is not None:
        warnings.warn(
            f"NAMPO_GDAL_CACHE_MIB + NAMPO_READ_AHEAD_MIB ({plan.reading.gdal.cache_max_mb} + "
            f"{plan.reading.read_ahead_mib} MiB) exceed a quarter of a worker's memory limit "
            f"({smallest / 2**20:.0f} MiB): using {fitted.gdal.cache_max_mb} + "
            f"{fitted.read_ahead_mib} MiB",
            UserWarning,
            stacklevel=3,
        )
    return dataclasses.replace(plan, reading=fitted)
