"""Magento back-fill through REST: ``GET V1/products`` and ``V1/orders`` with ``searchCriteria``.

``searchCriteria[pageSize]`` is always set: "If the pageSize is not specified, the system returns
all matches" (platforms.md §3.4). Pages are ordered by ``entity_id`` so a resumed pass reads what
it has not read; the run stops when ``currentPage * pageSize >= total_count`` (asking past the end
may return the last page again). A catch-up pass filters ``updated_at >= `` the newest seen.
Authentication: ``Authorization: Bearer <integration or admin token>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from adapters.actions import Checkpoint
from adapters.base import PayloadError, PlatformClient
from adapters.common import parse_time
from adapters.http import PlatformApiError, RequestsClient
from adapters.magento import mapping
from adapters.magento.storefront import Storefront
from adapters.paging import Page, Stream, answered_at, newest, run_streams, translate_rows
from engine.errors import InvalidInput
from engine.records import Record

log = logging.getLogger(__name__)

PAGE_SIZE = 100


def rest_client(config: dict[str, Any], **options: Any) -> RequestsClient:
    """A REST client from ``--set base_url=https://shop.example/rest/default --set access_token=...``."""
    base_url, token = config.get("base_url"), config.get("access_token")
    if not base_url or not token:
        raise InvalidInput(
            "this Magento connection lacks base_url or access_token: connect again with "
            "--set base_url=https://HOST/rest/STORE_CODE --set access_token=TOKEN"
        )
    return RequestsClient(str(base_url), headers={"Authorization": f"Bearer {token}"}, **options)


def magento_time(value: str) -> float:
    try:
        return parse_time(value, "updated_at", "Magento")
    except PayloadError:
        return float("-inf")


def search_criteria(page: int, page_size: int, since: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "searchCriteria[pageSize]": page_size,
        "searchCriteria[currentPage]": page,
        "searchCriteria[sortOrders][0][field]": "entity_id",
        "searchCriteria[sortOrders][0][direction]": "ASC",
    }
    if since:
        params.update(
            {
                "searchCriteria[filter_groups][0][filters][0][field]": "updated_at",
                "searchCriteria[filter_groups][0][filters][0][value]": since,
                "searchCriteria[filter_groups][0][filters][0][condition_type]": "gteq",
            }
        )
    return params


class MagentoBackfill:
    def __init__(self, client: PlatformClient, config: dict[str, Any]) -> None:
        self.client = client
        self.state = config.get("backfill") or {}
        self.page_size = int(config.get("page_size") or PAGE_SIZE)
        self.storefront = Storefront.from_config(config)

    def run(self, since: str | None) -> Iterator[Record | Checkpoint]:
        streams = [
            Stream("products", 1, self._fetcher("V1/products", self._product)),
            Stream("orders", 1, self._fetcher("V1/orders", mapping.order_records)),
        ]
        yield from run_streams(streams, self.state, since=since, time_key=magento_time)

    def _product(self, row: dict[str, Any]) -> Record:
        return mapping.product_item(row, self.storefront)

    def _fetcher(self, path: str, translate: Callable[[dict[str, Any]], Any]) -> Callable[[int, str | None], Page]:
        def fetch(page: int, since: str | None) -> Page:
            response = self.client.get_response(path, search_criteria(page, self.page_size, since))
            data = response.data
            rows = data.get("items") if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise PlatformApiError(f"Magento {path} page {page} has no items list")
            records = translate_rows(rows, translate, platform="magento", what=path, log=log)
            total = data.get("total_count")
            more = page * self.page_size < total if isinstance(total, int) else len(rows) >= self.page_size
            return Page(
                records,
                page + 1 if rows and more else None,
                newest([row.get("updated_at") for row in rows if isinstance(row, dict)], magento_time),
                answered_at(response.headers, "%Y-%m-%d %H:%M:%S"),
            )

        return fetch
