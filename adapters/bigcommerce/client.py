"""Outbound HTTP to the BigCommerce REST API (requests underneath, ``responses`` in tests).

BigCommerce webhooks are thin (``data`` holds only a type and an id), so parsing one means calling
the API; back-fill pages through it. Both go through this one client, which knows the store's
address, the ``X-Auth-Token`` header and BigCommerce's rate limits.

Rate limits: a 429 carries ``X-Rate-Limit-Time-Reset-Ms``, the milliseconds until the quota window
resets (https://developer.bigcommerce.com/docs/start/best-practices/api-rate-limits); waiting exactly
that long and retrying is what BigCommerce asks of clients, and a response that says no requests are
left (``X-Rate-Limit-Requests-Left: 0``) makes the next call wait for the reset first. ``sleep`` is
injectable so tests never wait.

Why not :class:`adapters.http.RequestsClient`: BigCommerce's v2 API answers an empty list with
``204 No Content`` (no JSON to decode), a callback's resource may be gone (404, to skip rather than
fail), and its 429 names the wait in its own header rather than ``Retry-After``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from adapters.base import PlatformClient
from adapters.http import PlatformApiError
from engine.errors import InvalidInput

DEFAULT_API_BASE = "https://api.bigcommerce.com"
RATE_LIMIT_RESET_HEADER = "X-Rate-Limit-Time-Reset-Ms"
RATE_LIMIT_LEFT_HEADER = "X-Rate-Limit-Requests-Left"
#: The longest single wait honoured (a rate-limit window is 30 s at most on BigCommerce plans).
MAX_WAIT_S = 120.0
#: Store hashes are short lower-case alphanumerics; anything else would change the URL's path.
_STORE_HASH = re.compile(r"^[A-Za-z0-9]{1,64}$")
_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class PlatformError(PlatformApiError):
    """BigCommerce refused or failed a request (after retries); ``status`` tells a 404 from the rest."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, details={"status": status} if status is not None else None)
        self.status = status


class BigCommerceClient(PlatformClient):
    """GET against ``{api_base}/stores/{store_hash}/``; paths are relative (``v3/catalog/products``)."""

    def __init__(
        self,
        store_hash: str,
        access_token: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_retries: int = 5,
        timeout: float = 30.0,
    ) -> None:
        if not _STORE_HASH.match(store_hash or ""):
            raise InvalidInput(f"BigCommerce store_hash {store_hash!r} is not a store hash (letters and digits)")
        if not access_token:
            raise InvalidInput("BigCommerce access_token is empty")
        if not api_base.startswith(("https://", "http://")):
            raise InvalidInput(f"BigCommerce api_base {api_base!r} is not an http(s) URL")
        self.base_url = f"{api_base.rstrip('/')}/stores/{store_hash}/"
        self._session = session or requests.Session()
        self._headers = {"X-Auth-Token": access_token, "Accept": "application/json"}
        self._sleep = sleep
        self._max_retries = max_retries
        self._timeout = timeout
        self._pause = 0.0
        #: Requests sent, retries included (for reports and tests).
        self.requests_sent = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> BigCommerceClient:
        """The client for a connection's settings (``store_hash``, ``access_token``, ``api_base``)."""
        missing = [key for key in ("store_hash", "access_token") if not config.get(key)]
        if missing:
            raise InvalidInput(
                f"the bigcommerce connection has no {' or '.join(missing)}: BigCommerce webhooks carry only "
                "ids, so Shelfwise needs API access (shelfwise connect bigcommerce ... "
                "--set store_hash=HASH --set access_token=TOKEN)"
            )
        return cls(
            str(config["store_hash"]),
            str(config["access_token"]),
            api_base=str(config.get("api_base") or DEFAULT_API_BASE),
            **kwargs,
        )

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """The decoded JSON body; None for 204 (BigCommerce's v2 "no results"). Raises PlatformError."""
        url = self.base_url + path.lstrip("/")
        if self._pause > 0:
            self._sleep(self._pause)
            self._pause = 0.0
        attempt = 0
        while True:
            self.requests_sent += 1
            try:
                response = self._session.get(url, params=params, headers=self._headers, timeout=self._timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self._max_retries:
                    raise PlatformError(f"BigCommerce GET {path} failed after {attempt + 1} tries: {exc}") from exc
                self._sleep(self._backoff(attempt))
                attempt += 1
                continue
            if response.status_code in _RETRIED_STATUSES and attempt < self._max_retries:
                self._sleep(self._wait(response, attempt))
                attempt += 1
                continue
            if response.headers.get(RATE_LIMIT_LEFT_HEADER, "").strip() == "0":
                self._pause = self._reset_seconds(response) or 0.0
            return self._decode(path, response)

    @staticmethod
    def _backoff(attempt: int) -> float:
        return float(min(2**attempt, 30))

    @staticmethod
    def _reset_seconds(response: requests.Response) -> float | None:
        try:
            milliseconds = float(response.headers.get(RATE_LIMIT_RESET_HEADER, ""))
        except ValueError:
            return None
        return min(max(milliseconds, 0.0) / 1000.0, MAX_WAIT_S) if math.isfinite(milliseconds) else None

    def _wait(self, response: requests.Response, attempt: int) -> float:
        """Seconds to wait before retrying: BigCommerce's own reset time on a 429, else backoff."""
        if response.status_code == 429:
            reset = self._reset_seconds(response)
            if reset is not None:
                return reset
        return self._backoff(attempt)

    @staticmethod
    def _decode(path: str, response: requests.Response) -> Any:
        status = response.status_code
        if status == 204:
            return None
        if status == 429:
            raise PlatformError(f"BigCommerce GET {path}: still rate limited after retries", status=status)
        if status in (401, 403):
            raise PlatformError(
                f"BigCommerce GET {path} answered {status}: check the connection's access_token and its API scopes "
                "(products, orders and customers: read-only)",
                status=status,
            )
        if status >= 400:
            raise PlatformError(f"BigCommerce GET {path} answered {status}: {response.text[:300]}", status=status)
        try:
            return response.json()
        except ValueError as exc:
            raise PlatformError(f"BigCommerce GET {path} answered {status} with a body that is not JSON") from exc
