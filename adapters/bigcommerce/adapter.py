"""BigCommerce webhooks and back-fill → engine records.

Reference: platforms.md §6 and https://developer.bigcommerce.com/docs/integrations/webhooks.
Callbacks are *thin*: ``{"scope": "store/order/created", "data": {"type": "order", "id": 250},
"hash": "…", …}``. Parsing one therefore fetches the resource through the API, with a client built
from the connection's ``store_hash`` and ``access_token``. The adapter still never touches the
database: it returns records, the intake stores them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from adapters.actions import Checkpoint, ForgetShopper
from adapters.base import Adapter, Delivery, PayloadError, PlatformClient, WidgetContext
from adapters.bigcommerce import signature
from adapters.bigcommerce.backfill import BigCommerceBackfill, order_lines, since_text
from adapters.bigcommerce.catalog import CatalogNames, product_item
from adapters.bigcommerce.client import BigCommerceClient, PlatformError
from adapters.bigcommerce.orders import customer_user, order_records
from adapters.bigcommerce.storefront import Storefront, store_url_setting
from adapters.common import load_json_object
from engine.records import Erasure, Record

log = logging.getLogger(__name__)

PLATFORM = "BigCommerce"


def _resource_id(payload: dict[str, Any]) -> int:
    data = payload.get("data")
    resource_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(resource_id, int) or isinstance(resource_id, bool) or resource_id <= 0:
        raise PayloadError(f"BigCommerce {payload.get('scope')} callback has no numeric data.id")
    return resource_id


def _body_field(delivery: Delivery, name: str) -> str | None:
    """A top-level string of the body, or None when the body is unreadable (only labels use this)."""
    try:
        value = load_json_object(delivery, PLATFORM).get(name)
    except PayloadError:
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


class BigCommerceAdapter(Adapter):
    """Standard Webhooks signatures, dedupe on the payload ``hash``, resources fetched by id."""

    platform: ClassVar[str] = "bigcommerce"

    def __init__(self, config: dict[str, Any] | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.config = dict(config or {})
        self._clock = clock
        self._client: PlatformClient | None = None
        self._storefront: Storefront | None = None

    @classmethod
    def from_connection(cls, config: dict[str, Any]) -> BigCommerceAdapter:
        """The adapter for a connection; refuses one without API access (``store_hash`` and
        ``access_token``), since every BigCommerce callback must be completed through the API.
        ``shelfwise connect`` calls this, so the mistake shows when connecting, not at the first
        webhook."""
        adapter = cls(config)
        adapter._client = adapter.api_client()  # builds nothing remote: only checks the settings
        store_url_setting(adapter.config)  # a malformed store_url is refused here too
        return adapter

    def api_client(self, **options: Any) -> PlatformClient:
        """``store_hash``, ``access_token`` and ``api_base`` from the connection (``--set KEY=VALUE``);
        ``store_url`` (optional) is the storefront's address for product links."""
        return BigCommerceClient.from_config(self.config, **options)

    # ----------------------------------------------------------------- security and identity
    def verify(self, delivery: Delivery, secret: str) -> None:
        """Standard Webhooks: signature over id, timestamp and raw body; the timestamp must be fresh.

        Freshness is judged at the time Shelfwise received the delivery, so replaying a stored
        delivery later (after a fix) verifies exactly as it did on arrival.
        """
        now = delivery.received_at if delivery.received_at is not None else self._clock()
        signature.verify(delivery, secret, now=now)

    def topic(self, delivery: Delivery) -> str | None:
        """The callback's ``scope``: BigCommerce sends no topic header."""
        return _body_field(delivery, "scope")

    def delivery_id(self, delivery: Delivery) -> str | None:
        """The payload ``hash``: "if a hook fires twice for the same event, both request bodies rely
        on the same hash" (platforms.md §6), and retries resend the same body. Parsing is idempotent
        anyway (event ids per order line; items and users are upserted), so a duplicate that got
        through would double nothing.
        """
        return _body_field(delivery, "hash")

    # ----------------------------------------------------------------- webhooks
    def parse(self, delivery: Delivery) -> list[Record | ForgetShopper]:
        payload = load_json_object(delivery, PLATFORM)
        scope = payload.get("scope")
        handler = self.HANDLERS.get(scope) if isinstance(scope, str) else None
        if handler is None:
            log.info("bigcommerce: ignoring callback with unhandled scope %r", scope)
            return []
        return handler(self, _resource_id(payload))

    @property
    def client(self) -> PlatformClient:
        if self._client is None:
            self._client = self.api_client()
        return self._client

    def _fetch(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET, or None when the resource is gone (deleted between the event and the fetch)."""
        try:
            return self.client.get(path, params)
        except PlatformError as exc:
            if exc.status == 404:
                log.info("bigcommerce: %s no longer exists; skipped", path)
                return None
            raise

    def _on_order(self, order_id: int) -> list[Record | ForgetShopper]:
        order = self._fetch(f"v2/orders/{order_id}")
        if order is None:
            return []
        if not isinstance(order, dict):
            raise PlatformError(f"BigCommerce order {order_id} is not a JSON object")
        return list(order_records(order, order_lines(self.client, order_id)))

    def _on_product(self, product_id: int) -> list[Record | ForgetShopper]:
        body = self._fetch(f"v3/catalog/products/{product_id}", {"include": "variants,images"})
        if body is None:
            return []
        product = body.get("data") if isinstance(body, dict) else None
        if not isinstance(product, dict):
            raise PlatformError(f"BigCommerce product {product_id} answer has no data object")
        if self._storefront is None:
            self._storefront = Storefront(self.client, self.config)
        return [product_item(product, CatalogNames(self.client), self._storefront)]

    def _on_product_deleted(self, product_id: int) -> list[Record | ForgetShopper]:
        return [Erasure(item_id=str(product_id))]

    def _on_customer(self, customer_id: int) -> list[Record | ForgetShopper]:
        body = self._fetch("v3/customers", {"id:in": str(customer_id)})
        rows = body.get("data") if isinstance(body, dict) else None
        found = [c for c in rows or [] if isinstance(c, dict) and c.get("id") == customer_id]
        if not found:
            log.info("bigcommerce: customer %s no longer exists; skipped", customer_id)
            return []
        return [customer_user(found[0])]

    def _on_customer_deleted(self, customer_id: int) -> list[Record | ForgetShopper]:
        """A deleted customer account is forgotten, as a privacy erasure.

        Merchants delete accounts to honour erasure requests; keeping the shopper's history under
        the id of a deleted account would defeat that.
        """
        return [ForgetShopper(user_id=str(customer_id))]

    #: Scope → handler. Scopes not listed (carts, shipments, SKUs, ...) are acknowledged and ignored.
    HANDLERS: ClassVar[dict[str, Callable[[BigCommerceAdapter, int], list[Record | ForgetShopper]]]] = {
        "store/order/created": _on_order,
        "store/order/updated": _on_order,
        "store/order/statusUpdated": _on_order,
        "store/product/created": _on_product,
        "store/product/updated": _on_product,
        "store/product/inventory/updated": _on_product,
        "store/product/inventory/order/updated": _on_product,
        "store/product/deleted": _on_product_deleted,
        "store/customer/created": _on_customer,
        "store/customer/updated": _on_customer,
        "store/customer/deleted": _on_customer_deleted,
    }

    # ----------------------------------------------------------------- back-fill
    def backfill(self, client: PlatformClient) -> Iterator[Record | Checkpoint]:
        """Products, customers, then orders, with a Checkpoint after every page (resumable)."""
        yield from BigCommerceBackfill(client, self.config).run(since_text(self.config.get("backfill_since")))

    def render_widget(self, ctx: WidgetContext) -> str:
        """The theme snippet (adapters.snippets), with this platform's product, cart and customer variables."""
        from adapters.snippets import render

        return render(self.platform, ctx)
