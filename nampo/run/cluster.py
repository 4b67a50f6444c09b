"""The Dask workers nampo starts: a local multi-process cluster, and the environment its
worker processes need from their first instruction.

Why the environment. A unit allocates and frees large numpy arrays all the time (a year of
a tile is ~70 dates x 256 x 256 per band). Dask's nanny starts every worker with
``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``), to give memory
back to the system eagerly. With it, glibc returns an array's memory as soon as it is
freed (and stops adapting its mmap threshold), so the next array faults its pages in again
one by one: a 1 MiB array allocated in a task thread costs 256 page faults, every time
(``tests/test_cluster.py``). Measured on the Nampo benchmark's period on one worker, 28 %
of the task thread's time was system time, and the run took 28.0 s. With
:data:`WORKER_ENV`, arrays up to 32 MiB come from the worker's heap and freed memory is
kept for the next unit: 21.3 s, system time 7 % (``benchmarks/pipeline.py`` shows the
effect on time and peak memory).

glibc reads these variables once, when the process starts, so they have to be in the
environment before the worker is spawned: :func:`configure_workers` puts them in Dask's
``pre-spawn-environ`` for the clusters this process starts. Workers started elsewhere
(``dask-worker`` on Kubernetes) get them from their own environment
(``infra/dask/cluster.yaml``). A variable already set in this process's environment wins
(Dask's own rule), so an operator can still choose other values.
"""

from __future__ import annotations

import dask

WORKER_ENV: dict[str, str] = {
    # Arrays up to 32 MiB (glibc's maximum; one band of a baseline tile is ~18 MiB) come
    # from the heap instead of a fresh mmap each.
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    # Keep up to 512 MiB of freed heap for the next unit instead of trimming it back.
    "MALLOC_TRIM_THRESHOLD_": str(512 * 2**20),
    # Grow the heap 64 MiB at a time rather than a page run at a time.
    "MALLOC_TOP_PAD_": str(64 * 2**20),
}
"""Environment of nampo's Dask worker processes (glibc malloc tuning; see the module doc)."""


def configure_workers() -> None:
    """Make the worker processes that Dask's nannies spawn from this process start with
    :data:`WORKER_ENV` (on top of Dask's other pre-spawn variables). Idempotent."""
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.update(WORKER_ENV)
    dask.config.set({"distributed.nanny.pre-spawn-environ": env})


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
