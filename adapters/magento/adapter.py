"""Magento 2 / Adobe Commerce Webhooks → engine records, and the REST back-fill.

Reference: /work/shared/reference/platforms.md §3. The Webhooks module calls synchronously and
waits: the answer must be a fast 200 with ``{"op": "success"}`` (a required hook that fails aborts
the shopper's action), so the intake answers as soon as the delivery is stored and verified.

Authenticity: with signing enabled in the Admin, ``x-adobe-commerce-webhook-signature`` is checked
against the public key saved on the connection (``--set public_key=@commerce.pem``). Without it, each
hook is configured with a header ``Authorization: Bearer <the connection's secret>`` (the module's
per-hook ``<headers>``), compared in constant time. Commerce names no topic in its request, so each
hook also sends ``X-Shelfwise-Topic: <hook name>`` (e.g. ``observer.catalog_product_save_after``);
observer payloads without it are recognised by their ``eventName``. Commerce sends no delivery id:
the intake dedupes on the body's hash.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from adapters.actions import Checkpoint
from adapters.base import Acknowledgement, Adapter, Delivery, PlatformClient, SignatureError, WidgetContext
from adapters.common import header, load_json_object
from adapters.magento import mapping
from adapters.magento.backfill import MagentoBackfill, rest_client
from adapters.magento.signature import load_public_key, signature_is_valid
from adapters.magento.storefront import Storefront
from engine.records import Record

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-adobe-commerce-webhook-signature"
TOPIC_HEADER = "X-Shelfwise-Topic"
TOKEN_HEADER = "Authorization"

#: (body, time received, the connection's storefront) → records.
Handler = Callable[[dict[str, Any], "float | None", Storefront], Any]


def _entity(*names: str, translate: Callable[[dict[str, Any]], Any]) -> Handler:
    return lambda body, _received_at, _storefront: translate(mapping.find_object(body, *names))


def _timed(translate: Callable[[dict[str, Any], float | None], Any]) -> Handler:
    return lambda body, received_at, _storefront: translate(body, received_at)


def _product(body: dict[str, Any], _received_at: float | None, storefront: Storefront) -> Any:
    return mapping.product_item(mapping.find_object(body, "product", "data_object"), storefront)


def _order(body: dict[str, Any], received_at: float | None, _storefront: Storefront) -> list[Any]:
    return mapping.order_records(mapping.find_object(body, "order", "data_object"), received_at)


class MagentoAdapter(Adapter):
    platform: ClassVar[str] = "magento"

    #: Hook name → translation. Plugin hooks name the intercepted interface method (PaaS spells
    #: ``magento.sales...``, SaaS ``sales...``); observer hooks the event.
    HANDLERS: ClassVar[dict[str, Handler]] = {
        "observer.catalog_product_save_after": _product,
        "observer.catalog_product_save_commit_after": _product,
        "observer.catalog_product_delete_after": _entity("product", "data_object", translate=mapping.product_deletion),
        "observer.catalog_product_delete_commit_after": _entity(
            "product", "data_object", translate=mapping.product_deletion
        ),
        "observer.sales_order_place_after": _order,
        "observer.checkout_submit_all_after": _order,
        "plugin.magento.sales.api.order_management.place": _order,
        "plugin.sales.api.order_management.place": _order,
        "observer.checkout_cart_product_add_after": _timed(mapping.cart_add),
        "observer.sales_quote_remove_item": _timed(mapping.cart_remove),
        "observer.wishlist_add_product": _timed(mapping.wishlist_add),
        "observer.customer_register_success": _entity("customer", "data_object", translate=mapping.customer_user),
        "observer.customer_save_after": _entity("customer", "data_object", translate=mapping.customer_user),
        "observer.customer_delete_after": _entity("customer", "data_object", translate=mapping.customer_deletion),
        "observer.customer_delete_commit_after": _entity(
            "customer", "data_object", translate=mapping.customer_deletion
        ),
    }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})
        pem = self.config.get("public_key")
        self.public_key = load_public_key(str(pem)) if pem else None
        self.storefront = Storefront.from_config(self.config)

    @classmethod
    def from_connection(cls, config: dict[str, Any]) -> MagentoAdapter:
        return cls(config)

    # ----------------------------------------------------------------- security
    def verify(self, delivery: Delivery, secret: str) -> None:
        if self.public_key is not None:
            signature = header(delivery, SIGNATURE_HEADER)
            if signature is None:
                raise SignatureError(f"missing {SIGNATURE_HEADER} header (signing is on for this connection)")
            if not signature_is_valid(self.public_key, delivery.body, signature):
                raise SignatureError(f"{SIGNATURE_HEADER} does not match the body (wrong key or altered body)")
            return
        token = header(delivery, TOKEN_HEADER)
        if token is None or not token.startswith("Bearer "):
            raise SignatureError(f"missing {TOKEN_HEADER}: Bearer header (or enable signing and save the public key)")
        expected = f"Bearer {secret}".encode()
        if not hmac.compare_digest(expected, token.encode("utf-8")):
            raise SignatureError(f"{TOKEN_HEADER} token does not match this connection's secret")

    def topic(self, delivery: Delivery) -> str | None:
        named = header(delivery, TOPIC_HEADER)
        if named:
            return named
        try:
            event = json.loads(delivery.body).get("eventName")
        except (UnicodeDecodeError, ValueError, AttributeError):
            return None
        return f"observer.{event}" if isinstance(event, str) and event else None

    def delivery_id(self, delivery: Delivery) -> str | None:
        return None

    def acknowledgement(self, delivery: Delivery) -> Acknowledgement | None:
        return Acknowledgement(status=200, body={"op": "success"})

    # ----------------------------------------------------------------- parsing
    def parse(self, delivery: Delivery) -> list[Record]:
        topic = self.topic(delivery)
        handler = self.HANDLERS.get(topic or "")
        if handler is None:
            log.info("magento: ignoring delivery with unhandled hook %r", topic)
            return []
        result = handler(load_json_object(delivery, "Magento"), delivery.received_at, self.storefront)
        return list(result) if isinstance(result, list) else [result]

    # ----------------------------------------------------------------- back-fill
    def api_client(self, **options: Any) -> PlatformClient:
        return rest_client(self.config, **options)

    def backfill(self, client: PlatformClient) -> Iterator[Record | Checkpoint]:
        """Products and orders through REST ``searchCriteria`` pages (pageSize always set)."""
        since = self.config.get("backfill_since")
        since_text = None if since is None else datetime.fromtimestamp(float(since), UTC).strftime("%Y-%m-%d %H:%M:%S")
        yield from MagentoBackfill(client, self.config).run(since_text)

    def render_widget(self, ctx: WidgetContext) -> str:
        """The theme snippet (adapters.snippets), with this platform's product, cart and customer variables."""
        from adapters.snippets import render

        return render(self.platform, ctx)
