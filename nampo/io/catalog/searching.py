"""Item search in a STAC API: every page followed (with a guard against paging that does
not advance), cloud cover checked, duplicate acquisitions dropped, items sorted by time;
:func:`search_scenes` normalises them for the cube loader."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

import requests
from pystac import STACError
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.warnings import DoesNotConformTo
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from nampo.errors import CatalogError, CatalogWarning
from nampo.io.catalog.profiles import CatalogProfile, get_profile
from nampo.io.catalog.retries import RetryingStacApiIO, RetryPolicy, phrase
from nampo.io.scenes import NormalisedItem, dedupe, normalise

__all__ = ["STALE_PAGES", "search", "search_scenes"]

# one logger for the catalog package
logger = logging.getLogger(__package__)


STALE_PAGES = 3
"""Consecutive pages without a new item after which paging is taken to be looping."""


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
    retry: RetryPolicy | None = None,
    deduplicate: bool = True,
    collection: str | None = None,
) -> list[dict]:
    """Items of the profile's collection over a geometry and period, oldest first.

    All pages are followed (GET or POST ``next`` links, body tokens included) until a page
    is empty or has no ``next`` link.

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
        Keep items with ``eo:cloud_cover`` <= this (percent); None keeps all. Sent to the
        API as a CQL2 filter and checked again on the items (an API that ignores the
        filter still gives the right answer).
    limit
        Page size asked of the API; all matching items are returned whatever its value.
    sign
        Pass items through the profile's signing hook.
    timeout
        Seconds to wait for each HTTP response.
    retry
        Retries of each HTTP request (default: :class:`RetryPolicy()`).
    deduplicate
        Keep each acquisition once (see :func:`nampo.io.scenes.dedupe`).
    collection
        Collection to search instead of the profile's (``sentinel-2-l1c`` for scenes
        loaded by ``nampo import``, ``landsat-c2-l2``).

    Returns
    -------
    list of dict
        STAC items as plain dicts, sorted by datetime then id.

    Raises
    ------
    CatalogError
        If the API cannot be reached, keeps failing, or refuses the search (one line that
        names the URL and, for HTTP errors, the status).
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
    io = RetryingStacApiIO(retry or RetryPolicy(), timeout)
    try:
        client = Client.open(root, stac_io=io, timeout=timeout)
        if cql2 is not None:
            # Earth Search v1 answers CQL2 filters but does not list the Filter conformance
            # class on its landing page (recorded 2025-07-31); pystac-client would warn.
            client.add_conforms_to("FILTER")
        found = client.search(
            collections=[collection or profile.collection],
            intersects=dict(geometry_lonlat),
            datetime=period,
            filter=cql2,
            filter_lang="cql2-json" if cql2 else None,
            limit=limit,
        )
        items = _all_pages(found.pages_as_dicts(), root)
    except DoesNotConformTo as exc:
        raise CatalogError(f"{root} is not a STAC API with item search ({exc})") from exc
    # APIError covers refused connections and HTTP errors; requests' errors are OSErrors;
    # STACError and NotImplementedError mean the URL is not a searchable STAC API.
    except (APIError, STACError, NotImplementedError, OSError, ValueError) as exc:
        raise CatalogError(_describe(exc, root, timeout)) from exc

    if max_cloud is not None:
        items = [item for item in items if (c := _cloud(item)) is not None and c <= max_cloud]
    if deduplicate:
        items = dedupe(items)
    items.sort(key=lambda item: (_item_datetime(item), item["id"]))
    return [profile.sign(item) for item in items] if sign else items


def _all_pages(pages, root: str) -> list[dict]:
    """The features of every page, with a guard against APIs whose paging never ends."""
    items: list[dict] = []
    seen: set[str] = set()
    previous_next: dict | None = None
    stale = 0
    for number, page in enumerate(pages, start=1):
        features = page.get("features") or []
        fresh = [f for f in features if f.get("id") not in seen]
        link = next((ln for ln in page.get("links", []) if ln.get("rel") == "next"), None)
        if link is not None and link == previous_next:
            raise CatalogError(
                f"the STAC API at {root} gave page {number} the same next link as page "
                f"{number - 1}: its paging does not advance"
            )
        previous_next = link
        stale = 0 if fresh else stale + 1
        if stale >= STALE_PAGES:
            raise CatalogError(
                f"the STAC API at {root} sent {stale} pages in a row (up to page {number}) "
                "with no new item: its paging does not advance"
            )
        seen.update(str(f.get("id")) for f in features)
        items.extend(features)
        logger.debug("page %d from %s: %d items (%d new)", number, root, len(features), len(fresh))
    return items


def search_scenes(
    profile: CatalogProfile | str,
    url: str | None,
    geometry_lonlat: BaseGeometry | Mapping[str, Any],
    start: date,
    end: date,
    max_cloud: float | None,
    limit: int = 100,
    *,
    sign: bool = False,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    skip_invalid: bool = False,
    collection: str | None = None,
) -> list[NormalisedItem]:
    """Like :func:`search`, with each item in nampo's internal form, oldest first.

    Parameters
    ----------
    sign
        Sign hrefs now. Off by default: signed hrefs expire, so the cube loader should
        call ``profile.sign_scene(scene)`` right before reading.
    skip_invalid
        Skip items :func:`~nampo.io.scenes.normalise` refuses, with a
        :class:`~nampo.errors.CatalogWarning` each, instead of raising.

    Other parameters are those of :func:`search`.

    Examples
    --------
    >>> scenes = search_scenes("earth-search", None, site, date(2023, 1, 1),
    ...                        date(2023, 3, 31), max_cloud=30)          # doctest: +SKIP
    >>> scenes[0].bands["nir08"].resolution, scenes[0].epsg              # doctest: +SKIP
    (20.0, 32651)
    """
    items = search(
        profile,
        url,
        geometry_lonlat,
        start,
        end,
        max_cloud,
        limit,
        sign=sign,
        timeout=timeout,
        retry=retry,
        collection=collection,
    )
    scenes: list[NormalisedItem] = []
    for item in items:
        try:
            scenes.append(normalise(item))
        except CatalogError as exc:
            if not skip_invalid:
                raise
            warnings.warn(CatalogWarning(f"skipped: {exc}"), stacklevel=2)
    return scenes


def _cloud(item: dict) -> float | None:
    value = item.get("properties", {}).get("eo:cloud_cover")
    return None if value is None else float(value)


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
    status = getattr(exc, "status_code", None)
    if isinstance(exc, APIError) and status is not None:
        return f"the STAC API at {root} answered HTTP {status} {phrase(status)}: {text}"
    return f"STAC search at {root} failed: {text}"
