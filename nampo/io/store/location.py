"""Where a store lives: an fsspec URL and its filesystem's options, with credentials taken
from the settings and hidden from reprs."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec

if TYPE_CHECKING:
    from nampo.settings import Settings

__all__ = ["StoreLocation"]

_SECRET_OPTIONS = ("secret", "key", "token", "password", "session_token")


@dataclass(frozen=True)
class StoreLocation:
    """Where a store lives: an fsspec URL and the options of its filesystem.

    Picklable, so it travels to Dask workers; its repr hides credentials.
    """

    url: str
    """A local path (made absolute) or a URL such as ``s3://bucket/prefix/site.zarr``."""
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    """fsspec options (for s3fs: ``endpoint_url``, ``key``, ``secret``, ``client_kwargs``)."""

    def __post_init__(self) -> None:
        url = os.fspath(self.url)
        if fsspec.utils.get_protocol(url) in ("file", "local"):
            url = str(Path(fsspec.core.strip_protocol(url)).expanduser().absolute())
        object.__setattr__(self, "url", url.rstrip("/") or "/")
        object.__setattr__(self, "storage_options", dict(self.storage_options))

    def __repr__(self) -> str:
        opts = ", ".join(
            f"{k}={'***' if k in _SECRET_OPTIONS else repr(v)}"
            for k, v in self.storage_options.items()
        )
        return f"StoreLocation({self.url!r}{', ' + opts if opts else ''})"

    __str__ = __repr__

    def __hash__(self) -> int:  # storage options hold dicts
        return hash((self.url, json.dumps(self.storage_options, sort_keys=True, default=str)))

    @property
    def is_local(self) -> bool:
        return fsspec.utils.get_protocol(self.url) in ("file", "local")

    @classmethod
    def from_settings(cls, url: str | os.PathLike, settings: Settings) -> StoreLocation:
        """The location of `url`, with S3 endpoint and credentials from `settings`.

        Parameters
        ----------
        url
            A local path, ``file://...`` or ``s3://bucket/prefix``.
        settings
            A :class:`nampo.settings.Settings` (its ``s3_*`` fields are used for ``s3://``).

        Examples
        --------
        >>> StoreLocation.from_settings("s3://b/site.zarr", Settings(s3_key="k", s3_secret="s"))
        StoreLocation('s3://b/site.zarr', key=***, secret=***)
        """
        url = os.fspath(url)
        options: dict[str, Any] = {}
        if fsspec.utils.get_protocol(url) in ("s3", "s3a"):
            if settings.s3_endpoint_url:
                options["endpoint_url"] = settings.s3_endpoint_url
            if settings.s3_key:
                options["key"] = settings.s3_key
            if settings.s3_secret is not None:
                options["secret"] = settings.s3_secret.get_secret_value()
            if settings.s3_region:
                options["client_kwargs"] = {"region_name": settings.s3_region}
        return cls(url, options)
