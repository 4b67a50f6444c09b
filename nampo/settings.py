"""Typed settings, read once at the edge (CLI, flows) and passed down as arguments.

Library code never reads ``os.environ``; it receives a :class:`Settings` (or the few values
it needs) from its caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from nampo.errors import NampoError

__all__ = ["Settings", "SettingsError"]

PREFIX = "NAMPO_"


class SettingsError(NampoError, ValueError):
    """A ``NAMPO_*`` variable has a value nampo cannot use (the message names it)."""


def _default_home() -> Path:
    return Path.home() / ".nampo"


class Settings(BaseSettings):
    """Everything nampo reads from its environment (prefix ``NAMPO_``)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None

    home: Path = Field(default_factory=_default_home)
    """Root folder of local state: rendered archives, the local STAC API's database, stores."""

    render_workers: int = Field(default=0, ge=0)
    """Processes used to render scenario archives (0: one per core)."""

    catalog_timeout: float = Field(default=30.0, gt=0)
    """Seconds each attempt of a STAC API request may take before it is retried."""

    s3_endpoint_url: str | None = None
    """Endpoint of an S3-protocol server (MinIO, Ceph, moto: ``http://host:port``); None
    means AWS S3 itself. Used for ``s3://`` store URLs."""

    s3_key: str | None = None
    """Access key id for ``s3://`` stores (None: boto's own credential chain)."""

    s3_secret: SecretStr | None = None
    """Secret access key for ``s3://`` stores (never printed)."""

    s3_region: str | None = None
    """Region of the S3 service, when it needs one (AWS outside us-east-1)."""

    sites: str | None = None
    """Registry of watched sites: a folder or an object-store prefix beside the stores
    (``s3://bucket/sites/``); default: NAMPO_HOME/sites."""

    stores: str | None = None
    """Where sites' stores are made by default (``<stores>/<site>.zarr``): a folder or an
    object-store prefix (``s3://bucket/stores``); default: NAMPO_HOME/stores."""

    read_threads: int = Field(default=16, ge=1, le=256)
    """Remote assets (COGs over HTTP) a worker reads at once for one unit: their round
    trips (20-80 ms in the cloud) overlap. Local files are read one at a time."""

    read_ahead_mib: int = Field(default=256, ge=0, le=4096)
    """MiB of decoded blocks a unit may read ahead when it opens a remote file (the blocks
    of the part of the site its worker computes, kept in GDAL's block cache for the next
    tiles); 0 turns the read-ahead off (fewer bytes, about twice the requests)."""

    gdal_cache_mib: int = Field(default=64, ge=8, le=4096)
    """GDAL's block cache per worker process, in MiB, outside the read-ahead (which adds
    its own budget while a unit reads ahead: at most both together per worker)."""

    @property
    def sites_url(self) -> str:
        return self.sites or str(self.home / "sites")

    def store_url(self, site: str) -> str:
        """The default store of the site called `site`."""
        root = self.stores or str(self.home / "stores")
        return f"{root.rstrip('/')}/{site}.zarr"

    @property
    def archives_dir(self) -> Path:
        return self.home / "archives"

    @property
    def stac_dir(self) -> Path:
        return self.home / "stac"


def _explain(exc: ValidationError) -> str:
    """One line per bad variable, named as the operator sets it (``NAMPO_READ_THREADS``)."""
    lines = []
    for error in exc.errors():
        name = PREFIX + "_".join(str(part) for part in error["loc"]).upper()
        value = error.get("input")
        lines.append(f"{name}={value!r}: {error['msg']}")
    return "invalid settings: " + "; ".join(lines)
