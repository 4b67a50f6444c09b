"""nampo.io.store's locations and write probe: settings and secrets, and failing fast, on
one line, on locations that cannot be written (an S3 server, moto, on loopback)."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest

from nampo.errors import StoreError
from nampo.io.store import Store, StoreLocation
from nampo.settings import Settings
from tests.store_helpers import (
    BUCKET,
    KEY,
    SECRET,
    free_port,
    objects,
    s3_client,
    s3_settings,
)
from tests.store_jobs import CALENDAR, SITE


def test_check_writable_passes_on_good_locations(location: StoreLocation) -> None:
    Store(location).check_writable()
    assert not [k for k in objects(Store(location)) if "probe" in k]


def test_check_writable_missing_bucket(s3_endpoint: str) -> None:
    url = "s3://no-such-bucket/site.zarr"
    store = Store(StoreLocation.from_settings(url, s3_settings(s3_endpoint)))
    message = _fails_fast(store)
    assert message == f"store {url} is not writable: bucket 'no-such-bucket' does not exist"
    buckets = s3_client(s3_endpoint).list_buckets()["Buckets"]
    assert "no-such-bucket" not in [b["Name"] for b in buckets]


def test_check_writable_refused_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = Store(StoreLocation.from_settings(f"s3://{BUCKET}/x.zarr", s3_settings(endpoint)))
    message = _fails_fast(store)
    assert message.startswith(f"store s3://{BUCKET}/x.zarr is not writable: connection to ")
    assert message.endswith(f"{endpoint} refused (nothing listens there)")


def test_check_writable_rejected_credentials(s3_endpoint: str, monkeypatch) -> None:
    from moto import settings as moto_settings

    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # check keys
    url = f"s3://{BUCKET}/creds/site.zarr"
    store = Store(StoreLocation.from_settings(url, s3_settings(s3_endpoint)))
    assert "access key is not known" in _fails_fast(store)


def test_check_writable_local_path_under_a_file(tmp_path: Path) -> None:
    # we run as root, so chmod cannot make a folder read-only: use a path under a file
    (tmp_path / "file").write_bytes(b"x")
    store = Store(tmp_path / "file" / "site.zarr")
    message = _fails_fast(store)
    assert message == (
        f"store {tmp_path}/file/site.zarr is not writable: "
        "a part of the path is a file, not a folder"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
    with pytest.raises(StoreError, match="a part of the path is a file, not a folder"):
        store.create(SITE, CALENDAR)


def _fails_fast(store: Store) -> str:
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        store.check_writable()
    # No retries: botocore's own take 12 s and more; a refused port answers in 0.2 s on a
    # quiet machine, the bound leaves room for a loaded one.
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "\n" not in message and SECRET not in message
    return message


def test_location_settings_and_pickling_hide_secrets(monkeypatch, s3_endpoint: str) -> None:
    monkeypatch.setenv("NAMPO_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("NAMPO_S3_KEY", KEY)
    monkeypatch.setenv("NAMPO_S3_SECRET", SECRET)
    settings = Settings()
    assert settings.s3_secret is not None and SECRET not in repr(settings)
    location = StoreLocation.from_settings(f"s3://{BUCKET}/p/site.zarr", settings)
    assert location.storage_options == {"endpoint_url": s3_endpoint, "key": KEY, "secret": SECRET}
    assert SECRET not in repr(location) and KEY not in str(location)
    store = Store(location).create(SITE, CALENDAR)
    assert SECRET not in repr(store)
    copy = pickle.loads(pickle.dumps(store))
    assert copy.site == SITE and copy.location == location
    assert StoreLocation("file:///tmp/a/../b.zarr").url == "/tmp/a/../b.zarr"
    assert StoreLocation("rel.zarr").url == str(Path.cwd() / "rel.zarr")
    region = Settings(s3_region="eu-west-3", s3_key="k", s3_secret=None, s3_endpoint_url=None)
    assert StoreLocation.from_settings("s3://b/c", region).storage_options == {
        "key": "k",
        "client_kwargs": {"region_name": "eu-west-3"},
    }
    assert StoreLocation.from_settings("/data/x.zarr", settings).storage_options == {}
