"""STAC catalogs nampo searches: named profiles, retrying HTTP, paging and search functions.

This is the only module that imports ``pystac_client``. Items travel as plain dicts
(``items_as_dicts``): ``pystac.Item.from_dict`` migrates ``proj:epsg`` to ``proj:code``,
which stackstac cannot read. :func:`search` returns those dicts; :func:`search_scenes`
returns them normalised (:mod:`nampo.io.scenes`) for the cube loader.

Retries
-------
Every HTTP request (the landing page and each search page, GET or POST) goes through one
loop of nampo's own (:class:`RetryPolicy`), not urllib3's ``Retry``: pystac-client's
default ``max_retries=5`` retries GETs only (POST is not in urllib3's allowed methods, and
Earth Search and Planetary Computer page with POST), sleeps whatever ``Retry-After`` says
(up to 6 hours by default) and has no overall time limit. nampo's loop retries HTTP 408,
429, 500, 502, 503 and 504, read and connect timeouts and dropped connections, waits what
``Retry-After`` asks (seconds or an HTTP date) or else an exponential backoff, and stops
at a number of attempts or a time budget, whichever comes first. A refused connection is
not retried (nothing listens there).

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
import email.utils
import logging
import re
import time as _time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from http import HTTPStatus
from typing import Any

import requests
from pystac import STACError
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from pystac_client.warnings import DoesNotConformTo
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from urllib3.exceptions import NewConnectionError

from nampo.errors import CatalogError, CatalogWarning
from nampo.io.scenes import BandAsset, NormalisedItem, dedupe, normalise

__all__ = [
    "PROFILES",
    "BandAsset",
    "CatalogProfile",
    "NormalisedItem",
    "RetryPolicy",
    "get_profile",
    "normalise",
    "parse_retry_after",
    "search",
    "search_scenes",
]

logger = logging.getLogger(__name__)


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

    def sign_scene(self, scene: NormalisedItem) -> NormalisedItem:
        """`scene` with readable band hrefs (the same scene when hrefs are public)."""
        if self.signer is None:
            return scene
        return normalise(self.sign(scene.stac))


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


# --------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth another try: timeouts, rate limits and passing server faults."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one HTTP request to a STAC API.

    The limits apply to each request (the landing page, each page of a search) on its
    own. Waits are ``Retry-After`` when the server sends it, else `backoff` doubled after
    every failure, at most `backoff_max`.

    Examples
    --------
    >>> RetryPolicy().waits()
    [1.0, 2.0, 4.0, 8.0]
    >>> RetryPolicy(attempts=1).waits()   # no retries
    []
    """

    attempts: int = 5
    """Most attempts per request, the first included (1: never retry)."""
    budget: float = 120.0
    """Seconds from the first attempt within which the request must have succeeded: no
    wait is begun that would end past it, and each attempt's timeout is cut to what is
    left of it."""
    backoff: float = 1.0
    """Seconds to wait after the first failure when the server sends no Retry-After."""
    backoff_max: float = 30.0
    """Longest backoff wait (Retry-After is honoured up to the budget)."""
    statuses: frozenset[int] = RETRY_STATUSES
    """HTTP statuses that are retried; every other error status fails at once."""
    sleep: Callable[[float], None] = field(default=_time.sleep, repr=False, compare=False)
    """Called to wait (tests pass a recorder)."""
    clock: Callable[[], float] = field(default=_time.monotonic, repr=False, compare=False)
    """Monotonic seconds, for the budget."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")
        if self.budget <= 0 or self.backoff < 0 or self.backoff_max < 0:
            raise ValueError(
                f"budget must be > 0 and backoffs >= 0 (got budget={self.budget}, "
                f"backoff={self.backoff}, backoff_max={self.backoff_max})"
            )

    def backoff_wait(self, failures: int) -> float:
        """Wait after the `failures`-th failure when the server gives no Retry-After."""
        return min(self.backoff * 2 ** (failures - 1), self.backoff_max)

    def waits(self) -> list[float]:
        """The backoff waits of a request that keeps failing (without Retry-After)."""
        return [self.backoff_wait(n) for n in range(1, self.attempts)]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: delta-seconds or an HTTP date.

    None when the header is absent or unreadable; a date in the past gives 0.

    >>> parse_retry_after("7")
    7.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT",
    ...                   now=datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC))
    10.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates: UTC per RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _RetryingStacApiIO(StacApiIO):
    """pystac-client's IO with :class:`RetryPolicy` around every request.

    Every request of a search, the landing page included, passes through
    :meth:`request`; urllib3's own retries are turned off (``max_retries=None``) so the
    two do not multiply.
    """

    def __init__(self, policy: RetryPolicy, timeout: float) -> None:
        super().__init__(timeout=timeout, max_retries=None)
        self.policy = policy
        self.attempt_timeout = timeout
        self._last_response: requests.Response | None = None
        # pystac-client keeps only status and text of an error response; the hook keeps
        # the response itself for its Retry-After header.
        self.session.hooks["response"].append(self._keep_response)

    def _keep_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_response = response

    def update(self, *args: Any, timeout: Any = None, **kwargs: Any) -> None:
        super().update(*args, timeout=timeout, **kwargs)
        if timeout is not None:
            self.attempt_timeout = timeout

    def request(
        self,
        href: str,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> str:
        policy = self.policy
        verb = (method or "GET").upper()
        start = policy.clock()
        attempt = 0
        while True:
            attempt += 1
            left = policy.budget - (policy.clock() - start)
            self.timeout = min(self.attempt_timeout, max(left, 0.001))
            self._last_response = None
            try:
                return super().request(href, method=method, headers=headers, parameters=parameters)
            except APIError as exc:
                failure = self._retryable(exc)
                if failure is None:
                    raise
                last, wait = failure
                error = exc
            if wait is None:
                wait = policy.backoff_wait(attempt)
            elapsed = policy.clock() - start
            times = f"{attempt} time{'s' * (attempt > 1)}"
            gave_up = f"STAC API request {verb} {href} failed {times} in {elapsed:.1f} s"
            if attempt >= policy.attempts:
                raise CatalogError(f"{gave_up}; last: {last}") from error
            if elapsed + wait > policy.budget:
                raise CatalogError(
                    f"{gave_up}; last: {last}; waiting {wait:g} s more would pass the "
                    f"{policy.budget:g} s retry budget"
                ) from error
            logger.warning(
                "%s %s: %s; retry %d of %d in %.1f s",
                verb,
                href,
                last,
                attempt,
                policy.attempts - 1,
                wait,
            )
            policy.sleep(wait)

    def _retryable(self, exc: APIError) -> tuple[str, float | None] | None:
        """(what went wrong, Retry-After seconds or None), or None when not worth a retry."""
        status = getattr(exc, "status_code", None)
        if status is not None:
            if status not in self.policy.statuses:
                return None
            response = self._last_response
            retry_after = parse_retry_after(
                response.headers.get("Retry-After") if response is not None else None
            )
            return f"HTTP {status} {_phrase(status)}".rstrip(), retry_after
        cause = exc.__context__
        if isinstance(cause, requests.Timeout):
            return f"no answer within {self.timeout:g} s", None
        if isinstance(cause, requests.ConnectionError):
            reason = getattr(cause.args[0], "reason", None) if cause.args else None
            if isinstance(reason, NewConnectionError):  # refused, or no such host
                return None
            return "connection dropped", None
        return None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# --------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------

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
    io = _RetryingStacApiIO(retry or RetryPolicy(), timeout)
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
        items = [item for item in items if _cloud(item) is not None and _cloud(item) <= max_cloud]
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
        return f"the STAC API at {root} answered HTTP {status} {_phrase(status)}: {text}"
    return f"STAC search at {root} failed: {text}"
