"""Session fixtures running the local STAC API (PostgreSQL + pgstac + stac-fastapi).

A pytest plugin: ``tests/conftest.py`` registers it with
``pytest_plugins = ["tests.conftest_services"]``. The stack starts once per session, in a
fresh temporary folder on free ports, and is always stopped at the end.

Fixtures
--------
stac_home
    A temporary ``NAMPO_HOME``; the stack's state folder is ``stac_home / "stac"`` (what
    ``Settings(home=stac_home).stac_dir`` points at, so CLI tests can share the stack).
stac_api
    The running, empty stack's :class:`~nampo.services.pgstac.StacEndpoint`.
loaded_stac_api
    ``stac_api`` with the ``small_archive`` fixture's archive loaded (``small_archive``
    must be session-scoped).
small_archive_items
    The items of ``small_archive`` read with plain ``json``, to compute expected results.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nampo.services import pgstac


@pytest.fixture(scope="session")
def stac_home() -> Iterator[Path]:
    # Not tmp_path_factory: pytest resets /tmp/pytest-of-root to 0700 every session, and
    # the postgres user needs to traverse the folders above its cluster.
    home = Path(tempfile.mkdtemp(prefix="nampo-test-home-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def stac_api(stac_home: Path) -> Iterator[pgstac.StacEndpoint]:
    if not (pgstac.PG_BIN / "initdb").exists():
        # infra/local/setup.sh installs it: a missing server is a broken set-up, not a skip.
        pytest.fail(
            f"PostgreSQL 15 is not installed ({pgstac.PG_BIN} is missing): run infra/local/setup.sh"
        )
    state_dir = stac_home / "stac"
    try:
        yield pgstac.start(state_dir)
    finally:
        pgstac.stop(state_dir)  # also after a failed start: it may have left PostgreSQL up


@pytest.fixture(scope="session")
def loaded_stac_api(stac_api: pgstac.StacEndpoint, small_archive: Path) -> pgstac.StacEndpoint:
    pgstac.load(stac_api, small_archive)
    return stac_api


@pytest.fixture(scope="session")
def small_archive_items(small_archive: Path) -> list[dict]:
    with open(small_archive / "items.ndjson") as handle:
        return [json.loads(line) for line in handle if line.strip()]
