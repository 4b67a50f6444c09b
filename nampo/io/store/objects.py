"""The objects under a store's root, through fsspec: get, put, list and delete by key, with
atomic local writes, the write probe, and one-line explanations of failures."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import fsspec

from nampo.errors import StoreError
from nampo.io.store.layout import RECORDS_DIR
from nampo.io.store.location import StoreLocation

__all__ = ["Objects", "explain"]


class Objects:
    """The objects of the store at `location`, by key (a path under the store root).

    Constructing does no I/O; the filesystem is made on first use. Not picklable (the
    filesystem holds event loops and sessions): :class:`nampo.io.store.Store` makes a new
    one after unpickling.
    """

    def __init__(self, location: StoreLocation) -> None:
        self.location = location
        self._fs_root: tuple[Any, str] | None = None

    @property
    def url(self) -> str:
        return self.location.url

    @property
    def fs(self) -> tuple[Any, str]:
        """The fsspec filesystem and the store root's path on it."""
        if self._fs_root is None:
            fs, root = fsspec.core.url_to_fs(self.url, **self.location.storage_options)
            self._fs_root = (fs, root.rstrip("/"))
        return self._fs_root

    def get(self, key: str) -> bytes | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The objects that exist among `keys` (missing ones left out)."""
        fs, root = self.fs
        if not keys:
            return {}
        paths = {f"{root}/{k}": k for k in keys}
        try:
            if self.location.is_local:
                out = {}
                for path, key in paths.items():
                    try:
                        out[key] = Path(path).read_bytes()
                    except (FileNotFoundError, NotADirectoryError):
                        pass
                return out
            got = fs.cat(list(paths), on_error="return")
        except Exception as exc:
            raise StoreError(
                f"cannot read store {self.url}: {explain(exc, self.location)}"
            ) from exc
        if not isinstance(got, dict):  # a single path comes back bare
            got = {next(iter(paths)): got}
        out = {}
        for path, value in got.items():
            if isinstance(value, FileNotFoundError):
                continue
            if isinstance(value, Exception):
                raise StoreError(
                    f"cannot read store {self.url}: {explain(value, self.location)}"
                ) from value
            out[paths.get(path, path[len(root) + 1 :])] = value
        return out

    def put_many(self, objects: Mapping[str, bytes], fs: tuple[Any, str] | None = None) -> None:
        """Write each object whole: a local file is replaced atomically, an S3 object put
        at once (on `fs` when given, the store's own filesystem otherwise)."""
        fs_, root = fs or self.fs
        if self.location.is_local:
            for key, data in objects.items():
                _put_local(Path(root, key), data)
        elif objects:
            fs_.pipe({f"{root}/{k}": v for k, v in objects.items()})

    def delete(self, key: str) -> None:
        """Delete an object; nothing when it does not exist."""
        fs, root = self.fs
        try:
            fs.rm_file(f"{root}/{key}")
        except FileNotFoundError:
            pass

    def keys_under(self, prefix: str) -> list[str]:
        """Keys under `prefix`, relative to it."""
        fs, root = self.fs
        base = f"{root}/{prefix}"
        try:
            fs.invalidate_cache(base)
            found = fs.find(base)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise StoreError(
                f"cannot list {prefix} in {self.url}: {explain(exc, self.location)}"
            ) from exc
        strip = base.rstrip("/") + "/"
        return [p[len(strip) :] for p in found if p.startswith(strip)]

    def top_names(self) -> set[str]:
        """Names at the top of the store root (empty when it does not exist); other
        failures are raised as they come."""
        fs, root = self.fs
        try:
            fs.invalidate_cache(root)
            return {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)}
        except FileNotFoundError:
            return set()

    def etags(self) -> dict[str, str]:
        """The ETag of every object under the root, by key, from one listing (empty when
        the root does not exist or the filesystem gives none)."""
        fs, root = self.fs
        try:
            fs.invalidate_cache(root)
            listing = fs.find(root, detail=True)
        except FileNotFoundError:
            listing = {}
        return {
            path[len(root) + 1 :]: str(info.get("ETag", "")).strip('"')
            for path, info in listing.items()
        }

    def modified(self, key: str) -> float | None:
        """When the object `key` was written (POSIX s), None when it does not exist."""
        fs, root = self.fs
        try:
            return _modified(fs.info(f"{root}/{key}"))
        except FileNotFoundError:
            return None

    def modified_under(self, prefix: str) -> list[float]:
        """When each object under `prefix` was written (POSIX s), fresh from the store."""
        fs, root = self.fs
        try:
            fs.invalidate_cache(f"{root}/{prefix}")
            found = fs.find(f"{root}/{prefix}", detail=True)
        except FileNotFoundError:
            return []
        return [_modified(i) for i in found.values()]

    def check_writable(self) -> None:
        """Write, read back and delete a small probe; StoreError (one line, no retries)
        naming why the location cannot be written. Creates nothing when it fails."""
        fs, root = self._probe_fs()
        # no folder of its own: removing one could race with another process's probe
        key = f"{RECORDS_DIR}/probe-{uuid.uuid4().hex}"
        body = f"nampo write probe {dt.datetime.now(dt.UTC).isoformat()}".encode()
        written = False
        try:
            self.put_many({key: body}, fs=(fs, root))
            written = True
            back = fs.cat_file(f"{root}/{key}")
            if back != body:
                raise StoreError(f"store {self.url} returned other bytes than it was given")
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"store {self.url} is not writable: {explain(exc, self.location)}"
            ) from exc
        finally:
            if written:
                try:
                    fs.rm_file(f"{root}/{key}")
                except OSError:
                    pass

    def _probe_fs(self) -> tuple[Any, str]:
        if self.location.is_local:
            return self.fs
        options = dict(self.location.storage_options)
        if fsspec.utils.get_protocol(self.url) in ("s3", "s3a"):
            # no retries and a short connect timeout: a refused port answers in 0.2 s,
            # not after botocore's 12 s of retries
            config = dict(options.get("config_kwargs", {}))
            config.update(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=30)
            options["config_kwargs"] = config
        return fsspec.core.url_to_fs(self.url, **options)


def _put_local(path: Path, data: bytes) -> None:
    """Write atomically: readers (and concurrent writers of the same bytes) never see a
    partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _modified(info: Mapping[str, Any]) -> float:
    """Modification time (POSIX s) of an fsspec file info: local files give ``mtime``,
    S3 objects ``LastModified``."""
    if "mtime" in info:
        return float(info["mtime"])
    modified = info.get("LastModified") or info.get("last_modified")
    if isinstance(modified, dt.datetime):
        return modified.timestamp()
    raise StoreError(f"no modification time in {sorted(info)}")


def explain(exc: BaseException, location: StoreLocation) -> str:
    """One line saying why an operation on `location` failed."""
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    names = {type(c).__name__ for c in chain}
    text = " ".join(str(c) for c in chain)
    endpoint = location.storage_options.get("endpoint_url") or "the S3 endpoint"
    bucket = location.url.split("://", 1)[-1].split("/", 1)[0]
    if "NoSuchBucket" in names or "bucket does not exist" in text:
        return f"bucket {bucket!r} does not exist"
    if "InvalidAccessKeyId" in names or "Access Key Id you provided does not exist" in text:
        return "the access key is not known to the server (check NAMPO_S3_KEY)"
    if "SignatureDoesNotMatch" in names or "signature we calculated does not match" in text:
        return "the secret key was rejected (check NAMPO_S3_SECRET)"
    if "NoCredentialsError" in names:
        return "no credentials (set NAMPO_S3_KEY and NAMPO_S3_SECRET)"
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return f"connection to {endpoint} refused (nothing listens there)"
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError"}:
        return f"cannot reach {endpoint}"
    if any(isinstance(c, NotADirectoryError | FileExistsError) for c in chain):
        return "a part of the path is a file, not a folder"
    if any(isinstance(c, PermissionError) for c in chain) or "AccessDenied" in text:
        return "permission denied"
    if any(getattr(c, "errno", None) == 30 for c in chain):  # EROFS
        return "read-only file system"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]
