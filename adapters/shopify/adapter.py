"""Shopify webhooks → engine records.

Reference: /work/shared/reference/platforms.md §1 and
https://shopify.dev/docs/apps/build/webhooks/delivery-structure (headers, HMAC, body = the bare
REST resource). The adapter only translates: the intake stores, verifies, dedupes and ingests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from adapters.base import Adapter, Delivery, PayloadError, SignatureError
from engine.records import PURCHASE, Interaction, Record, User

log = logging.getLogger(__name__)

# Header names as Shopify documents them; lookups are case-insensitive (HTTP/2 lower-cases them).
HMAC_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"


def sign(body: bytes, secret: str) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value for ``body``: base64(HMAC-SHA256(secret, raw body)).

    Public so tests and tools can produce genuine deliveries (like stripe's test signer) with the
    very code that checks them.
    """
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _header(delivery: Delivery, name: str) -> str | None:
    value = delivery.headers.get(name)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _load_object(delivery: Delivery) -> dict[str, Any]:
    try:
        payload = json.loads(delivery.body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"Shopify body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        # Shopify sends the bare REST resource, always an object (delivery-structure page).
        raise PayloadError(f"Shopify body is not a JSON object but {type(payload).__name__}")
    return payload


def _epoch_seconds(value: Any, field_name: str) -> float:
    """Shopify timestamps are ISO-8601 with an offset (``2008-01-10T11:00:00-05:00``)."""
    if not isinstance(value, str) or not value:
        raise PayloadError(f"Shopify order has no {field_name}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PayloadError(f"Shopify order {field_name} {value!r} is not an ISO-8601 timestamp") from exc
    if moment.tzinfo is None:  # never seen from Shopify; UTC is the only safe reading
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _money(value: Any, what: str) -> Decimal | None:
    """Shopify sends money as strings ("199.00"); Decimal keeps price x quantity exact."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise PayloadError(f"Shopify {what} {value!r} is not a number") from exc
    if not amount.is_finite():
        raise PayloadError(f"Shopify {what} {value!r} is not a finite number")
    return amount


def _guest_id(order_id: Any, session_id: str | None) -> str:
    """The user id of a guest checkout (no customer, or a customer without an id).

    The anonymous shopper is known by the token the storefront uses as its session (cart token,
    else checkout token), exactly as PutEvents knows an anonymous shopper by its ``sessionId``
    (engine/api/events.py), so the purchase joins that shopper's browsing events. With neither
    token the order is the only stable handle: ``order-<id>``, the same across retries, replays
    and ``orders/paid``. Customer ids are numeric, so neither form can collide with one.
    """
    return session_id or f"order-{order_id}"


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


class ShopifyAdapter(Adapter):
    """Shopify: HMAC on the raw body, dedupe on ``X-Shopify-Webhook-Id``, orders → purchases."""

    platform: ClassVar[str] = "shopify"

    # ----------------------------------------------------------------- security
    def verify(self, delivery: Delivery, secret: str) -> None:
        """Check ``X-Shopify-Hmac-Sha256`` against the raw bytes, in constant time.

        Never re-serialise the JSON before hashing: Shopify signs the exact bytes it sent
        (platforms.md §1.2), and any reformatting would break genuine signatures.
        """
        received = _header(delivery, HMAC_HEADER)
        if received is None:
            raise SignatureError(f"missing {HMAC_HEADER} header")
        expected = sign(delivery.body, secret)
        if not hmac.compare_digest(expected.encode("ascii"), received.encode("utf-8")):
            raise SignatureError(f"{HMAC_HEADER} does not match the body (wrong secret or altered body)")

    def topic(self, delivery: Delivery) -> str | None:
        return _header(delivery, TOPIC_HEADER)

    def delivery_id(self, delivery: Delivery) -> str | None:
        """``X-Shopify-Webhook-Id``: "A unique composite key per delivery. Use to ... deduplicate".

        Retries of one delivery keep this id (they resend the original payload, platforms.md §1.3),
        so it is the idempotency key. ``X-Shopify-Event-Id`` is shared across *different*
        subscriptions for one merchant action, so it must not be used here.
        """
        return _header(delivery, WEBHOOK_ID_HEADER)

    # ----------------------------------------------------------------- parsing
    def parse(self, delivery: Delivery) -> list[Record]:
        """Dispatch on the topic through :attr:`HANDLERS`; unknown topics give [] and a log line."""
        topic = self.topic(delivery)
        handler = self.HANDLERS.get(topic or "")
        if handler is None:
            log.info("shopify: ignoring delivery with unhandled topic %r", topic)
            return []
        return handler(self, _load_object(delivery))

    def _parse_order(self, order: dict[str, Any]) -> list[Record]:
        """An order (``orders/create`` or ``orders/paid``, both the REST Order resource) → purchases.

        One purchase interaction per line item. Variants roll up to their product, because the
        catalog (and so every recommendation) is keyed by product. Personal data (email, names,
        addresses, phone, notes, tags) is never copied: only ids, money, time and tokens.
        """
        line_items = order.get("line_items")
        if not isinstance(line_items, list):
            raise PayloadError("Shopify order has no line_items list")
        order_id = order.get("id")
        if order_id is None:
            raise PayloadError("Shopify order has no id")
        timestamp = _epoch_seconds(order.get("created_at"), "created_at")
        session_id = _str_or_none(order.get("cart_token")) or _str_or_none(order.get("checkout_token"))

        customer = order.get("customer")
        customer_id = customer.get("id") if isinstance(customer, dict) else None
        user_id = str(customer_id) if customer_id is not None else _guest_id(order_id, session_id)

        records: list[Record] = []
        for line in line_items:
            if not isinstance(line, dict):
                raise PayloadError("Shopify order line_items entry is not an object")
            product_id = line.get("product_id")
            if product_id is None:
                # Custom line items (tips, manual charges) and deleted products have no product.
                log.info(
                    "shopify: order %s line item %s has no product_id; skipped", order_id, line.get("id")
                )
                continue
            quantity = line.get("quantity", 1)
            if not isinstance(quantity, int) or isinstance(quantity, bool):
                raise PayloadError(
                    f"Shopify line item {line.get('id')} quantity {quantity!r} is not an integer"
                )
            price = _money(line.get("price"), f"line item {line.get('id')} price")
            records.append(
                Interaction(
                    user_id=user_id,
                    item_id=str(product_id),
                    event_type=PURCHASE,
                    timestamp=timestamp,
                    event_value=float(price * quantity) if price is not None else None,
                    session_id=session_id,
                    event_id=f"{order_id}:{line.get('id')}",
                    context={},
                )
            )

        if customer_id is not None:
            records.append(User(user_id=user_id, properties=self._user_properties(customer)))
        return records

    @staticmethod
    def _user_properties(customer: dict[str, Any]) -> dict[str, Any]:
        """Non-personal customer attributes only: an allow-list, never a deny-list.

        ``orders_count`` was dropped from newer API versions' payloads, so it is optional.
        """
        properties: dict[str, Any] = {}
        orders_count = customer.get("orders_count")
        if isinstance(orders_count, int) and not isinstance(orders_count, bool):
            properties["ORDERS_COUNT"] = orders_count
        return properties

    #: Topic → handler. Topics not listed are acknowledged and ignored (parse() logs them).
    #: ``orders/paid`` carries the same Order resource as ``orders/create`` (platforms.md §1.4).
    HANDLERS: ClassVar[dict[str, Callable[[ShopifyAdapter, dict[str, Any]], list[Record]]]] = {
        "orders/create": _parse_order,
        "orders/paid": _parse_order,
    }
