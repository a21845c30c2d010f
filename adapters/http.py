"""The one PlatformClient: ``requests`` with retries on rate limits and passing server errors.

Every platform back-fill goes through :class:`RequestsClient`, so rate limits are honoured the same
way everywhere: HTTP 429 (and 502/503/504) are retried after ``Retry-After`` seconds (or an
exponential back-off when the header is absent), a bounded number of times; a platform-specific
``throttle`` (Shopify's ``X-Shopify-Shop-Api-Call-Limit``) may ask for a pause before the next call.
``sleep`` is injectable so tests never wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from adapters.base import ApiResponse, CaseInsensitiveHeaders, PlatformClient
from engine.errors import ShelfwiseError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class PlatformApiError(ShelfwiseError):
    """The platform's API refused or kept failing; the back-fill stops at its last checkpoint."""

    code = "PlatformApiError"
    http_status = 502


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number ("2.0", Shopify sends decimals) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class RequestsClient(PlatformClient):
    """GET JSON from one platform API, politely.

    ``base_url`` is joined with relative paths; absolute URLs (Shopify's ``Link`` next page, which
    must be used exactly as given) are fetched as they are, without extra parameters.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_wait: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        throttle: Callable[[CaseInsensitiveHeaders], float] | None = None,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise PlatformApiError(f"API base URL {base_url!r} must start with https://")
        self.base_url = base_url.rstrip("/")
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.auth = auth
        self.session = session or requests.Session()
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.throttle = throttle
        self._pause = 0.0
        #: Requests sent, retries included (for reports and tests).
        self.requests_sent = 0

    def url_for(self, path: str) -> str:
        if path.startswith(("https://", "http://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.get_response(path, params).data

    def get_response(self, path: str, params: dict[str, Any] | None = None) -> ApiResponse:
        url = self.url_for(path)
        if self._pause > 0:
            self.sleep(self._pause)
            self._pause = 0.0
        where = urlsplit(url)._replace(query="").geturl()  # never log query strings (they may hold keys)
        for attempt in range(self.max_retries + 1):
            self.requests_sent += 1
            try:
                response = self.session.get(
                    url, params=params, headers=self.headers, auth=self.auth, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == self.max_retries:
                    raise PlatformApiError(f"GET {where} failed: {type(exc).__name__}") from exc
                self._wait(None, attempt, f"{type(exc).__name__} from {where}")
                continue
            if response.status_code in RETRY_STATUSES:
                if attempt == self.max_retries:
                    raise PlatformApiError(
                        f"GET {where} still answered {response.status_code} after {self.max_retries} retries"
                    )
                self._wait(response.headers.get("Retry-After"), attempt, f"{response.status_code} from {where}")
                continue
            if response.status_code >= 400:
                raise PlatformApiError(f"GET {where} answered {response.status_code}: {response.text[:300]}")
            try:
                data = response.json()
            except ValueError as exc:
                raise PlatformApiError(f"GET {where} did not answer JSON") from exc
            headers = CaseInsensitiveHeaders(dict(response.headers))
            if self.throttle is not None:
                self._pause = min(self.max_wait, max(0.0, self.throttle(headers)))
            return ApiResponse(data=data, headers=headers, url=response.url)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _wait(self, retry_after: str | None, attempt: int, why: str) -> None:
        seconds = retry_after_seconds(retry_after)
        if seconds is None:
            seconds = self.backoff * (2**attempt)
        seconds = min(seconds, self.max_wait)
        log.info("%s; retrying in %.1f s (attempt %d of %d)", why, seconds, attempt + 1, self.max_retries)
        self.sleep(seconds)
