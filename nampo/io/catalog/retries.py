"""Retries of every HTTP request to a STAC API: :class:`RetryPolicy` and the pystac-client
IO that applies it (docs/catalog.md, "Retries")."""

from __future__ import annotations

import email.utils
import logging
import re
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import requests
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from urllib3.exceptions import NewConnectionError

from nampo.errors import CatalogError

__all__ = ["RETRY_STATUSES", "RetryPolicy", "RetryingStacApiIO", "parse_retry_after", "phrase"]

# one logger for the catalog package
logger = logging.getLogger(__package__)


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


class RetryingStacApiIO(StacApiIO):
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

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        if kwargs.get("timeout") is not None:
            self.attempt_timeout = kwargs["timeout"]

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
            return f"HTTP {status} {phrase(status)}".rstrip(), retry_after
        cause = exc.__context__
        if isinstance(cause, requests.Timeout):
            return f"no answer within {self.timeout:g} s", None
        if isinstance(cause, requests.ConnectionError):
            reason = getattr(cause.args[0], "reason", None) if cause.args else None
            if isinstance(reason, NewConnectionError):  # refused, or no such host
                return None
            return "connection dropped", None
        return None


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
