"""Segment's Spec (common fields, identify/alias) and E-commerce Spec v2 → engine records.

References: platforms.md §4.4-4.6; segment-docs ``src/connections/spec/common.md`` and
``src/connections/spec/ecommerce/v2.md``. Every platform value goes through an explicit table:
event names Shelfwise does not know are logged and skipped, never guessed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from adapters.actions import ForgetShopper
from adapters.base import PayloadError
from adapters.common import tolerant_id, tolerant_number
from engine.records import (
    ADD_TO_CART,
    CLICK,
    MAX_ID_LENGTH,
    PURCHASE,
    REMOVE_FROM_CART,
    VIEW,
    WISHLIST,
    Alias,
    Interaction,
    Record,
    User,
)

log = logging.getLogger(__name__)

#: Custom event types (Personalize allows any string) for steps that have no named constant.
CART_VIEW = "cart-view"
CHECKOUT = "checkout"

#: Track events about one product, its fields flat in ``properties`` (v2 names, then v1 aliases).
SINGLE_PRODUCT_EVENTS: dict[str, str] = {
    "Product Viewed": VIEW,
    "Product Clicked": CLICK,
    "Product Added": ADD_TO_CART,
    "Product Removed": REMOVE_FROM_CART,
    "Product Added to Wishlist": WISHLIST,
    "Wishlist Product Added to Cart": ADD_TO_CART,
    "Viewed Product": VIEW,
    "Clicked Product": CLICK,
    "Added Product": ADD_TO_CART,
    "Removed Product": REMOVE_FROM_CART,
}
#: Track events with a ``products[]`` list: one interaction per product.
PRODUCT_LIST_EVENTS: dict[str, str] = {
    "Cart Viewed": CART_VIEW,
    "Checkout Started": CHECKOUT,
    "Order Completed": PURCHASE,
    "Viewed Cart": CART_VIEW,
    "Started Order": CHECKOUT,
    "Completed Order": PURCHASE,
}
#: Spec events that are understood but name no product to learn from (searches, lists, coupons...).
IGNORED_EVENTS = frozenset(
    {
        "Products Searched",
        "Product List Viewed",
        "Product List Filtered",
        "Viewed Product Category",
        "Promotion Viewed",
        "Promotion Clicked",
        "Checkout Step Viewed",
        "Checkout Step Completed",
        "Payment Info Entered",
        "Order Updated",
        "Order Refunded",
        "Order Cancelled",
        "Coupon Entered",
        "Coupon Applied",
        "Coupon Denied",
        "Coupon Removed",
        "Product Removed from Wishlist",
        "Product Shared",
        "Cart Shared",
        "Product Reviewed",
    }
)

#: Traits kept from identify calls when the connection names none (``user_traits`` setting). An
#: allow-list, never a deny-list: Segment's reserved traits (email, name, phone, address, birthday,
#: age, gender, ...) are personal data and stay out unless a merchant deliberately lists one.
DEFAULT_USER_TRAITS: tuple[str, ...] = (
    "plan",
    "membership_status",
    "membership_tier",
    "loyalty_tier",
    "tier",
    "customer_type",
    "account_type",
)
#: Page/screen properties that name the product on the page (``product_id`` is the spec's name).
DEFAULT_PRODUCT_PROPERTIES: tuple[str, ...] = ("product_id", "productId")

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """``membershipTier`` and ``membership_tier`` are the same trait (Segment allows both cases)."""
    return _CAMEL.sub(r"_\1", name).lower().replace(" ", "_").replace("-", "_")


def name_list(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    """A connection setting given as a list or as ``a,b,c`` (``--set user_traits=plan,tier``)."""
    if value is None or value == "":
        return default
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return tuple(str(v).strip() for v in items if str(v).strip())


def allowed_attributes(attributes: Any, allowed: Iterable[str]) -> dict[str, Any]:
    """Scalar attributes named in ``allowed`` (compared in snake_case), keyed by upper-case names."""
    if not isinstance(attributes, Mapping):
        return {}
    wanted = {snake(name) for name in allowed}
    kept: dict[str, Any] = {}
    for key, value in attributes.items():
        name = snake(str(key))
        if name in wanted and isinstance(value, str | int | float | bool) and value != "":
            kept[name.upper()] = value
    return kept


def epoch_seconds(message: Mapping[str, Any]) -> float:
    """``timestamp`` is when it happened (corrected for device clocks); older libraries send only
    ``originalTimestamp``; ``receivedAt`` is the last resort (common.md, Timestamps)."""
    for key in ("timestamp", "originalTimestamp", "receivedAt"):
        value = message.get(key)
        if isinstance(value, str) and value:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError as exc:
                raise PayloadError(f"Segment {key} {value!r} is not an ISO-8601 timestamp") from exc
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    raise PayloadError("Segment message has no timestamp")


def _id(value: Any) -> str | None:
    return tolerant_id(value)


def _number(value: Any, what: str) -> Decimal | None:
    return tolerant_number(value, what, "segment")


def product_value(product: Mapping[str, Any]) -> float | None:
    """price x quantity (quantity 1 when absent): what the shopper spent or would spend on it."""
    price = _number(product.get("price"), "price")
    if price is None:
        return None
    quantity = _number(product.get("quantity"), "quantity")
    return float(price * (quantity if quantity is not None else 1))


def product_id(product: Mapping[str, Any]) -> str | None:
    """``product_id`` is the database id; v1 used ``id``; ``sku`` is the last resort (v2.md)."""
    for key in ("product_id", "id", "sku"):
        found = _id(product.get(key))
        if found:
            return found
    return None


class MessageParser:
    """Turns one Segment message (an object with a ``type``) into records."""

    def __init__(self, *, user_traits: tuple[str, ...], product_properties: tuple[str, ...]) -> None:
        self.user_traits = user_traits
        self.product_properties = product_properties

    def parse(self, message: Mapping[str, Any]) -> list[Record]:
        kind = message.get("type")
        handler = self.HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            log.info("segment: ignoring message %s with unhandled type %r", message.get("messageId"), kind)
            return []
        return handler(self, message)

    # ----------------------------------------------------------------- who
    @staticmethod
    def _user(message: Mapping[str, Any]) -> str:
        """userId when known, else anonymousId: "every call must have userId or anonymousId"."""
        user = _id(message.get("userId")) or _id(message.get("anonymousId"))
        if user is None:
            raise PayloadError(f"Segment message {message.get('messageId')} has no usable userId or anonymousId")
        return user

    # ----------------------------------------------------------------- track / page / screen
    def _track(self, message: Mapping[str, Any]) -> list[Record]:
        event = message.get("event")
        properties = message.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        if event in SINGLE_PRODUCT_EVENTS:
            return self._interactions(message, SINGLE_PRODUCT_EVENTS[event], [properties], single=True)
        if event in PRODUCT_LIST_EVENTS:
            products = properties.get("products")
            if not isinstance(products, list):
                log.info("segment: %r message %s has no products list; skipped", event, message.get("messageId"))
                return []
            return self._interactions(message, PRODUCT_LIST_EVENTS[event], products, single=False)
        if event in IGNORED_EVENTS:
            log.info("segment: %r names no product to learn from; skipped", event)
        else:
            log.info("segment: ignoring track event %r (not in the e-commerce spec table)", event)
        return []

    def _page(self, message: Mapping[str, Any]) -> list[Record]:
        """A page or screen names a product only through a property; without one it is skipped."""
        properties = message.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        for key in self.product_properties:
            if _id(properties.get(key)):
                return self._interactions(message, VIEW, [{"product_id": properties[key]}], single=True)
        log.info("segment: %s %s names no product; skipped", message.get("type"), message.get("messageId"))
        return []

    def _interactions(
        self, message: Mapping[str, Any], event_type: str, products: list[Any], *, single: bool
    ) -> list[Record]:
        user = self._user(message)
        timestamp = epoch_seconds(message)
        message_id = _id(message.get("messageId"))
        anonymous = _id(message.get("anonymousId"))
        records: list[Record] = []
        for position, product in enumerate(products):
            if not isinstance(product, Mapping):
                log.info("segment: message %s product %d is not an object; skipped", message_id, position)
                continue
            item = product_id(product)
            if item is None:
                log.info("segment: message %s product %d has no product_id or sku; skipped", message_id, position)
                continue
            # messageId is Segment's idempotency key; a list event is one interaction per product.
            event_id = message_id if single or message_id is None else f"{message_id}:{position}"
            records.append(
                Interaction(
                    user_id=user,
                    item_id=item,
                    event_type=event_type,
                    timestamp=timestamp,
                    event_value=product_value(product),
                    session_id=anonymous,
                    event_id=event_id[:MAX_ID_LENGTH] if event_id else None,
                    context={},
                )
            )
        return records

    # ----------------------------------------------------------------- identify / alias / delete
    def _identify(self, message: Mapping[str, Any]) -> list[Record]:
        """Allowed traits become the user's attributes; anonymousId + userId join the history."""
        user = self._user(message)
        records: list[Record] = []
        anonymous = _id(message.get("anonymousId"))
        known = _id(message.get("userId"))
        if anonymous and known and anonymous != known:
            records.append(Alias(anonymous_id=anonymous, user_id=known))
        traits = allowed_attributes(message.get("traits"), self.user_traits)
        if traits:
            records.append(User(user_id=user, properties=traits))
        if not records:
            log.info("segment: identify %s carries no allowed traits and no alias; skipped", message.get("messageId"))
        return records

    def _alias(self, message: Mapping[str, Any]) -> list[Record]:
        # The 2018 webhook docs show "Previous ID"/"User ID"; the Spec uses previousId/userId.
        previous = _id(message.get("previousId")) or _id(message.get("Previous ID"))
        known = _id(message.get("userId")) or _id(message.get("User ID"))
        if not previous or not known:
            raise PayloadError(f"Segment alias {message.get('messageId')} needs previousId and userId")
        return [] if previous == known else [Alias(anonymous_id=previous, user_id=known)]

    def _delete(self, message: Mapping[str, Any]) -> list[Record | ForgetShopper]:
        """Segment's user deletion request (Webhooks destination, platforms.md §4.1): a privacy
        erasure of everything held about the user, raw deliveries that name them included."""
        known = _id(message.get("userId"))
        if not known:
            raise PayloadError("Segment delete message has no userId")
        return [ForgetShopper(user_id=known)]

    def _ignored(self, message: Mapping[str, Any]) -> list[Record]:
        log.info(
            "segment: %s message %s is not used for recommendations; skipped",
            message.get("type"),
            message.get("messageId"),
        )
        return []

    HANDLERS: dict[str, Any] = {
        "track": _track,
        "page": _page,
        "screen": _page,
        "identify": _identify,
        "alias": _alias,
        "delete": _delete,
        "group": _ignored,
    }
