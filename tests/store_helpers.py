"""What the store tests (tests/io/test_store.py, tests/io/test_store_location.py) share:
fingerprints of a store's objects, the S3 bucket and its credentials, and fresh locations
(each module's fixtures call these)."""

from __future__ import annotations

import hashlib
import socket
import uuid
from pathlib import Path

import boto3
import fsspec
import numpy as np

from nampo.io.store import Store, StoreLocation
from nampo.products.variables import MONTHLY
from nampo.run.units import Unit
from nampo.settings import Settings
from tests.store_jobs import CALENDAR, SITE, unit_ds

__all__ = [
    "BUCKET",
    "KEY",
    "SECRET",
    "assert_unit_is",
    "chunk_keys",
    "digests",
    "free_port",
    "new_location",
    "objects",
    "s3_client",
    "with_bucket",
    "s3_settings",
]

BUCKET = "nampo-test"
KEY, SECRET = "testing-key", "testing-secret-do-not-print"


# ---------------------------------------------------------------------------- helpers


def objects(store: Store) -> dict[str, object]:
    """A fingerprint of every object under the store root, by key: its bytes in a local
    folder, its ETag (the MD5 of its bytes) and time in the bucket (one listing)."""
    fs, root = fsspec.core.url_to_fs(store.url, **store.location.storage_options)
    fs.invalidate_cache()
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return {}
    if store.location.is_local:
        return {p[len(root) + 1 :]: Path(p).read_bytes() for p in found}
    return {p[len(root) + 1 :]: (i["ETag"], i["LastModified"]) for p, i in found.items()}


def chunk_keys(unit: Unit) -> list[str]:
    tile = SITE.tile(unit.tile_id)
    t = CALENDAR.index(unit.month)
    return [f"{v.name}/{t}.{tile.iy}.{tile.ix}" for v in MONTHLY]


def digests(store: Store) -> dict[str, str]:
    """The MD5 of every object under the store root (S3: its ETag, from one listing)."""
    return {
        k: v[0].strip('"') if isinstance(v, tuple) else hashlib.md5(v).hexdigest()
        for k, v in objects(store).items()
    }


def free_port() -> int:
    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_unit_is(store: Store, unit: Unit) -> None:
    want = unit_ds(SITE.tile(unit.tile_id), unit.month)
    got = store.read_unit(unit)
    for v in MONTHLY:
        np.testing.assert_array_equal(got[v.name].values, want[v.name].values)
        assert got[v.name].dtype == v.dtype


# ---------------------------------------------------------------------------- S3


def with_bucket(s3_server: str) -> str:
    """The S3 server's endpoint, with the store tests' bucket (made by the first caller)."""
    client = s3_client(s3_server)
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)  # no region: moto refuses a constraint
    return s3_server


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )


def s3_settings(endpoint: str) -> Settings:
    return Settings(s3_endpoint_url=endpoint, s3_key=KEY, s3_secret=SECRET)


def new_location(kind: str, tmp_path: Path, s3_endpoint: str | None) -> StoreLocation:
    """A fresh, empty location for a store: a local folder, or a prefix in the bucket."""
    if kind == "local":
        return StoreLocation(str(tmp_path / "site.zarr"))
    assert s3_endpoint is not None
    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}/site.zarr"
    return StoreLocation.from_settings(url, s3_settings(s3_endpoint))
