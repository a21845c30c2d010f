"""mParticle event batches (the JSON Reference, outgoing variant) → engine records.

References: platforms.md §5.2-5.3; mParticle/docs ``developers/server/json-reference``. Each
``event_type`` and each commerce ``product_action.action`` goes through an explicit table; what
Shelfwise does not know is logged and skipped, and one malformed event never sinks its batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from adapters.base import PayloadError
from adapters.common import tolerant_id, tolerant_number
from adapters.segment.spec import allowed_attributes
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

#: Custom event type for a checkout step (no named constant in engine.records).
CHECKOUT = "checkout"

#: ``product_action.action`` → event type.
PRODUCT_ACTIONS: dict[str, str] = {
    "view_detail": VIEW,
    "click": CLICK,
    "add_to_cart": ADD_TO_CART,
    "remove_from_cart": REMOVE_FROM_CART,
    "purchase": PURCHASE,
    "add_to_wishlist": WISHLIST,
    "checkout": CHECKOUT,
}
#: Documented actions that say nothing Shelfwise learns from.
IGNORED_PRODUCT_ACTIONS = frozenset({"checkout_option", "refund", "remove_from_wish_list"})
#: Documented event types with no product in them (sessions, crashes, push, ...).
IGNORED_EVENT_TYPES = frozenset(
    {
        "session_start",
        "session_end",
        "uninstall",
        "crash_report",
        "opt_out",
        "push_registration",
        "application_state_transition",
        "push_message",
        "network_performance",
        "breadcrumb",
        "user_attribute_change",
        "user_identity_change",
    }
)
#: User attributes kept when the connection names none (``user_attributes`` setting). mParticle's
#: reserved ``$`` attributes ($firstname, $mobile, $address, $age, ...) are personal and stay out.
DEFAULT_USER_ATTRIBUTES: tuple[str, ...] = (
    "plan",
    "membership_status",
    "membership_tier",
    "loyalty_tier",
    "tier",
    "customer_type",
    "account_type",
)
#: custom_attributes of custom events and screen views that name the product being looked at.
DEFAULT_PRODUCT_ATTRIBUTES: tuple[str, ...] = ("product_id", "productId", "item_id", "itemId")


def _id(value: Any) -> str | None:
    return tolerant_id(value)


def _number(value: Any, what: str) -> Decimal | None:
    return tolerant_number(value, what, "mparticle")


def identities(batch: Mapping[str, Any]) -> dict[str, str]:
    """``user_identities``: an object inbound, an array of ``{identity_type, identity}`` outgoing."""
    raw = batch.get("user_identities")
    found: dict[str, str] = {}
    if isinstance(raw, Mapping):
        for kind, value in raw.items():
            if (text := _id(value)) is not None:
                found[str(kind)] = text
    elif isinstance(raw, list):
        for entry in raw:
            if isinstance(entry, Mapping) and (text := _id(entry.get("identity"))) is not None:
                found[str(entry.get("identity_type"))] = text
    return found


def batch_user(batch: Mapping[str, Any]) -> str:
    """The merchant's ``customer_id`` when known, else mParticle's own id for the person (``mpid``).

    Batches of a logged-in person carry both, so the parser also aliases the mpid to the customer:
    events recorded under the mpid before the login join the customer's history.
    """
    user = identities(batch).get("customer_id") or _id(batch.get("mpid"))
    if user is None:
        raise PayloadError("mParticle batch has neither a customer_id identity nor an mpid")
    return user


class BatchParser:
    def __init__(self, *, user_attributes: tuple[str, ...], product_attributes: tuple[str, ...]) -> None:
        self.user_attributes = user_attributes
        self.product_attributes = product_attributes

    def parse(self, batch: Mapping[str, Any]) -> list[Record]:
        events = batch.get("events", [])
        if not isinstance(events, list):
            raise PayloadError("mParticle batch events is not a list")
        user = batch_user(batch)
        records: list[Record] = []
        for position, event in enumerate(events):
            try:
                records.extend(self._event(batch, user, event))
            except PayloadError as exc:
                log.warning("mparticle: batch event %d skipped: %s", position, exc)
        attributes = allowed_attributes(batch.get("user_attributes"), self.user_attributes)
        if attributes:
            records.append(User(user_id=user, properties=attributes))
        mpid = _id(batch.get("mpid"))
        if records and mpid is not None and mpid != user:
            # The person is logged in: what they did while known only by the mpid is theirs. Every
            # batch of theirs carries both ids, so a batch with nothing to store (nothing Shelfwise
            # understands) can leave the join to the next one and stay a no-op.
            records.insert(0, Alias(anonymous_id=mpid, user_id=user))
        return records

    def _event(self, batch: Mapping[str, Any], user: str, event: Any) -> list[Record]:
        if not isinstance(event, Mapping) or not isinstance(event.get("data"), Mapping):
            raise PayloadError("event is not an object with a data object")
        kind = event.get("event_type")
        data = event["data"]
        if kind == "commerce_event":
            return self._commerce(batch, user, data)
        if kind in ("custom_event", "screen_view"):
            return self._product_view(batch, user, data, kind)
        if kind in IGNORED_EVENT_TYPES:
            log.debug("mparticle: %s events name no product; skipped", kind)
        else:
            log.info("mparticle: ignoring event with unhandled event_type %r", kind)
        return []

    def _commerce(self, batch: Mapping[str, Any], user: str, data: Mapping[str, Any]) -> list[Record]:
        action = data.get("product_action")
        if not isinstance(action, Mapping):
            # promotion_action and product_impressions: the other two commerce variants.
            log.info("mparticle: commerce event without a product_action; skipped")
            return []
        name = action.get("action")
        event_type = PRODUCT_ACTIONS.get(name) if isinstance(name, str) else None
        if event_type is None:
            if name in IGNORED_PRODUCT_ACTIONS:
                log.info("mparticle: product_action %r is not used for recommendations; skipped", name)
            else:
                log.info("mparticle: ignoring commerce event with unknown product_action %r", name)
            return []
        products = action.get("products")
        if not isinstance(products, list):
            raise PayloadError(f"product_action {name!r} has no products list")
        return self._interactions(batch, user, data, event_type, products)

    def _product_view(self, batch: Mapping[str, Any], user: str, data: Mapping[str, Any], kind: str) -> list[Record]:
        attributes = data.get("custom_attributes")
        attributes = attributes if isinstance(attributes, Mapping) else {}
        for key in self.product_attributes:
            if _id(attributes.get(key)):
                return self._interactions(batch, user, data, VIEW, [{"id": attributes[key]}])
        log.debug("mparticle: %s %r names no product; skipped", kind, data.get("event_name") or data.get("screen_name"))
        return []

    def _interactions(
        self, batch: Mapping[str, Any], user: str, data: Mapping[str, Any], event_type: str, products: list[Any]
    ) -> list[Record]:
        timestamp = self._seconds(batch, data)
        # message_id is added to outgoing events "for ... de-duping"; source_message_id is the sender's.
        message_id = _id(data.get("message_id")) or _id(data.get("source_message_id")) or _id(data.get("event_id"))
        session = _id(data.get("session_uuid")) or _id(data.get("session_id"))
        records: list[Record] = []
        for position, product in enumerate(products):
            item = _id(product.get("id")) if isinstance(product, Mapping) else None
            if item is None:
                log.info("mparticle: event %s product %d has no id; skipped", message_id, position)
                continue
            price = _number(product.get("price"), "price")
            quantity = _number(product.get("quantity"), "quantity")
            value = float(price * (quantity if quantity is not None else 1)) if price is not None else None
            records.append(
                Interaction(
                    user_id=user,
                    item_id=item,
                    event_type=event_type,
                    timestamp=timestamp,
                    event_value=value,
                    session_id=session,
                    event_id=f"{message_id}:{position}"[:MAX_ID_LENGTH] if message_id else None,
                    context={},
                )
            )
        return records

    @staticmethod
    def _seconds(batch: Mapping[str, Any], data: Mapping[str, Any]) -> float:
        """Events carry epoch milliseconds; the batch's receive time is the fallback."""
        for value in (data.get("timestamp_unixtime_ms"), batch.get("timestamp_unixtime_ms")):
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value) / 1000.0
        raise PayloadError("event has no timestamp_unixtime_ms")
