"""nampo's local Dask cluster: its worker processes start with nampo's malloc settings, so
that a unit's large arrays are reused from the heap instead of faulting in page by page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import distributed
import pytest
import yaml
from distributed import Client, LocalCluster

from nampo.run.cluster import WORKER_ENV, local_cluster

MIB = 2**20
PAGES = MIB // 4096
"""Pages of one 1 MiB array (a band of one date of a 512 px tile)."""


def _page_faults_per_array(n: int = 50, size: int = MIB) -> float:
    """Minor page faults per allocation of a `size`-byte array, written and freed `n` times
    in a thread other than the main one (as a Dask task thread allocates, from its own
    malloc arena): about size / 4 KiB when freed memory goes back to the system every
    time, near 0 when the heap keeps it."""
    import resource
    import threading

    import numpy as np

    out = []

    def allocate() -> None:
        np.ones(size // 4, dtype=np.float32).sum()  # the first one may grow the heap
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(n):
            np.ones(size // 4, dtype=np.float32).sum()
        out.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n)

    thread = threading.Thread(target=allocate)
    thread.start()
    thread.join()
    return out[0]


def _environ() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in WORKER_ENV}


def _faults_in_new_process(env: dict[str, str]) -> float:
    """Page faults per array in a fresh Python process started with `env` (and none of the
    malloc variables of this process, which an earlier cluster may have set)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    code = "from tests.run.test_cluster import _page_faults_per_array as f; print(f())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def test_dasks_default_worker_environment_faults_every_array_in_and_nampos_does_not():
    """Why nampo sets WORKER_ENV: with the variables Dask's nanny gives a worker by default
    (MALLOC_TRIM_THRESHOLD_=65536), glibc gives every freed array back to the system and
    faults it in again on the next allocation."""
    config = Path(distributed.__file__).with_name("distributed.yaml")
    dask_default = yaml.safe_load(config.read_text())["distributed"]["nanny"]
    dask_default = {k: str(v) for k, v in dask_default["pre-spawn-environ"].items()}
    assert _faults_in_new_process(dask_default) > 0.5 * PAGES
    assert _faults_in_new_process({**dask_default, **WORKER_ENV}) < 0.05 * PAGES


@pytest.mark.slow
def test_the_local_clusters_workers_start_with_nampos_environment():
    # A cluster with Dask's defaults first: its nanny leaves Dask's malloc variables in
    # this process's environment, which nampo's cluster must still override.
    with LocalCluster(n_workers=1, dashboard_address=None) as cluster, Client(cluster):
        pass
    with local_cluster(1, dashboard_address=None) as cluster, Client(cluster) as client:
        [env] = client.run(_environ).values()
        [faults] = client.run(_page_faults_per_array).values()
    assert env == WORKER_ENV
    assert faults < 0.05 * PAGES, f"{faults:.0f} page faults per 1 MiB array"


def test_the_kubernetes_workers_get_the_same_environment():
    """infra/dask/cluster.yaml's workers start with WORKER_ENV too (they are not started by
    nampo, so the manifest has to say it)."""
    manifest = yaml.safe_load((Path(__file__).parents[2] / "infra/dask/cluster.yaml").read_text())
    [worker] = manifest["spec"]["worker"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert {k: env.get(k) for k in WORKER_ENV} == WORKER_ENV


def test_gdal_cache_and_read_ahead_are_fitted_to_the_workers_memory():
    """GDAL's block cache and the read-ahead (memory Dask's accounting does not see) take
    at most a quarter of a worker's memory limit: shrunk, read-ahead first, with a
    warning naming the settings; left alone on workers with room."""
    import dataclasses

    from nampo.io.cube import Reading
    from nampo.run.cluster import fit_to_workers
    from nampo.run.plan import RunPlan

    reading = Reading()
    assert reading.within(None) is reading and reading.within(16 * 2**30) is reading
    small = reading.within(2**30)  # room: 256 MiB
    assert (small.gdal.cache_max_mb, small.read_ahead_mib) == (64, 192)
    tiny = reading.within(128 * MIB)  # room: 32 MiB
    assert (tiny.gdal.cache_max_mb, tiny.read_ahead_mib) == (32, 0)

    fields = {f.name: None for f in dataclasses.fields(RunPlan)}
    plan = RunPlan(**{**fields, "reading": reading})  # only its reading matters here
    with (
        distributed.LocalCluster(
            n_workers=1,
            processes=False,
            memory_limit="1GiB",
            dashboard_address=None,  # in-process transport, no dashboard: no socket at all
        ) as cluster,
        Client(cluster) as client,
    ):
        with pytest.warns(UserWarning, match=r"NAMPO_GDAL_CACHE_MIB \+ NAMPO_READ_AHEAD_MIB"):
            fitted = fit_to_workers(plan, client)
    assert fitted.reading == small
