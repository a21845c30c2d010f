"""BigCommerce orders (v2 ``/orders/{id}`` and its ``/products``) and customers → engine records.

Which orders are purchases is decided by an explicit table of BigCommerce's order statuses
(https://developer.bigcommerce.com/docs/rest-management/orders/order-status): an incomplete checkout,
a declined payment or a cancelled or refunded order is not something the shopper bought. Unknown
statuses are logged and skipped, never guessed. No personal data (names, e-mails, addresses,
phones, IP addresses, messages) is read from either resource.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from adapters.base import PayloadError
from adapters.common import lookup, money, order_purchase
from engine.records import MAX_ID_LENGTH, Record, User

log = logging.getLogger(__name__)

PLATFORM = "BigCommerce"

#: status_id → whether the order counts as a purchase.
ORDER_STATUSES: dict[int, bool] = {
    0: False,  # Incomplete: an abandoned checkout, never paid
    1: True,  # Pending
    2: True,  # Shipped
    3: True,  # Partially Shipped
    4: False,  # Refunded
    5: False,  # Cancelled
    6: False,  # Declined
    7: True,  # Awaiting Payment (offline payment methods)
    8: True,  # Awaiting Pickup
    9: True,  # Awaiting Shipment
    10: True,  # Completed
    11: True,  # Awaiting Fulfillment
    12: True,  # Manual Verification Required
    13: True,  # Disputed
    14: True,  # Partially Refunded
}


def order_event_prefix(order_id: int) -> str:
    """Every purchase of an order has an event id starting with this."""
    return f"bigcommerce:{order_id}:"


def order_records(order: dict[str, Any], lines: list[dict[str, Any]]) -> list[Record]:
    """One purchase per order line; variants roll up to their product.

    Event ids are ``bigcommerce:<order>:<line>``: the same for the ``created``, ``updated`` and
    ``statusUpdated`` callbacks and for back-fill, so an order is counted once however often it
    arrives.
    """
    order_id = order.get("id")
    if not isinstance(order_id, int) or isinstance(order_id, bool):
        raise PayloadError(f"BigCommerce order has no numeric id: {str(order_id)[:40]!r}")
    purchase = lookup(ORDER_STATUSES, order.get("status_id"), "order status_id", PLATFORM)
    if not purchase:
        if purchase is False:
            log.info("bigcommerce: order %s is %r, not a purchase; skipped", order_id, order.get("status"))
        return []

    timestamp = rfc2822_seconds(order.get("date_created"), f"order {order_id} date_created")
    cart_id = order.get("cart_id") if isinstance(order.get("cart_id"), str) and order.get("cart_id") else None
    customer_id = order.get("customer_id")
    if isinstance(customer_id, int) and not isinstance(customer_id, bool) and customer_id > 0:
        user_id = str(customer_id)
    else:
        # A guest (customer_id 0). The storefront knows the shopper by the cart, as PutEvents knows
        # an anonymous shopper by its sessionId; without a cart the order is the only stable handle.
        user_id = cart_id or f"order-{order_id}"
    if len(user_id) > MAX_ID_LENGTH:
        raise PayloadError(f"BigCommerce order {order_id} cart_id is longer than {MAX_ID_LENGTH} characters")

    records: list[Record] = []
    for line in lines:
        if not isinstance(line, dict):
            raise PayloadError(f"BigCommerce order {order_id} has a product line that is not an object")
        product_id = line.get("product_id")
        if not isinstance(product_id, int) or isinstance(product_id, bool) or product_id <= 0:
            # Custom products added by staff have product_id 0: nothing in the catalog to recommend.
            log.info("bigcommerce: order %s line %s has no catalog product; skipped", order_id, line.get("id"))
            continue
        quantity = line.get("quantity", 1)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise PayloadError(
                f"BigCommerce order {order_id} line {line.get('id')} quantity {quantity!r} is not a count"
            )
        price = money(line.get("price_ex_tax"), f"order {order_id} line {line.get('id')} price_ex_tax", PLATFORM)
        records.append(
            order_purchase(
                user_id=user_id,
                product_id=str(product_id),
                timestamp=timestamp,
                revenue=None if price is None else price * quantity,
                session_id=cart_id,
                event_id=f"{order_event_prefix(order_id)}{line.get('id')}",
            )
        )
    return records


def customer_user(customer: dict[str, Any]) -> User:
    """A customer → a User with its id and customer group only (names, e-mails, phones stay out)."""
    customer_id = customer.get("id")
    if not isinstance(customer_id, int) or isinstance(customer_id, bool) or customer_id <= 0:
        raise PayloadError(f"BigCommerce customer has no numeric id: {str(customer_id)[:40]!r}")
    properties: dict[str, Any] = {}
    group = customer.get("customer_group_id")
    if isinstance(group, int) and not isinstance(group, bool) and group > 0:
        properties["CUSTOMER_GROUP"] = str(group)
    return User(user_id=str(customer_id), properties=properties)


def rfc2822_seconds(value: Any, what: str) -> float:
    """v2 dates are RFC 2822 (``Tue, 05 Mar 2019 21:57:34 +0000``), not ISO-8601."""
    if not isinstance(value, str) or not value:
        raise PayloadError(f"BigCommerce {what} is missing")
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"BigCommerce {what} {value!r} is not an RFC 2822 date") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso_from_rfc2822(value: Any) -> str | None:
    """A v2 date as ISO-8601, the form back-fill keeps its high-water mark in; None if unreadable."""
    try:
        return datetime.fromtimestamp(rfc2822_seconds(value, "date"), UTC).isoformat()
    except PayloadError:
        return None
