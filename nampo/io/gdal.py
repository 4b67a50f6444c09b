"""GDAL settings for reading COGs: one frozen object, passed with every load.

No module of nampo sets GDAL options globally (no ``os.environ``, no ``rasterio.Env``
left open, no ``odc.stac.configure_rio``): :class:`GdalSettings` travels with each call,
is pickled into the Dask graph with the tasks that read, and is applied there. This is
the only module that knows GDAL option names; :mod:`nampo.io.cube` turns the layers into
stackstac's ``LayeredEnv`` and odc-stac's reader environment.

Why each option is set: docs/cube.md, "GDAL settings".
"""

from __future__ import annotations

import ctypes
import functools
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import rasterio
from rasterio.errors import RasterioError

Value = str | int | float | bool


__all__ = ["GdalSettings", "forget_remote", "open_remote_retried"]

T = TypeVar("T")


@dataclass(frozen=True)
class GdalSettings:
    """GDAL configuration for reading Cloud-Optimized GeoTIFFs (frozen, picklable).

    Examples
    --------
    >>> settings = GdalSettings(http_max_retry=3)
    >>> settings.open_options()["GDAL_HTTP_MAX_RETRY"]
    '3'
    >>> with settings.env():                          # doctest: +SKIP
    ...     rasterio.open(href).profile
    """

    disable_readdir_on_open: Literal["EMPTY_DIR", "TRUE", "FALSE"] = "EMPTY_DIR"
    """``GDAL_DISABLE_READDIR_ON_OPEN``: do not list a remote folder on open."""
    allowed_extensions: tuple[str, ...] = (".tif", ".tiff", ".TIF", ".TIFF")
    """``CPL_VSIL_CURL_ALLOWED_EXTENSIONS``: the only remote names GDAL may look for
    (empty: no restriction)."""
    http_max_retry: int = 5
    """``GDAL_HTTP_MAX_RETRY``: retries of an HTTP request that got 429 or 5xx."""
    http_retry_delay: float = 1.0
    """``GDAL_HTTP_RETRY_DELAY``: seconds before the first retry (then doubled)."""
    http_timeout: int = 60
    """``GDAL_HTTP_TIMEOUT``: seconds before an HTTP request is given up."""
    vsi_cache_on_open: bool = True
    """``VSI_CACHE`` while opening files (cheap repeated opens of one header)."""
    vsi_cache_size: int = 25_000_000
    """``VSI_CACHE_SIZE`` in bytes, per open file."""
    cache_max_mb: int = 64
    """``GDAL_CACHEMAX``: the decoded-block cache of a process, in MB. GDAL's default (5 % of
    RAM) lets a worker that keeps files open (cube.OPEN_FILES) hold its blocks by the
    gigabyte; a unit decodes each block it needs once, so a small cache loses nothing."""
    num_threads: int | Literal["ALL_CPUS"] = 1
    """``GDAL_NUM_THREADS``: decoding/warping threads per read (Dask parallelises reads)."""
    merge_consecutive_ranges: bool = True
    """``GDAL_HTTP_MERGE_CONSECUTIVE_RANGES``: one request for adjacent blocks."""
    http_multiplex: bool = True
    """``GDAL_HTTP_MULTIPLEX``: HTTP/2 multiplexing when the server supports it."""
    requester_pays: bool = False
    """``AWS_REQUEST_PAYER=requester`` (Landsat hrefs on ``s3://usgs-landsat``)."""
    extra: tuple[tuple[str, str], ...] = field(default=())
    """Any other ``(option, value)`` pairs, applied last (e.g. ``("AWS_NO_SIGN_REQUEST",
    "YES")``). A tuple, not a dict, so the settings stay hashable."""

    def __post_init__(self) -> None:
        if self.http_max_retry < 0:
            raise ValueError(f"http_max_retry must be >= 0, not {self.http_max_retry}")
        if self.cache_max_mb < 1:
            raise ValueError(f"cache_max_mb must be >= 1, not {self.cache_max_mb}")
        if self.http_retry_delay < 0:
            raise ValueError(f"http_retry_delay must be >= 0, not {self.http_retry_delay}")
        if self.num_threads != "ALL_CPUS" and (
            not isinstance(self.num_threads, int) or self.num_threads < 1
        ):
            raise ValueError(
                f"num_threads must be an int >= 1 or 'ALL_CPUS', not {self.num_threads!r}"
            )
        for pair in self.extra:
            if len(pair) != 2 or not all(isinstance(v, str) for v in pair):
                raise ValueError(f"extra must hold (option, value) string pairs, not {pair!r}")

    # ----------------------------------------------------------------------------------
    # Layers: always < open, always < read (the layering stackstac's LayeredEnv uses)
    # ----------------------------------------------------------------------------------

    def always_options(self) -> dict[str, str | int]:
        """Options for every GDAL call."""
        opts: dict[str, Value] = {
            "GDAL_DISABLE_READDIR_ON_OPEN": self.disable_readdir_on_open,
            "GDAL_HTTP_MAX_RETRY": self.http_max_retry,
            "GDAL_HTTP_RETRY_DELAY": self.http_retry_delay,
            "GDAL_HTTP_TIMEOUT": self.http_timeout,
            "GDAL_NUM_THREADS": self.num_threads,
            "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": self.merge_consecutive_ranges,
            "GDAL_HTTP_MULTIPLEX": self.http_multiplex,
            "VSI_CACHE_SIZE": self.vsi_cache_size,
        }
        if self.allowed_extensions:
            opts["CPL_VSIL_CURL_ALLOWED_EXTENSIONS"] = ",".join(self.allowed_extensions)
        if self.requester_pays:
            opts["AWS_REQUEST_PAYER"] = "requester"
        out: dict[str, str | int] = {key: _text(value) for key, value in opts.items()}
        # An int of bytes: rasterio sets this one with GDALSetCacheMax64, not as text.
        out["GDAL_CACHEMAX"] = self.cache_max_mb * 2**20
        out.update(dict(self.extra))
        return out

    def open_options(self) -> dict[str, str | int]:
        """Options while opening a file (header reads)."""
        return {**self.always_options(), "VSI_CACHE": _text(self.vsi_cache_on_open)}

    def read_options(self) -> dict[str, str | int]:
        """Options while reading pixels (blocks are read once: no cache)."""
        return {**self.always_options(), "VSI_CACHE": "FALSE"}

    def layers(self) -> dict[str, dict[str, str | int]]:
        """``{"always": ..., "open": ..., "read": ...}``: only what each layer adds."""
        always = self.always_options()
        return {
            "always": always,
            "open": {k: v for k, v in self.open_options().items() if always.get(k) != v},
            "read": {k: v for k, v in self.read_options().items() if always.get(k) != v},
        }

    def env(self, phase: Literal["open", "read"] = "open") -> rasterio.Env:
        """A ``rasterio.Env`` with these settings (enter it in the thread that reads)."""
        options = self.open_options() if phase == "open" else self.read_options()
        return rasterio.Env(**options)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> GdalSettings:
        """Settings from a plain mapping of field names (e.g. pydantic-settings output)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown GDAL settings {unknown}; valid: {sorted(known)}")
        kwargs: dict[str, Any] = dict(values)
        for key in ("allowed_extensions", "extra"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(
                    tuple(v) if isinstance(v, list | tuple) else v for v in kwargs[key]
                )
        return cls(**kwargs)


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "YES" if value else "NO"
    return str(value)


# A failed open of a remote file is remembered by GDAL for the life of the process: after
# one dropped connection or a 503 past GDAL_HTTP_MAX_RETRY, every later open of the same
# URL fails at once with "does not exist in the file system" and makes no request
# (OSGeo/gdal#8922; measured on the cloud stand-in). On a worker that keeps running for
# a whole backfill, one lost request would lose the scene in every unit after it.
_TRANSIENT = re.compile(
    r".*(HTTP response code: (429|5\d\d)\b|CURL error|Empty reply|Connection reset|"
    r"Operation timed out|Timeout was reached|Couldn't connect|Recv failure|Send failure|"
    # what GDAL says of a file whose earlier open failed (it makes no request): forgotten
    # now, the retry asks the server, which answers 404 if the file is really missing
    r"does not exist in the file system)",
    re.DOTALL,
)
_REMOTE = (("http://", "/vsicurl/"), ("https://", "/vsicurl/"), ("s3://", "/vsis3/"))


def forget_remote(href: str) -> bool:
    """Clear what GDAL remembers of the remote file `href` (its size, whether it exists,
    the ranges it fetched), so that the next open asks the server again. Whether `href`
    is remote and was forgotten (a local path is left alone)."""
    name = href
    for scheme, prefix in _REMOTE:
        if href.startswith(scheme):
            name = prefix + (href if prefix == "/vsicurl/" else href.removeprefix(scheme))
    clear = _partial_clear_cache()
    if not name.startswith("/vsi") or clear is None:
        return False
    clear(name.encode())
    return True


@functools.cache
def _partial_clear_cache() -> Callable[[bytes], None] | None:
    """GDAL's ``VSICurlPartialClearCache`` from the libgdal rasterio has loaded (not in
    rasterio's API), or None where it cannot be found."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgdal" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            function = ctypes.CDLL(path).VSICurlPartialClearCache
        except (OSError, AttributeError):
            continue
        function.argtypes = [ctypes.c_char_p]
        function.restype = None
        return function
    return None


def open_remote_retried(
    href: str, open_: Callable[[], T], attempts: int = 3, delay: float = 0.5
) -> T:
    """``open_()`` (an open of `href`), tried up to `attempts` times while it fails the way
    a busy or flaky server makes it fail (429/5xx past GDAL's own retries, a dropped
    connection, a timeout), `delay` seconds before the second try and doubled after.
    Every failure makes GDAL forget the file, so that a retry, or a later open in this
    process, asks the server again. Other failures (404, 403, not a raster) raise at
    once."""
    for attempt in range(attempts):
        try:
            return open_()
        except RasterioError as exc:
            remote = forget_remote(href)
            if not remote or attempt + 1 == attempts or not _TRANSIENT.match(str(exc)):
                raise
            time.sleep(delay * 2**attempt)
    raise AssertionError("unreachable")
