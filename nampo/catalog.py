"""STAC catalogs nampo searches: named profiles and one search function.

This is the only module that imports ``pystac_client``. Items travel as plain dicts
(``items_as_dicts``): ``pystac.Item.from_dict`` migrates ``proj:epsg`` to ``proj:code``,
which stackstac cannot read.

Examples
--------
>>> from datetime import date
>>> items = search("earth-search", None, {"type": "Point", "coordinates": [125.38, 38.73]},
...                date(2018, 1, 1), date(2018, 3, 31), max_cloud=20)   # doctest: +SKIP
>>> items[0]["properties"]["datetime"]                                  # doctest: +SKIP
'2018-01-05T02:25:21.456000Z'
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import requests
from pystac import STACError
from pystac_client import Client
from pystac_client.exceptions import APIError
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from nampo.errors import CatalogError


def _sign_planetary_computer(item: dict) -> dict:
    """A copy of `item` whose asset hrefs carry a Planetary Computer SAS token."""
    try:
        import planetary_computer
    except ImportError as exc:
        raise CatalogError(
            "Planetary Computer asset hrefs must be signed, which needs the "
            "'planetary-computer' package (not installed)"
        ) from exc
    signed = copy.deepcopy(item)
    for asset in signed.get("assets", {}).values():
        # sign(str) exists in every release of the package; the dict overload does not.
        asset["href"] = planetary_computer.sign(asset["href"])
    return signed


@dataclass(frozen=True)
class CatalogProfile:
    """A STAC API nampo knows how to search."""

    name: str
    """Short name used on the command line and in settings."""
    url: str | None
    """Root URL of the STAC API; None when it is only known at run time (``local``)."""
    collection: str
    """Collection of Sentinel-2 L2A items in this catalog."""
    signer: Callable[[dict], dict] | None = None
    """Returns a copy of an item whose hrefs can be read (None: hrefs are public)."""

    def sign(self, item: dict) -> dict:
        """`item` with readable hrefs. Sign close to the read: tokens expire (about 45 min)."""
        return self.signer(item) if self.signer is not None else item


PROFILES: dict[str, CatalogProfile] = {
    profile.name: profile
    for profile in (
        CatalogProfile("local", None, "sentinel-2-l2a"),
        CatalogProfile(
            "earth-search", "https://earth-search.aws.element84.com/v1", "sentinel-2-l2a"
        ),
        CatalogProfile(
            "planetary-computer",
            "https://planetarycomputer.microsoft.com/api/stac/v1",
            "sentinel-2-l2a",
            signer=_sign_planetary_computer,
        ),
    )
}


def get_profile(name: str) -> CatalogProfile:
    """The profile called `name` (raises CatalogError listing the valid names)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise CatalogError(
            f"unknown catalog {name!r}; choose one of {', '.join(PROFILES)}"
        ) from None


def search(
    profile: CatalogProfile | str,
    url: str | None,
    geometry_lonlat: BaseGeometry | Mapping[str, Any],
    start: date,
    end: date,
    max_cloud: float | None,
    limit: int = 100,
    *,
    sign: bool = True,
    timeout: float = 30.0,
) -> list[dict]:
    """Items of the profile's collection over a geometry and period, oldest first.

    Parameters
    ----------
    profile
        A :class:`CatalogProfile` or its name (``local``, ``earth-search``,
        ``planetary-computer``).
    url
        Root URL of the STAC API; overrides the profile's (required for ``local``).
    geometry_lonlat
        Area of interest in EPSG:4326 (shapely geometry or GeoJSON dict); items must
        intersect it.
    start, end
        First and last day of the period, both included (UTC days).
    max_cloud
        Keep items with ``eo:cloud_cover`` <= this (percent); None keeps all.
    limit
        Page size asked of the API; all matching items are returned whatever its value.
    sign
        Pass items through the profile's signing hook.
    timeout
        Seconds to wait for each HTTP response.

    Returns
    -------
    list of dict
        STAC items as plain dicts, sorted by datetime then id.

    Raises
    ------
    CatalogError
        If the API cannot be reached or refuses the search (the message names the URL).
    """
    if isinstance(profile, str):
        profile = get_profile(profile)
    root = url or profile.url
    if root is None:
        raise CatalogError(f"catalog {profile.name!r} has no fixed URL: pass one")
    if isinstance(geometry_lonlat, BaseGeometry):
        geometry_lonlat = mapping(geometry_lonlat)
    if end < start:
        raise CatalogError(f"search period ends ({end}) before it starts ({start})")

    cql2: dict[str, Any] | None = None
    if max_cloud is not None:
        cql2 = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, float(max_cloud)]}
    # Explicit instants: pystac-client would expand a bare end date to 23:59:59 only.
    period = (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end, time.max, tzinfo=UTC),
    )
    try:
        client = Client.open(root, timeout=timeout)
        found = client.search(
            collections=[profile.collection],
            intersects=dict(geometry_lonlat),
            datetime=period,
            filter=cql2,
            filter_lang="cql2-json" if cql2 else None,
            limit=limit,
        )
        items = list(found.items_as_dicts())
    # APIError covers refused connections and HTTP errors; requests' errors are OSErrors;
    # STACError and NotImplementedError mean the URL is not a searchable STAC API.
    except (APIError, STACError, NotImplementedError, OSError, ValueError) as exc:
        raise CatalogError(_describe(exc, root, timeout)) from exc

    items.sort(key=lambda item: (_item_datetime(item), item["id"]))
    return [profile.sign(item) for item in items] if sign else items


def _item_datetime(item: dict) -> datetime:
    props = item["properties"]
    text = props.get("datetime") or props.get("start_datetime")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _describe(exc: BaseException, root: str, timeout: float) -> str:
    """One line for a failed search; pystac-client wraps requests' errors in APIError."""
    cause = exc.__context__ if isinstance(exc, APIError) else exc
    if isinstance(cause, requests.Timeout):
        return f"no answer from the STAC API at {root} within {timeout:g} s"
    if isinstance(cause, requests.ConnectionError):
        reason = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(cause))
        why = reason.group(1).strip() if reason else "connection failed"
        return f"cannot reach the STAC API at {root}: {why}"
    text = " ".join(str(exc).split())[:300] or type(exc).__name__
    return f"STAC search at {root} failed: {text}"
