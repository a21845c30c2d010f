"""Shopify webhooks → engine records, and the Admin API back-fill.

Reference: /work/shared/reference/platforms.md §1 and
https://shopify.dev/docs/apps/build/webhooks/delivery-structure (headers, HMAC, body = the bare
REST resource). The adapter only translates: the intake stores, verifies, dedupes and ingests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from adapters.actions import Checkpoint
from adapters.base import Adapter, Delivery, PlatformClient, SignatureError, WidgetContext
from adapters.common import header, load_json_object, on_storefront, store_url_setting
from adapters.shopify import mapping
from adapters.shopify.backfill import ShopifyBackfill, admin_client
from engine.records import Record

log = logging.getLogger(__name__)

# Header names as Shopify documents them; lookups are case-insensitive (HTTP/2 lower-cases them).
HMAC_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
SHOP_DOMAIN_HEADER = "X-Shopify-Shop-Domain"


def sign(body: bytes, secret: str) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value for ``body``: base64(HMAC-SHA256(secret, raw body)).

    Public so tests and tools can produce genuine deliveries (like stripe's test signer) with the
    very code that checks them.
    """
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


#: A topic's translation of the body: one record or action, or a list of them.
Handler = Callable[[dict[str, Any]], Any]


class ShopifyAdapter(Adapter):
    """Shopify: HMAC on the raw body, dedupe on ``X-Shopify-Webhook-Id``, topics → records."""

    platform: ClassVar[str] = "shopify"

    #: Topic → translation of the body. Topics not listed are acknowledged and ignored (parse()
    #: logs them). ``orders/paid`` carries the same Order resource as ``orders/create``
    #: (platforms.md §1.4); both give the same event ids, so a paid order is stored once.
    HANDLERS: ClassVar[dict[str, Handler]] = {
        "orders/create": mapping.order_records,
        "orders/paid": mapping.order_records,
        "products/create": mapping.product_item,
        "products/update": mapping.product_item,
        "products/delete": mapping.product_deletion,
        "customers/create": mapping.customer_user,
        "customers/update": mapping.customer_user,
        "carts/create": mapping.cart_records,
        "carts/update": mapping.cart_records,
        "checkouts/create": mapping.checkout_records,
        "checkouts/update": mapping.checkout_records,
        "app/uninstalled": mapping.app_uninstalled,
        # The mandatory compliance topics (platforms.md §1.6).
        "customers/data_request": mapping.data_request,
        "customers/redact": mapping.redact_request,
        "shop/redact": mapping.shop_redact,
    }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    @classmethod
    def from_connection(cls, config: dict[str, Any]) -> ShopifyAdapter:
        store_url_setting(config, "Shopify")  # a malformed store_url is refused when connecting
        return cls(config)

    # ----------------------------------------------------------------- security
    def verify(self, delivery: Delivery, secret: str) -> None:
        """Check ``X-Shopify-Hmac-Sha256`` against the raw bytes, in constant time.

        Never re-serialise the JSON before hashing: Shopify signs the exact bytes it sent
        (platforms.md §1.2), and any reformatting would break genuine signatures.
        """
        received = header(delivery, HMAC_HEADER)
        if received is None:
            raise SignatureError(f"missing {HMAC_HEADER} header")
        expected = sign(delivery.body, secret)
        if not hmac.compare_digest(expected.encode("ascii"), received.encode("utf-8")):
            raise SignatureError(f"{HMAC_HEADER} does not match the body (wrong secret or altered body)")

    def topic(self, delivery: Delivery) -> str | None:
        return header(delivery, TOPIC_HEADER)

    def delivery_id(self, delivery: Delivery) -> str | None:
        """``X-Shopify-Webhook-Id``: "A unique composite key per delivery. Use to ... deduplicate".

        Retries of one delivery keep this id (they resend the original payload, platforms.md §1.3),
        so it is the idempotency key. ``X-Shopify-Event-Id`` is shared across *different*
        subscriptions for one merchant action, so it must not be used here.
        """
        return header(delivery, WEBHOOK_ID_HEADER)

    # ----------------------------------------------------------------- parsing
    def parse(self, delivery: Delivery) -> list[Record]:
        """Dispatch on the topic through :attr:`HANDLERS`; unknown topics give [] and a log line."""
        topic = self.topic(delivery)
        handler = self.HANDLERS.get(topic or "")
        if handler is None:
            log.info("shopify: ignoring delivery with unhandled topic %r", topic)
            return []
        result = handler(load_json_object(delivery, "Shopify"))
        storefront = self.storefront(header(delivery, SHOP_DOMAIN_HEADER))
        return [on_storefront(r, storefront) for r in (result if isinstance(result, list) else [result])]

    def storefront(self, shop_domain: str | None = None) -> str | None:
        """Where product pages live: the connection's ``store_url`` (the shop's own domain), else
        its ``myshopify.com`` domain (which redirects to the primary domain), else the delivery's."""
        if url := store_url_setting(self.config, "Shopify"):
            return url
        shop = self.config.get("shop_domain") or shop_domain
        return f"https://{shop}" if shop else None

    # ----------------------------------------------------------------- back-fill
    def api_client(self, **options: Any) -> PlatformClient:
        return admin_client(self.config, **options)

    def backfill(self, client: PlatformClient) -> Iterator[Record | Checkpoint]:
        """Products, then orders (``status=any``), through the Admin REST API with Link cursors."""
        since = self.config.get("backfill_since")
        since_text = None if since is None else datetime.fromtimestamp(float(since), UTC).isoformat()
        storefront = self.storefront()
        for record in ShopifyBackfill(client, self.config).run(since_text):
            yield on_storefront(record, storefront)

    def render_widget(self, ctx: WidgetContext) -> str:
        """The theme snippet (adapters.snippets), with this platform's product, cart and customer variables."""
        from adapters.snippets import render

        return render(self.platform, ctx)
