"""BigCommerce back-fill: products, customers, then orders, page by page, resumable.

Pagination is by page number with ``limit`` (250 at most): v3 lists say where they stand in
``meta.pagination`` (``current_page``/``total_pages``); v2 orders have no such block, so a short
page (or ``204 No Content``) is the last. Every list is walked in id order so page numbers stay
stable between a crash and the resume. A pass that completes remembers the newest modification
time it saw, and the next pass asks only for what changed since (``date_modified:min``,
``min_date_modified``). Rate limits are the client's business (:mod:`adapters.bigcommerce.client`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from adapters.actions import Checkpoint
from adapters.base import PayloadError, PlatformClient
from adapters.bigcommerce.catalog import CatalogNames, product_item
from adapters.bigcommerce.client import PlatformError
from adapters.bigcommerce.orders import customer_user, iso_from_rfc2822, order_records
from adapters.bigcommerce.storefront import Storefront
from adapters.common import parse_time
from adapters.paging import Page, Stream, newest, run_streams
from engine.records import Record

log = logging.getLogger(__name__)

#: BigCommerce's largest page for v2 and v3 list endpoints.
PAGE_LIMIT = 250


def iso_time(value: str) -> float:
    """Sort key of the high-water marks (all kept as ISO-8601)."""
    try:
        return parse_time(value, "timestamp", "BigCommerce")
    except PayloadError:
        return float("-inf")


def order_lines(client: PlatformClient, order_id: int, limit: int = PAGE_LIMIT) -> list[dict[str, Any]]:
    """Every product line of an order (v2 pages these too, 50 by default)."""
    lines: list[dict[str, Any]] = []
    page = 1
    while True:
        batch = client.get(f"v2/orders/{order_id}/products", {"limit": limit, "page": page}) or []
        if not isinstance(batch, list):
            raise PlatformError(f"BigCommerce v2/orders/{order_id}/products did not answer a list")
        lines.extend(batch)
        if len(batch) < limit:
            return lines
        page += 1


class BigCommerceBackfill:
    """One back-fill run, resuming from the state saved in the connection (``backfill``)."""

    def __init__(self, client: PlatformClient, config: dict[str, Any]) -> None:
        self.client = client
        self.state = config.get("backfill") or {}
        self.limit = max(1, min(int(config.get("page_size") or PAGE_LIMIT), PAGE_LIMIT))
        self.names = CatalogNames(client)
        self.storefront = Storefront(client, config)

    def run(self, since: str | None) -> Iterator[Record | Checkpoint]:
        streams = [
            Stream("products", 1, self._products),
            Stream("customers", 1, self._customers),
            Stream("orders", 1, self._orders),
        ]
        yield from run_streams(streams, self.state, since=since, time_key=iso_time)

    def _v3_page(self, path: str, params: dict[str, Any], page: int, since: str | None) -> tuple[list[Any], Any]:
        query = {**params, "limit": self.limit, "page": page}
        if since:
            query["date_modified:min"] = since
        body = self.client.get(path, query)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise PlatformError(f"BigCommerce {path} page {page} has no data list")
        pagination = (body.get("meta") or {}).get("pagination") if isinstance(body.get("meta"), dict) else None
        current = pagination.get("current_page") if isinstance(pagination, dict) else None
        total = pagination.get("total_pages") if isinstance(pagination, dict) else None
        known = isinstance(current, int) and isinstance(total, int)
        more = current < total if known else len(data) >= self.limit
        return data, page + 1 if more else None

    def _rows(self, rows: list[Any], what: str) -> list[dict[str, Any]]:
        kept = [row for row in rows if isinstance(row, dict)]
        if len(kept) < len(rows):
            log.warning("bigcommerce back-fill: %d %s entries are not objects; skipped", len(rows) - len(kept), what)
        return kept

    def _products(self, page: int, since: str | None) -> Page:
        rows, following = self._v3_page(
            "v3/catalog/products", {"include": "variants,images", "sort": "id", "direction": "asc"}, page, since
        )
        products = self._rows(rows, "product")
        self.names.prefetch(products)
        records: list[Record] = [product_item(p, self.names, self.storefront) for p in products]
        return Page(records, following, newest([p.get("date_modified") for p in products], iso_time))

    def _customers(self, page: int, since: str | None) -> Page:
        rows, following = self._v3_page("v3/customers", {}, page, since)
        customers = self._rows(rows, "customer")
        records: list[Record] = [customer_user(c) for c in customers]
        return Page(records, following, newest([c.get("date_modified") for c in customers], iso_time))

    def _orders(self, page: int, since: str | None) -> Page:
        query: dict[str, Any] = {"limit": self.limit, "page": page, "sort": "id:asc"}
        if since:
            query["min_date_modified"] = since  # v2 takes RFC 2822 or ISO-8601 here
        rows = self.client.get("v2/orders", query) or []  # 204 No Content past the last order
        if not isinstance(rows, list):
            raise PlatformError(f"BigCommerce v2/orders page {page} did not answer a list")
        orders = self._rows(rows, "order")
        records: list[Record] = []
        for order in orders:
            if not isinstance(order.get("id"), int):
                raise PlatformError("BigCommerce v2/orders answered an order without a numeric id")
            records.extend(order_records(order, order_lines(self.client, order["id"], self.limit)))
        modified = [iso_from_rfc2822(o.get("date_modified")) for o in orders]
        return Page(records, page + 1 if len(rows) >= self.limit else None, newest(modified, iso_time))


def since_text(since: Any) -> str | None:
    """The connection's ``backfill_since`` (epoch seconds) in the ISO-8601 form the API filters take."""
    if since is None or since == "":
        return None
    return datetime.fromtimestamp(float(since), UTC).isoformat()
