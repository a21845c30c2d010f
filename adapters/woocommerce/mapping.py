"""WooCommerce REST v3 resources → engine records. Shared by the webhooks and the REST back-fill.

Webhook bodies are "exactly the same as if requested via the REST API"; a ``deleted`` event sends
only ``{"id": N}`` (platforms.md §2.6). Dates come twice, site-local and ``*_gmt``: only the GMT
twin has a known zone. Personal data (billing, shipping, names, e-mail) is never copied.
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.actions import ForgetShopper
from adapters.base import PayloadError
from adapters.common import (
    AVAILABILITY,
    BACKORDER,
    BRAND,
    CATEGORIES,
    CATEGORY,
    DESCRIPTION,
    IMAGE_URL,
    IN_STOCK,
    OUT_OF_STOCK,
    PRICE,
    STATUS,
    STOCK,
    TAGS,
    TITLE,
    URL,
    categorical,
    drop_empty,
    html_to_text,
    identifier,
    lookup,
    money,
    number,
    optional_time,
    order_purchase,
    parse_time,
    whole_number,
)
from engine.records import Erasure, Item, Record, User

log = logging.getLogger(__name__)

PLATFORM = "WooCommerce"

#: Order status → does the order count as a purchase? Paid or committed orders do; unpaid,
#: failed, cancelled, refunded and draft ones do not (an order moving to ``processing`` later
#: arrives as ``order.updated`` and is then recorded, once: the event ids are the same).
ORDER_IS_PURCHASE = {
    "processing": True,
    "completed": True,
    "on-hold": True,
    "pending": False,
    "failed": False,
    "cancelled": False,
    "refunded": False,
    "trash": False,
    "draft": False,
    "checkout-draft": False,
}
#: Product post status → STATUS.
PRODUCT_STATUS = {
    "publish": "ACTIVE",
    "draft": "DRAFT",
    "pending": "PENDING",
    "private": "PRIVATE",
    "future": "SCHEDULED",
    "trash": "ARCHIVED",
}
#: ``stock_status`` → AVAILABILITY.
STOCK_STATUS = {"instock": IN_STOCK, "outofstock": OUT_OF_STOCK, "onbackorder": BACKORDER}
#: WordPress roles a shopper account has → ROLE (other roles: logged and left out).
CUSTOMER_ROLE = {
    "customer": "customer",
    "subscriber": "subscriber",
    "shop_manager": "staff",
    "administrator": "staff",
    "editor": "staff",
    "author": "staff",
    "contributor": "staff",
}


def _gmt_time(resource: dict[str, Any], name: str, what: str) -> float:
    return parse_time(resource.get(f"{name}_gmt") or resource.get(name), f"{what} {name}_gmt", PLATFORM)


def order_event_prefix(order_id: Any) -> str:
    """Every purchase of an order has an event id starting with this (``wc:<order>:<line>``)."""
    return f"wc:{order_id}:"


def order_records(order: dict[str, Any]) -> list[Record]:
    """``order.created`` / ``order.updated`` / back-fill: a paid order → one purchase per line.

    Variations roll up to their product (``product_id`` is the parent; ``variation_id`` is
    ignored). The event value is the line total after discounts. Guest orders (``customer_id``
    0) are known as ``order-<id>``.
    """
    order_id = identifier(order.get("id"))
    if order_id is None:
        raise PayloadError("WooCommerce order has no id")
    lines = order.get("line_items")
    if not isinstance(lines, list):
        raise PayloadError(f"WooCommerce order {order_id} has no line_items list")
    is_purchase = lookup(ORDER_IS_PURCHASE, order.get("status"), "order status", PLATFORM)
    if not is_purchase:
        log.info("woocommerce: order %s has status %r; no purchase recorded", order_id, order.get("status"))
        return []
    timestamp = _gmt_time(order, "date_created", f"order {order_id}")
    user_id = identifier(order.get("customer_id")) or f"order-{order_id}"
    records: list[Record] = []
    for line in lines:
        if not isinstance(line, dict):
            raise PayloadError(f"WooCommerce order {order_id} line_items entry is not an object")
        product_id = identifier(line.get("product_id"))
        if product_id is None:  # a product deleted since, or a custom line
            log.info("woocommerce: order %s line %s has no product; skipped", order_id, line.get("id"))
            continue
        quantity = whole_number(line.get("quantity", 1), f"line {line.get('id')} quantity", PLATFORM) or 0
        total = money(line.get("total"), f"line {line.get('id')} total", PLATFORM)
        if total is None:
            price = money(line.get("price"), f"line {line.get('id')} price", PLATFORM)
            total = None if price is None else price * quantity
        records.append(
            order_purchase(
                user_id=user_id,
                product_id=product_id,
                timestamp=timestamp,
                revenue=total,
                event_id=f"{order_event_prefix(order_id)}{line.get('id')}",
            )
        )
    return records


def product_item(product: dict[str, Any]) -> list[Record]:
    """``product.created`` / ``product.updated`` / back-fill → one item.

    A variation's own payload is skipped: variations roll up to their parent product, whose
    payload carries the catalog attributes (and whose ``price`` is the current lowest price).
    """
    product_id = identifier(product.get("id"))
    if product_id is None:
        raise PayloadError("WooCommerce product has no id")
    if product.get("type") == "variation":
        log.info("woocommerce: product %s is a variation of %s; skipped", product_id, product.get("parent_id"))
        return []
    categories = [c.get("name") for c in product.get("categories") or [] if isinstance(c, dict)]
    tags = [t.get("name") for t in product.get("tags") or [] if isinstance(t, dict)]
    brands = [b.get("name") for b in product.get("brands") or [] if isinstance(b, dict)]
    manages_stock = product.get("manage_stock") is True
    properties = {
        TITLE: product.get("name") or None,
        DESCRIPTION: html_to_text(product.get("description")) or html_to_text(product.get("short_description")),
        CATEGORY: categories[0] if categories else None,
        CATEGORIES: categorical(categories),
        TAGS: categorical(tags),
        BRAND: categorical(brands),
        PRICE: number(product.get("price"), f"product {product_id} price", PLATFORM),
        STOCK: whole_number(product.get("stock_quantity"), f"product {product_id} stock_quantity", PLATFORM)
        if manages_stock
        else None,
        AVAILABILITY: lookup(STOCK_STATUS, product.get("stock_status"), "stock status", PLATFORM),
        STATUS: lookup(PRODUCT_STATUS, product.get("status"), "product status", PLATFORM),
        URL: product.get("permalink") or None,
        IMAGE_URL: next(
            (i.get("src") for i in product.get("images") or [] if isinstance(i, dict) and i.get("src")), None
        ),
    }
    created = product.get("date_created_gmt") or product.get("date_created")
    return [
        Item(
            item_id=product_id,
            properties=drop_empty(properties),
            creation_timestamp=optional_time(created, f"product {product_id} date_created_gmt", PLATFORM),
        )
    ]


def customer_user(customer: dict[str, Any]) -> list[Record]:
    """``customer.created`` / ``customer.updated`` → a user: the id, the role, whether they paid."""
    customer_id = identifier(customer.get("id"))
    if customer_id is None:
        raise PayloadError("WooCommerce customer has no id")
    properties: dict[str, Any] = {"ROLE": lookup(CUSTOMER_ROLE, customer.get("role"), "customer role", PLATFORM)}
    if isinstance(customer.get("is_paying_customer"), bool):
        properties["IS_PAYING_CUSTOMER"] = customer["is_paying_customer"]
    return [User(user_id=customer_id, properties=drop_empty(properties))]


def _deleted_id(body: dict[str, Any], resource: str) -> str:
    deleted = identifier(body.get("id"))
    if deleted is None:
        raise PayloadError(f"WooCommerce {resource}.deleted has no id")
    return deleted


def product_deletion(body: dict[str, Any]) -> list[Record]:
    return [Erasure(item_id=_deleted_id(body, "product"))]


def customer_deletion(body: dict[str, Any]) -> list[Any]:
    """A deleted customer account is a request to be forgotten: the shopper is erased."""
    return [ForgetShopper(user_id=_deleted_id(body, "customer"))]


def order_deletion(body: dict[str, Any]) -> list[Record]:
    """An order deleted (or trashed) in the admin: its purchases happened and stay recorded; a
    shopper who asks to be forgotten is erased through ``customer.deleted``."""
    log.info("woocommerce: order %s deleted in the store; its purchases stay recorded", _deleted_id(body, "order"))
    return []
