"""Shared fixtures: rendered scenario archives and the shared reference data.

Archives are rendered once per run into a temporary folder shared by every pytest-xdist
worker (or into ``$NAMPO_TEST_ARCHIVES`` when set, which makes re-runs on one machine
fast: the archive cache is keyed by the scenario's content, so a changed scenario is
rebuilt).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nampo.scenario.archive import Archive, build_archive

pytest_plugins = [
    "tests.conftest_services",
    "tests.flows_fixtures",
    "tests.truth_harness",  # the processed mini store and the Nampo STAC API, shared
]

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
MINI = SCENARIOS / "tests" / "harbour-mini.yaml"
NAMPO = SCENARIOS / "nampo.yaml"


def shared_dir() -> Path:
    """The read-only shared material (`../shared` beside the repository)."""
    for candidate in (REPO.parent / "shared", Path("/work/shared")):
        if (candidate / "data" / "real").is_dir():
            return candidate
    raise RuntimeError(f"cannot find the shared data folder next to {REPO}")


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


_TEMPORARY_ARCHIVES = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    # One archives folder for the whole run, made by the process that runs pytest (with
    # pytest-xdist, the controller) before its workers start: they inherit the variable,
    # so each archive renders once per run whichever worker asks first (build_archive
    # makes the others wait).
    if os.environ.get("NAMPO_TEST_ARCHIVES") or hasattr(config, "workerinput"):
        return
    root = Path(tempfile.mkdtemp(prefix="nampo-test-archives-"))
    root.chmod(0o755)  # the postgres user reads nothing here, but keep it traversable
    os.environ["NAMPO_TEST_ARCHIVES"] = str(root)
    config.stash[_TEMPORARY_ARCHIVES] = root


def pytest_unconfigure(config: pytest.Config) -> None:
    root = config.stash.get(_TEMPORARY_ARCHIVES, None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
        os.environ.pop("NAMPO_TEST_ARCHIVES", None)


@pytest.fixture(scope="session")
def archives_root() -> Path:
    root = Path(os.environ["NAMPO_TEST_ARCHIVES"])
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def mini_archive(archives_root: Path) -> Archive:
    """The harbour-mini scenario rendered (145 items, 2021-07..2022-06, two tiles)."""
    return build_archive(MINI, archives_root, workers=2)


@pytest.fixture(scope="session")
def small_archive(mini_archive: Archive) -> Path:
    """Folder with collection.json and items.ndjson (what the STAC API tests load)."""
    return mini_archive.path


@pytest.fixture(scope="session")
def nampo_archive(archives_root: Path) -> Archive:
    """The full Nampo scenario (about 2 minutes on 2 cores: use in slow tests only)."""
    return build_archive(NAMPO, archives_root, workers=2)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """An S3-protocol server (moto) on 127.0.0.1 and a free port: its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_settings(endpoint: str):
    from nampo.settings import Settings

    return Settings(s3_endpoint_url=endpoint, s3_key="testing", s3_secret="testing")


def make_bucket(endpoint: str, name: str) -> None:
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=name)


@pytest.fixture(scope="session")
def dask_client():
    """A real multi-process Dask cluster on loopback (2 workers, 1 thread each)."""
    from distributed import Client

    with Client(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as client:
        yield client
