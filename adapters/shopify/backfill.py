"""Shopify back-fill through the Admin REST API: products, then orders, page by page.

Pagination is by cursor: the ``Link`` header's ``rel="next"`` URL, used exactly as given ("page_info
can't be modified", platforms.md §1.7); no ``Link`` next means the last page. Rate limits: HTTP 429
with ``Retry-After`` is retried by the client, and ``X-Shopify-Shop-Api-Call-Limit: used/size``
(a leaky bucket draining at 2 calls/s on standard plans) makes the client pause before the bucket
overflows, so a back-fill rarely sees a 429 at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from requests.utils import parse_header_links

from adapters.actions import Checkpoint
from adapters.base import CaseInsensitiveHeaders, PayloadError, PlatformClient
from adapters.common import parse_time
from adapters.http import PlatformApiError, RequestsClient
from adapters.paging import Page, Stream, answered_at, newest, run_streams, translate_rows
from adapters.shopify import mapping
from engine.errors import InvalidInput
from engine.records import Record

log = logging.getLogger(__name__)

#: The Admin API version asked for unless the connection sets ``api_version``.
API_VERSION = "2024-07"
#: Largest page the REST Admin API serves.
PAGE_LIMIT = 250
CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"


def call_limit_pause(headers: CaseInsensitiveHeaders, *, leak_per_second: float = 2.0, headroom: int = 5) -> float:
    """Seconds to wait so the next call finds room in the bucket (``32/40``: used/size)."""
    value = headers.get(CALL_LIMIT_HEADER)
    try:
        used, size = (int(part) for part in str(value).split("/"))
    except (TypeError, ValueError):
        return 0.0
    excess = used + 1 - (size - headroom)
    return max(0, excess) / leak_per_second


def admin_client(config: dict[str, Any], **options: Any) -> RequestsClient:
    """A client for the shop's Admin API, from ``shelfwise connect shopify --shop ... --set access_token=...``."""
    shop = config.get("shop_domain")
    token = config.get("access_token")
    if not shop and not config.get("api_base_url"):
        raise InvalidInput("this Shopify connection has no shop domain: connect again with --shop NAME.myshopify.com")
    if not token:
        raise InvalidInput(
            "this Shopify connection has no Admin API access token: connect again with --set access_token=shpat_..."
        )
    version = config.get("api_version") or API_VERSION
    base_url = config.get("api_base_url") or f"https://{shop}/admin/api/{version}"
    leak = float(config.get("api_leak_rate") or 2.0)
    return RequestsClient(
        base_url,
        headers={"X-Shopify-Access-Token": str(token)},
        throttle=partial(call_limit_pause, leak_per_second=leak),
        **options,
    )


def next_link(value: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, or None on the last page."""
    if not value:
        return None
    for link in parse_header_links(value):
        if link.get("rel") == "next" and link.get("url"):
            return link["url"]
    return None


def shopify_time(value: str) -> float:
    """Sort key of Shopify timestamps (ISO-8601 with an offset)."""
    try:
        return parse_time(value, "timestamp", "Shopify")
    except PayloadError:
        return float("-inf")


class ShopifyBackfill:
    """One back-fill run: products then orders, resuming from the saved state."""

    def __init__(self, client: PlatformClient, config: dict[str, Any]) -> None:
        self.client = client
        self.state = config.get("backfill") or {}
        self.limit = int(config.get("page_size") or PAGE_LIMIT)

    def run(self, since: str | None) -> Iterator[Record | Checkpoint]:
        streams = [
            Stream("products", "products.json", self._fetcher("products", {}, mapping.product_item)),
            # status=any: closed and cancelled orders too (the default lists open orders only).
            Stream("orders", "orders.json", self._fetcher("orders", {"status": "any"}, mapping.order_records)),
        ]
        yield from run_streams(streams, self.state, since=since, time_key=shopify_time)

    def _fetcher(
        self, resource: str, filters: dict[str, Any], translate: Callable[[dict[str, Any]], Any]
    ) -> Callable[[str, str | None], Page]:
        def fetch(cursor: str, since: str | None) -> Page:
            if cursor.startswith(("https://", "http://")):
                response = self.client.get_response(cursor)  # the next link carries every filter
            else:
                params = {"limit": self.limit, **filters}
                if since:
                    params["updated_at_min"] = since
                response = self.client.get_response(cursor, params)
            rows = response.data.get(resource) if isinstance(response.data, dict) else None
            if not isinstance(rows, list):
                raise PlatformApiError(f"Shopify {resource} page has no {resource!r} list")
            records = translate_rows(rows, translate, platform="shopify", what=resource, log=log)
            return Page(
                records,
                next_link(response.headers.get("Link")),
                newest([row.get("updated_at") for row in rows if isinstance(row, dict)], shopify_time),
                answered_at(response.headers, "%Y-%m-%dT%H:%M:%S+00:00"),
            )

        return fetch
