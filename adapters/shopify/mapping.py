"""Shopify resources → engine records. Shared by the webhooks and the Admin API back-fill.

Resource shapes: /work/shared/reference/platforms.md §1.5 and §1.6 (REST resources, the bare object
in a webhook body). Personal data (e-mail, names, addresses, phone, notes) is never copied: only
ids, money, quantities, times and catalog attributes; customers' attributes are an allow-list.
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.actions import DisconnectStore, ExportShopper, ForgetShopper
from adapters.base import PayloadError
from adapters.common import (
    AVAILABILITY,
    BACKORDER,
    BRAND,
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
    optional_time,
    order_purchase,
    parse_time,
)
from engine.records import ADD_TO_CART, Alias, Erasure, Interaction, Item, Record, User

log = logging.getLogger(__name__)

PLATFORM = "Shopify"

#: Product ``status`` → the STATUS item property (unknown values: logged, property left out).
PRODUCT_STATUS = {"active": "ACTIVE", "draft": "DRAFT", "archived": "ARCHIVED", "unlisted": "UNLISTED"}
#: Customer account ``state`` → the STATE user property.
CUSTOMER_STATE = {"enabled": "ENABLED", "disabled": "DISABLED", "invited": "INVITED", "declined": "DECLINED"}


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _quantity(line: dict[str, Any]) -> int:
    quantity = line.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise PayloadError(f"Shopify line item {line.get('id')} quantity {quantity!r} is not an integer")
    return quantity


def _line_items(resource: dict[str, Any], what: str) -> list[dict[str, Any]]:
    line_items = resource.get("line_items")
    if not isinstance(line_items, list):
        raise PayloadError(f"Shopify {what} has no line_items list")
    for line in line_items:
        if not isinstance(line, dict):
            raise PayloadError(f"Shopify {what} line_items entry is not an object")
    return line_items


def guest_id(order_id: Any, session_id: str | None) -> str:
    """The user id of a guest checkout (no customer, or a customer without an id).

    The anonymous shopper is known by the token the storefront uses as its session (cart token,
    else checkout token), exactly as PutEvents knows an anonymous shopper by its ``sessionId``
    (engine/api/events.py), so the purchase joins that shopper's browsing events. With neither
    token the order is the only stable handle: ``order-<id>``, the same across retries, replays
    and ``orders/paid``. Customer ids are numeric, so neither form can collide with one.
    """
    return session_id or f"order-{order_id}"


def order_event_prefix(order_id: Any) -> str:
    """Every purchase of an order has an event id starting with this (``<order id>:<line id>``)."""
    return f"{order_id}:"


# --------------------------------------------------------------------- customers
def customer_properties(customer: dict[str, Any]) -> dict[str, Any]:
    """Non-personal customer attributes only: an allow-list, never a deny-list.

    ``orders_count`` was dropped from newer API versions' payloads, so it is optional.
    """
    properties: dict[str, Any] = {}
    orders_count = customer.get("orders_count")
    if isinstance(orders_count, int) and not isinstance(orders_count, bool):
        properties["ORDERS_COUNT"] = orders_count
    state = lookup(CUSTOMER_STATE, customer.get("state"), "customer state", PLATFORM)
    if state:
        properties["STATE"] = state
    return properties


def customer_user(customer: dict[str, Any]) -> User:
    """``customers/create`` and ``customers/update``: the Customer resource → a user."""
    customer_id = identifier(customer.get("id"))
    if customer_id is None:
        raise PayloadError("Shopify customer has no id")
    return User(user_id=customer_id, properties=customer_properties(customer))


def _customer_id(resource: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    customer = resource.get("customer")
    if not isinstance(customer, dict):
        return None, None
    return identifier(customer.get("id")), customer


# --------------------------------------------------------------------- orders
def order_records(order: dict[str, Any]) -> list[Record]:
    """An order (``orders/create`` or ``orders/paid``, both the REST Order resource) → purchases.

    One purchase interaction per line item. Variants roll up to their product, because the
    catalog (and so every recommendation) is keyed by product. When a known customer checks out
    with a cart token, an Alias joins the cart's anonymous events to the customer.
    """
    line_items = _line_items(order, "order")
    order_id = order.get("id")
    if order_id is None:
        raise PayloadError("Shopify order has no id")
    timestamp = parse_time(order.get("created_at"), "order created_at", PLATFORM)
    session_id = _str_or_none(order.get("cart_token")) or _str_or_none(order.get("checkout_token"))
    customer_id, customer = _customer_id(order)
    user_id = customer_id or guest_id(order_id, session_id)

    records: list[Record] = []
    if customer_id is not None and session_id is not None:
        records.append(Alias(anonymous_id=session_id, user_id=customer_id))
    for line in line_items:
        product_id = line.get("product_id")
        if product_id is None:
            # Custom line items (tips, manual charges) and deleted products have no product.
            log.info("shopify: order %s line item %s has no product_id; skipped", order_id, line.get("id"))
            continue
        quantity = _quantity(line)
        price = money(line.get("price"), f"line item {line.get('id')} price", PLATFORM)
        records.append(
            order_purchase(
                user_id=user_id,
                product_id=str(product_id),
                timestamp=timestamp,
                revenue=None if price is None else price * quantity,
                session_id=session_id,
                event_id=f"{order_event_prefix(order_id)}{line.get('id')}",
            )
        )
    if customer_id is not None and customer is not None:
        records.append(User(user_id=customer_id, properties=customer_properties(customer)))
    return records


# --------------------------------------------------------------------- carts and checkouts
def _cart_interactions(
    resource: dict[str, Any], *, what: str, user_id: str, session_id: str, event_scope: str
) -> list[Record]:
    """One add-to-cart per product in a cart or checkout, its quantity as the event value.

    Shopify sends the whole cart on every change, not what changed. The event id is scoped to the
    cart and product (``cart:<token>:<product>``), so the first sighting of a product in a cart is
    the add-to-cart and later updates (and the checkout made from that cart) store nothing twice.
    A product taken out of a cart cannot be told apart from one never added, so carts give no
    remove-from-cart events.
    """
    line_items = _line_items(resource, what)
    stamp = resource.get("updated_at") or resource.get("created_at")
    timestamp = parse_time(stamp, f"{what} updated_at", PLATFORM)
    quantities: dict[str, int] = {}
    for line in line_items:
        product_id = identifier(line.get("product_id"))
        if product_id is None:
            log.info("shopify: %s %s line without product_id; skipped", what, session_id)
            continue
        quantities[product_id] = quantities.get(product_id, 0) + _quantity(line)
    return [
        Interaction(
            user_id=user_id,
            item_id=product_id,
            event_type=ADD_TO_CART,
            timestamp=timestamp,
            event_value=float(quantity),
            session_id=session_id,
            event_id=f"{event_scope}:{product_id}",
            context={},
        )
        for product_id, quantity in quantities.items()
    ]


def cart_records(cart: dict[str, Any]) -> list[Record]:
    """``carts/create`` and ``carts/update``: the cart's shopper is known by its token only."""
    token = _str_or_none(cart.get("token")) or _str_or_none(cart.get("id"))
    if token is None:
        raise PayloadError("Shopify cart has no token")
    return _cart_interactions(cart, what="cart", user_id=token, session_id=token, event_scope=f"cart:{token}")


def checkout_records(checkout: dict[str, Any]) -> list[Record]:
    """``checkouts/create`` and ``checkouts/update``: add-to-carts of the checkout's cart; a logged-in
    customer's checkout also aliases the cart token to the customer."""
    cart_token = _str_or_none(checkout.get("cart_token"))
    token = _str_or_none(checkout.get("token"))
    session_id = cart_token or token
    if session_id is None:
        raise PayloadError("Shopify checkout has neither a token nor a cart_token")
    customer_id, customer = _customer_id(checkout)
    scope = f"cart:{cart_token}" if cart_token else f"checkout:{token}"
    records: list[Record] = []
    if customer_id is not None:
        records.append(Alias(anonymous_id=session_id, user_id=customer_id))
    records += _cart_interactions(
        checkout, what="checkout", user_id=customer_id or session_id, session_id=session_id, event_scope=scope
    )
    if customer_id is not None and customer is not None:
        records.append(User(user_id=customer_id, properties=customer_properties(customer)))
    return records


# --------------------------------------------------------------------- products
def _availability(variants: list[dict[str, Any]]) -> str | None:
    """In stock when any variant has stock or is not tracked; backorder when any may be oversold."""
    if not variants:
        return None
    tracked_out = True
    oversell = False
    for variant in variants:
        quantity = variant.get("inventory_quantity")
        tracked = variant.get("inventory_management") not in (None, "")
        if not tracked or (isinstance(quantity, int) and quantity > 0):
            tracked_out = False
        if variant.get("inventory_policy") == "continue":
            oversell = True
    if not tracked_out:
        return IN_STOCK
    return BACKORDER if oversell else OUT_OF_STOCK


def product_item(product: dict[str, Any]) -> Item:
    """``products/create|update`` and the back-fill: the Product resource → one item.

    Variants roll up: the item's PRICE is the lowest variant price ("from $x"), STOCK the sum of the
    tracked variants' inventory, AVAILABILITY whether any variant can be bought.
    """
    product_id = identifier(product.get("id"))
    if product_id is None:
        raise PayloadError("Shopify product has no id")
    variants = product.get("variants") or []
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise PayloadError(f"Shopify product {product_id} variants is not a list of objects")
    prices = [
        p for v in variants if (p := money(v.get("price"), f"product {product_id} variant price", PLATFORM)) is not None
    ]
    stock = [v["inventory_quantity"] for v in variants if isinstance(v.get("inventory_quantity"), int)]
    tags = product.get("tags")
    tag_values = tags.split(",") if isinstance(tags, str) else tags if isinstance(tags, list) else []
    properties = {
        TITLE: _str_or_none(product.get("title")),
        DESCRIPTION: html_to_text(product.get("body_html")),
        CATEGORY: _str_or_none(product.get("product_type")),
        BRAND: _str_or_none(product.get("vendor")),
        TAGS: categorical(tag_values),
        PRICE: float(min(prices)) if prices else None,
        STOCK: sum(stock) if stock else None,
        AVAILABILITY: _availability(variants),
        STATUS: lookup(PRODUCT_STATUS, product.get("status"), "product status", PLATFORM),
        # Storefront pages live at /products/<handle> on the shop's own domain.
        URL: f"/products/{handle}" if (handle := _str_or_none(product.get("handle"))) else None,
        IMAGE_URL: _first_image(product),
    }
    return Item(
        item_id=product_id,
        properties=drop_empty(properties),
        creation_timestamp=optional_time(product.get("created_at"), "product created_at", PLATFORM),
    )


def _first_image(product: dict[str, Any]) -> str | None:
    image = product.get("image")
    images = product.get("images")
    if not isinstance(image, dict) and isinstance(images, list) and images:
        image = images[0]
    return _str_or_none(image.get("src")) if isinstance(image, dict) else None


def product_deletion(body: dict[str, Any]) -> Erasure:
    """``products/delete`` sends only ``{"id": ...}``."""
    product_id = identifier(body.get("id"))
    if product_id is None:
        raise PayloadError("Shopify products/delete has no id")
    return Erasure(item_id=product_id)


# --------------------------------------------------------------------- privacy and lifecycle
def _privacy_subject(body: dict[str, Any], orders_key: str) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
    customer = body.get("customer") if isinstance(body.get("customer"), dict) else {}
    orders = body.get(orders_key) or []
    if not isinstance(orders, list):
        raise PayloadError(f"Shopify {orders_key} is not a list")
    user_id = identifier(customer.get("id"))
    prefixes = tuple(order_event_prefix(o) for o in orders if identifier(o) is not None)
    identifiers = tuple(str(customer[k]) for k in ("email", "phone") if customer.get(k))
    return user_id, prefixes, identifiers


def redact_request(body: dict[str, Any]) -> ForgetShopper:
    """``customers/redact``: the customer (by id, or only by e-mail: the docs warn the id may be
    missing) and their ``orders_to_redact``, whose guest purchases carry an anonymous id."""
    user_id, prefixes, identifiers = _privacy_subject(body, "orders_to_redact")
    if user_id is None and not prefixes and not identifiers:
        raise PayloadError("Shopify customers/redact names no customer id, e-mail, phone or order")
    return ForgetShopper(user_id=user_id, event_id_prefixes=prefixes, identifiers=identifiers)


def data_request(body: dict[str, Any]) -> ExportShopper:
    """``customers/data_request``: export what is held about the customer and their orders."""
    user_id, prefixes, _identifiers = _privacy_subject(body, "orders_requested")
    if user_id is None and not prefixes:
        raise PayloadError("Shopify customers/data_request names no customer id or order")
    request = body.get("data_request") if isinstance(body.get("data_request"), dict) else {}
    return ExportShopper(user_id=user_id, request_id=identifier(request.get("id")), event_id_prefixes=prefixes)


def shop_redact(_body: dict[str, Any]) -> DisconnectStore:
    """``shop/redact`` (48 hours after uninstall): erase everything held for the store."""
    return DisconnectStore(erase=True)


def app_uninstalled(_body: dict[str, Any]) -> DisconnectStore:
    """``app/uninstalled``: stop ingesting; the data stays until ``shop/redact`` or a reinstall."""
    return DisconnectStore(erase=False)
