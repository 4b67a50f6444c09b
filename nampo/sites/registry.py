"""The registry of watched sites: one document per site (``<name>.yaml``) in a folder or
under an object-store prefix (``s3://bucket/sites/``), chosen once in the settings
(``NAMPO_SITES``).

Writing an entry is atomic: on a local disk the document is written to a temporary file
beside it and linked (or renamed) into place; on object storage it is one PUT, which
readers see whole or not at all. Two writers therefore never leave a torn entry. Adding
refuses a name that is already registered (on a local disk the check and the write are
one step; on object storage two writers adding the *same* name at the same instant both
succeed and the last one wins, each entry whole).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
import yaml

from nampo.sites.definition import SiteDefinition, SiteError, parse_definition
from nampo.sites.site import Site

if TYPE_CHECKING:
    from nampo.settings import Settings

__all__ = ["Registry", "load_definition"]

SUFFIX = ".yaml"


def load_definition(path: str | os.PathLike) -> SiteDefinition:
    """Read and check a site definition file (YAML or JSON: JSON is YAML)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SiteError(f"{path}: cannot read the site definition: {exc.strerror}") from None
    return _parse(text, str(path))


def _parse(text: str, source: str) -> SiteDefinition:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SiteError(
            f"{source}: not valid YAML or JSON: {getattr(exc, 'problem', exc)}"
        ) from None
    return parse_definition(data, source)


def dump_definition(definition: SiteDefinition) -> bytes:
    return yaml.safe_dump(definition.to_document(), sort_keys=False, allow_unicode=True).encode()


class Registry:
    """The watched sites at `url` (a folder path, ``file://`` or ``s3://`` URL)."""

    def __init__(self, url: str | os.PathLike, storage_options: Mapping[str, Any] | None = None):
        url = os.fspath(url)
        self.fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        self.url = url
        self._root = root.rstrip("/")
        self._local = "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )

    def __repr__(self) -> str:
        return f"Registry({self.url!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        """The registry the settings name, with their S3 endpoint and credentials."""
        from nampo.io.store.location import StoreLocation

        loc = StoreLocation.from_settings(settings.sites_url, settings)
        return cls(loc.url, loc.storage_options)

    def _path(self, name: str) -> str:
        return f"{self._root}/{name}{SUFFIX}"

    def names(self) -> list[str]:
        """Names of the registered sites, sorted."""
        try:
            paths = self.fs.ls(self._root, detail=False)
        except FileNotFoundError:
            return []
        out = []
        for p in paths:
            base = p.rstrip("/").rsplit("/", 1)[-1]
            if base.endswith(SUFFIX) and not base.startswith("."):
                out.append(base[: -len(SUFFIX)])
        return sorted(out)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.fs.exists(self._path(name))

    def get(self, name: str) -> SiteDefinition:
        """The definition of the site `name`; an unknown name is an error listing the known."""
        try:
            text = self.fs.cat_file(self._path(name)).decode()
        except FileNotFoundError:
            known = ", ".join(self.names()) or "none"
            raise SiteError(
                f"unknown site {name!r}; registered sites in {self.url}: {known} "
                "(add one with `nampo site add`)"
            ) from None
        definition = _parse(text, f"{self.url}/{name}{SUFFIX}")
        if definition.name != name:
            raise SiteError(f"{self.url}/{name}{SUFFIX}: holds the site {definition.name!r}")
        return definition

    def site(self, name: str) -> Site:
        return self.get(name).to_site()

    def add(self, definition: SiteDefinition, replace: bool = False) -> str:
        """Register `definition` with its grid pinned; returns the entry's URL. Refuses a
        name already registered unless `replace`."""
        data = dump_definition(definition.pinned())
        path = self._path(definition.name)
        if self._local:
            self._add_local(path, data, replace)
        else:
            if not replace and self.fs.exists(path):
                raise self._exists(definition.name)
            self.fs.pipe_file(path, data)
        return f"{self.url.rstrip('/')}/{definition.name}{SUFFIX}"

    def _add_local(self, path: str, data: bytes, replace: bool) -> None:
        folder = Path(path).parent
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{Path(path).name}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            if replace:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)  # fails if the name is taken: check and write in one step
        except FileExistsError:
            raise self._exists(Path(path).name[: -len(SUFFIX)]) from None
        finally:
            tmp.unlink(missing_ok=True)

    def _exists(self, name: str) -> SiteError:
        return SiteError(
            f"site {name!r} is already registered in {self.url}; remove it first or replace it"
        )

    def remove(self, name: str) -> None:
        """Unregister `name` (its store is kept)."""
        if name not in self:
            self.get(name)  # raises the unknown-site error
        self.fs.rm_file(self._path(name))
