"""Fixtures the store tests share (tests/io/test_store.py, test_store_location.py)."""

from __future__ import annotations

import pytest

from nampo.io.store import StoreLocation
from tests.store_helpers import new_location, with_bucket


@pytest.fixture(scope="session")
def s3_endpoint(s3_server: str) -> str:
    """The session's S3 server (tests/conftest.py) with the store tests' bucket."""
    return with_bucket(s3_server)


@pytest.fixture(params=["local", "s3"])
def location(request, tmp_path) -> StoreLocation:
    """A fresh, empty location for a store: a local folder, or a prefix in the bucket."""
    s3 = request.getfixturevalue("s3_endpoint") if request.param == "s3" else None
    return new_location(request.param, tmp_path, s3)
