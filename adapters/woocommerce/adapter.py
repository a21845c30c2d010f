"""WooCommerce webhooks → engine records, and the REST v3 catch-up back-fill.

Reference: /work/shared/reference/platforms.md §2, from ``woocommerce/woocommerce``
``includes/class-wc-webhook.php``: ``X-WC-Webhook-Signature`` is base64(HMAC-SHA256(secret, the
exact JSON body)); topic, resource and event come as headers; the delivery id header was
``X-WC-Delivery-ID`` in older releases and is ``X-WC-Webhook-Delivery-ID`` now. When a webhook is
created WooCommerce sends an unsigned ping, body ``webhook_id=N``, that must get exactly HTTP 200.
WooCommerce never retries a failed delivery, which is why the back-fill can catch up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from adapters.actions import Checkpoint
from adapters.base import Acknowledgement, Adapter, Delivery, PlatformClient, SignatureError, WidgetContext
from adapters.common import header, load_json_object
from adapters.woocommerce import mapping
from adapters.woocommerce.backfill import WooCommerceBackfill, rest_client
from engine.records import Record

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
RESOURCE_HEADER = "X-WC-Webhook-Resource"
EVENT_HEADER = "X-WC-Webhook-Event"
DELIVERY_ID_HEADERS = ("X-WC-Webhook-Delivery-ID", "X-WC-Delivery-ID")

PING_BODY = re.compile(rb"\Awebhook_id=\d+\Z")


def sign(body: bytes, secret: str) -> str:
    """The ``X-WC-Webhook-Signature`` for ``body`` (``generate_signature()``), for tests and tools."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


Handler = Callable[[dict[str, Any]], list[Any]]


class WooCommerceAdapter(Adapter):
    platform: ClassVar[str] = "woocommerce"

    #: ``<resource>.<event>`` → translation. ``restored`` (an order or product taken out of the
    #: trash) sends the full resource like ``updated``.
    HANDLERS: ClassVar[dict[str, Handler]] = {
        "order.created": mapping.order_records,
        "order.updated": mapping.order_records,
        "order.restored": mapping.order_records,
        "order.deleted": mapping.order_deletion,
        "product.created": mapping.product_item,
        "product.updated": mapping.product_item,
        "product.restored": mapping.product_item,
        "product.deleted": mapping.product_deletion,
        "customer.created": mapping.customer_user,
        "customer.updated": mapping.customer_user,
        "customer.deleted": mapping.customer_deletion,
    }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    @classmethod
    def from_connection(cls, config: dict[str, Any]) -> WooCommerceAdapter:
        return cls(config)

    # ----------------------------------------------------------------- security
    def is_ping(self, delivery: Delivery) -> bool:
        """``deliver_ping()``: body ``webhook_id=<id>``, no signature and no ``X-WC-*`` headers."""
        return header(delivery, SIGNATURE_HEADER) is None and PING_BODY.match(delivery.body.strip()) is not None

    def acknowledgement(self, delivery: Delivery) -> Acknowledgement | None:
        # The ping's answer must be exactly 200 (any other code shows as an error in the admin).
        return Acknowledgement(status=200) if self.is_ping(delivery) else None

    def verify(self, delivery: Delivery, secret: str) -> None:
        """Check ``X-WC-Webhook-Signature`` on the raw bytes, in constant time. PHP's
        ``json_encode`` escapes ``/`` and non-ASCII, so re-serialised JSON would never match."""
        received = header(delivery, SIGNATURE_HEADER)
        if received is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        if not hmac.compare_digest(sign(delivery.body, secret).encode("ascii"), received.encode("utf-8")):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body (wrong secret or altered body)")

    def topic(self, delivery: Delivery) -> str | None:
        topic = header(delivery, TOPIC_HEADER)
        if topic:
            return topic
        resource, event = header(delivery, RESOURCE_HEADER), header(delivery, EVENT_HEADER)
        return f"{resource}.{event}" if resource and event else None

    def delivery_id(self, delivery: Delivery) -> str | None:
        """A new hash per delivery (``wp_hash(webhook_id . time())``); WooCommerce never resends
        one, so this only drops a delivery that reached Shelfwise twice through a proxy."""
        for name in DELIVERY_ID_HEADERS:
            value = header(delivery, name)
            if value:
                return value
        return None

    # ----------------------------------------------------------------- parsing
    def parse(self, delivery: Delivery) -> list[Record]:
        topic = self.topic(delivery)
        handler = self.HANDLERS.get(topic or "")
        if handler is None:
            # Includes coupon.* and custom action.* topics: nothing a recommender learns from.
            log.info("woocommerce: ignoring delivery with unhandled topic %r", topic)
            return []
        return handler(load_json_object(delivery, "WooCommerce"))

    # ----------------------------------------------------------------- back-fill
    def api_client(self, **options: Any) -> PlatformClient:
        return rest_client(self.config, **options)

    def backfill(self, client: PlatformClient) -> Iterator[Record | Checkpoint]:
        """Products, orders and customers through REST v3; a rerun catches up from the newest
        ``date_modified_gmt`` seen, closing the gaps WooCommerce's retry-less webhooks leave."""
        since = self.config.get("backfill_since")
        since_text = None if since is None else datetime.fromtimestamp(float(since), UTC).strftime("%Y-%m-%dT%H:%M:%S")
        yield from WooCommerceBackfill(client, self.config).run(since_text)

    def render_widget(self, ctx: WidgetContext) -> str:
        """The theme snippet (adapters.snippets), with this platform's product, cart and customer variables."""
        from adapters.snippets import render

        return render(self.platform, ctx)
