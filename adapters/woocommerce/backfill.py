"""WooCommerce back-fill through REST v3: products and orders, page by page.

``GET /wp-json/wc/v3/products?per_page=100&page=N`` with ``X-WP-TotalPages`` saying how many pages
there are (platforms.md §2.7); ordered by id so that a resumed pass reads the pages it has not read
(resources changed meanwhile can only move later, never be skipped). A catch-up pass asks for
``modified_after`` the newest ``date_modified_gmt`` of the previous pass (``dates_are_gmt``).
Authentication: the consumer key and secret as HTTP Basic credentials, which WooCommerce accepts
over HTTPS only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from adapters.actions import Checkpoint
from adapters.base import PayloadError, PlatformClient
from adapters.common import parse_time
from adapters.http import PlatformApiError, RequestsClient
from adapters.paging import Page, Stream, answered_at, newest, run_streams, translate_rows
from adapters.woocommerce import mapping
from engine.errors import InvalidInput
from engine.records import Record

log = logging.getLogger(__name__)

#: WordPress's largest ``per_page``.
PAGE_SIZE = 100


def rest_client(config: dict[str, Any], **options: Any) -> RequestsClient:
    """A REST v3 client from ``--set store_url=https://... --set consumer_key=ck_... --set consumer_secret=cs_...``."""
    store_url = str(config.get("store_url") or "")
    key, secret = config.get("consumer_key"), config.get("consumer_secret")
    missing = [
        name
        for name, value in (("store_url", store_url), ("consumer_key", key), ("consumer_secret", secret))
        if not value
    ]
    if missing:
        raise InvalidInput(
            f"this WooCommerce connection lacks {', '.join(missing)}: connect again with --set "
            "store_url=https://... --set consumer_key=ck_... --set consumer_secret=cs_..."
        )
    if not store_url.startswith("https://"):
        raise InvalidInput(
            f"WooCommerce store_url {store_url!r} must be https:// (consumer keys are sent as Basic auth)"
        )
    return RequestsClient(f"{store_url.rstrip('/')}/wp-json/wc/v3", auth=(str(key), str(secret)), **options)


def woocommerce_time(value: str) -> float:
    try:
        return parse_time(value, "date_modified_gmt", "WooCommerce")
    except PayloadError:
        return float("-inf")


class WooCommerceBackfill:
    def __init__(self, client: PlatformClient, config: dict[str, Any]) -> None:
        self.client = client
        self.state = config.get("backfill") or {}
        self.per_page = int(config.get("page_size") or PAGE_SIZE)

    def run(self, since: str | None) -> Iterator[Record | Checkpoint]:
        streams = [
            Stream("products", 1, self._fetcher("products", mapping.product_item)),
            Stream("orders", 1, self._fetcher("orders", mapping.order_records)),
        ]
        yield from run_streams(streams, self.state, since=since, time_key=woocommerce_time)

    def _fetcher(
        self, resource: str, translate: Callable[[dict[str, Any]], list[Any]]
    ) -> Callable[[int, str | None], Page]:
        def fetch(page: int, since: str | None) -> Page:
            params: dict[str, Any] = {"per_page": self.per_page, "page": page, "orderby": "id", "order": "asc"}
            if since:
                params.update(modified_after=since, dates_are_gmt="true")
            response = self.client.get_response(resource, params)
            rows = response.data
            if not isinstance(rows, list):
                raise PlatformApiError(f"WooCommerce {resource} page {page} is not a JSON list")
            records = translate_rows(rows, translate, platform="woocommerce", what=resource, log=log)
            try:
                total_pages = int(response.headers.get("X-WP-TotalPages"))
            except (TypeError, ValueError):
                total_pages = None  # without the header, a short page is the last one
            more = page < total_pages if total_pages is not None else len(rows) >= self.per_page
            return Page(
                records,
                page + 1 if rows and more else None,
                newest([row.get("date_modified_gmt") for row in rows if isinstance(row, dict)], woocommerce_time),
                answered_at(response.headers, "%Y-%m-%dT%H:%M:%S"),
            )

        return fetch
