"""Magento 2 / Adobe Commerce data → engine records. Shared by the webhooks and the REST back-fill.

Two shapes of the same entities arrive: the REST resources the back-fill reads (a product's
attributes partly in ``custom_attributes: [{attribute_code, value}]``, stock in
``extension_attributes.stock_item``) and, in observer webhooks, the model's flat data
(``{"eventName": ..., "data": {"data_object": {...}}}``, platforms.md §3.1). :func:`attributes`
reads both. Times are the database's UTC ``2017-11-29 20:40:07``. Personal data (names, e-mail,
addresses) is never copied.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from adapters.actions import ForgetShopper
from adapters.base import PayloadError
from adapters.common import (
    AVAILABILITY,
    BRAND,
    CATEGORIES,
    DESCRIPTION,
    IMAGE_URL,
    IN_STOCK,
    OUT_OF_STOCK,
    PRICE,
    STATUS,
    STOCK,
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
)
from adapters.magento.storefront import Storefront
from engine.records import ADD_TO_CART, REMOVE_FROM_CART, WISHLIST, Alias, Erasure, Interaction, Item, User

log = logging.getLogger(__name__)

PLATFORM = "Magento"

#: Product ``status`` (an int, or its text in flat data) → STATUS.
PRODUCT_STATUS = {1: "ACTIVE", 2: "DISABLED", "1": "ACTIVE", "2": "DISABLED"}
#: ``visibility`` → VISIBILITY. 1 is "Not Visible Individually": typically a configurable's variant.
VISIBILITY = {
    1: "NOT_VISIBLE_INDIVIDUALLY",
    2: "CATALOG",
    3: "SEARCH",
    4: "CATALOG_SEARCH",
    "1": "NOT_VISIBLE_INDIVIDUALLY",
    "2": "CATALOG",
    "3": "SEARCH",
    "4": "CATALOG_SEARCH",
}
#: ``type_id`` → PRODUCT_TYPE.
PRODUCT_TYPE = {
    "simple": "SIMPLE",
    "configurable": "CONFIGURABLE",
    "virtual": "VIRTUAL",
    "bundle": "BUNDLE",
    "grouped": "GROUPED",
    "downloadable": "DOWNLOADABLE",
    "giftcard": "GIFTCARD",
}
#: Order ``state`` → does it count as a purchase? An order being placed (plugin hooks run before
#: Commerce sets a state) has none and counts.
ORDER_IS_PURCHASE = {
    "new": True,
    "processing": True,
    "complete": True,
    "holded": True,
    "payment_review": True,
    "pending_payment": False,
    "canceled": False,
    "closed": False,
}


def find_object(body: dict[str, Any], *names: str) -> dict[str, Any]:
    """The entity in a webhook body: top level (plugin hooks: ``{"order": {...}}``), or under
    ``data`` (observer hooks: ``{"eventName": ..., "data": {"product": {...}, "data_object": {...}}}``)."""
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    for name in names:
        for holder in (body, data):
            found = holder.get(name)
            if isinstance(found, dict):
                return found
    raise PayloadError(f"Magento body has no {' or '.join(names)} object")


def attributes(entity: dict[str, Any]) -> dict[str, Any]:
    """Top-level fields and ``custom_attributes`` in one flat mapping (top level wins)."""
    flat = dict(entity)
    for attribute in entity.get("custom_attributes") or []:
        if isinstance(attribute, dict) and "attribute_code" in attribute:
            flat.setdefault(attribute["attribute_code"], attribute.get("value"))
    return flat


def _entity_id(entity: dict[str, Any], what: str) -> str:
    found = identifier(entity.get("id")) or identifier(entity.get("entity_id"))
    if found is None:
        raise PayloadError(f"Magento {what} has no id")
    return found


def _time(value: Any, fallback: float | None, what: str) -> float:
    """A payload time, else the time the delivery arrived (observer data of a fresh quote item may
    not carry one yet); an error only when neither exists."""
    if value not in (None, ""):
        return parse_time(value, what, PLATFORM)
    if fallback is None:
        raise PayloadError(f"Magento {what} is missing")
    return fallback


# --------------------------------------------------------------------- products
def _stock(flat: dict[str, Any]) -> dict[str, Any]:
    extension = flat.get("extension_attributes") if isinstance(flat.get("extension_attributes"), dict) else {}
    for candidate in (extension.get("stock_item"), flat.get("quantity_and_stock_status"), flat.get("stock_data")):
        if isinstance(candidate, dict):
            return candidate
    return {}


def _categories(flat: dict[str, Any]) -> list[Any]:
    ids = flat.get("category_ids")
    if isinstance(ids, list):
        return ids
    extension = flat.get("extension_attributes") if isinstance(flat.get("extension_attributes"), dict) else {}
    links = extension.get("category_links") or []
    return [link.get("category_id") for link in links if isinstance(link, dict)]


def product_item(product: dict[str, Any], storefront: Storefront | None = None) -> Item:
    """A product (REST resource or flat model data) → one item.

    Its page and main picture (URL, IMAGE_URL) are placed on the connection's storefront; without
    one they are paths on the store's own site (see :mod:`adapters.magento.storefront`).

    Categories are kept as their ids (names need another API call per category; ids train just as
    well). A configurable's variants are simple products "not visible individually": they are kept
    with that VISIBILITY, and orders roll their lines up to the configurable (see order_records).
    """
    flat = attributes(product)
    product_id = _entity_id(flat, "product")
    storefront = storefront or Storefront()
    stock = _stock(flat)
    qty = number(stock.get("qty"), f"product {product_id} stock qty", PLATFORM)
    in_stock = stock.get("is_in_stock")
    properties = {
        TITLE: flat.get("name") or None,
        DESCRIPTION: html_to_text(flat.get("description")) or html_to_text(flat.get("short_description")),
        CATEGORIES: categorical(_categories(flat)),
        BRAND: identifier(flat.get("brand")) or identifier(flat.get("manufacturer")),
        PRICE: number(flat.get("price"), f"product {product_id} price", PLATFORM),
        STOCK: int(qty) if qty is not None else None,
        AVAILABILITY: None if in_stock is None else (IN_STOCK if in_stock in (True, 1, "1") else OUT_OF_STOCK),
        STATUS: lookup(PRODUCT_STATUS, flat.get("status"), "product status", PLATFORM),
        "VISIBILITY": lookup(VISIBILITY, flat.get("visibility"), "product visibility", PLATFORM),
        "PRODUCT_TYPE": lookup(PRODUCT_TYPE, flat.get("type_id"), "product type", PLATFORM),
        URL: storefront.product_url(flat),
        IMAGE_URL: storefront.image_url(flat),
    }
    return Item(
        item_id=product_id,
        properties=drop_empty(properties),
        creation_timestamp=optional_time(flat.get("created_at"), f"product {product_id} created_at", PLATFORM),
    )


def product_deletion(product: dict[str, Any]) -> Erasure:
    return Erasure(item_id=_entity_id(product, "deleted product"))


# --------------------------------------------------------------------- orders
def order_event_prefix(order_key: Any) -> str:
    return f"mage:{order_key}:"


def order_records(order: dict[str, Any], received_at: float | None = None) -> list[Any]:
    """A placed order → one purchase per product.

    Configurable products come as a parent line and a child line (``parent_item_id``); only
    parent lines count, so quantities are counted once and variants roll up to their product.
    The order is keyed by ``increment_id`` (set before the order is saved, so a placement hook and
    the back-fill agree); a guest is known by the quote (``quote-<id>``, the id cart events use),
    and a customer's quote is aliased to them.
    """
    order_key = identifier(order.get("increment_id")) or identifier(order.get("entity_id"))
    if order_key is None:
        raise PayloadError("Magento order has neither increment_id nor entity_id")
    items = order.get("items")
    if not isinstance(items, list):
        raise PayloadError(f"Magento order {order_key} has no items list")
    state = order.get("state")
    if state is not None and not lookup(ORDER_IS_PURCHASE, state, "order state", PLATFORM):
        log.info("magento: order %s is in state %r; no purchase recorded", order_key, state)
        return []
    timestamp = _time(order.get("created_at"), received_at, f"order {order_key} created_at")
    quote = identifier(order.get("quote_id"))
    customer = None if order.get("customer_is_guest") in (True, 1, "1") else identifier(order.get("customer_id"))
    anonymous = f"quote-{quote}" if quote else None
    user_id = customer or anonymous or f"order-{order_key}"

    totals: dict[str, Decimal | None] = {}
    for line in items:
        if not isinstance(line, dict):
            raise PayloadError(f"Magento order {order_key} items entry is not an object")
        if identifier(line.get("parent_item_id")) is not None:
            continue  # the child line of a configurable: its parent line carries the product
        product_id = identifier(line.get("product_id"))
        if product_id is None:
            log.info("magento: order %s line %s has no product_id; skipped", order_key, line.get("item_id"))
            continue
        qty = money(line.get("qty_ordered"), f"order {order_key} qty_ordered", PLATFORM) or Decimal(1)
        value = money(line.get("row_total"), f"order {order_key} row_total", PLATFORM)
        if value is None:
            price = money(line.get("price"), f"order {order_key} price", PLATFORM)
            value = None if price is None else price * qty
        previous = totals.get(product_id)
        totals[product_id] = value if previous is None else previous + (value or 0)
    records: list[Any] = []
    if customer and anonymous:
        records.append(Alias(anonymous_id=anonymous, user_id=customer))
    records += [
        order_purchase(
            user_id=user_id,
            product_id=product_id,
            timestamp=timestamp,
            revenue=value,
            session_id=anonymous,
            event_id=f"{order_event_prefix(order_key)}{product_id}",
        )
        for product_id, value in totals.items()
    ]
    return records


# --------------------------------------------------------------------- carts and wishlists
def _quote_item(body: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    item = find_object(body, "quote_item", "item")
    quote = identifier(item.get("quote_id"))
    if quote is None:
        raise PayloadError("Magento quote item has no quote_id")
    product = body.get("data", {}).get("product") if isinstance(body.get("data"), dict) else None
    product_id = identifier(item.get("product_id")) or (
        _entity_id(product, "product") if isinstance(product, dict) else None
    )
    if product_id is None:
        raise PayloadError(f"Magento quote item of quote {quote} has no product_id")
    return item, quote, product_id


def cart_add(body: dict[str, Any], received_at: float | None = None) -> list[Any]:
    """``checkout_cart_product_add_after``: the quote's shopper added a product (first add per
    product and quote is the event; the quantity is its value)."""
    item, quote, product_id = _quote_item(body)
    timestamp = _time(item.get("updated_at") or item.get("created_at"), received_at, "quote item time")
    qty = number(item.get("qty"), "quote item qty", PLATFORM)
    return [
        Interaction(
            user_id=f"quote-{quote}",
            item_id=product_id,
            event_type=ADD_TO_CART,
            timestamp=timestamp,
            event_value=qty,
            session_id=f"quote-{quote}",
            event_id=f"mage-cart:{quote}:{product_id}:add",
            context={},
        )
    ]


def cart_remove(body: dict[str, Any], received_at: float | None = None) -> list[Any]:
    """``sales_quote_remove_item``: a product taken out of the cart (one event per removal)."""
    item, quote, product_id = _quote_item(body)
    # The removal happens as the hook fires; the item's own times say when it was added or changed.
    timestamp = received_at if received_at is not None else _time(item.get("updated_at"), None, "quote updated_at")
    return [
        Interaction(
            user_id=f"quote-{quote}",
            item_id=product_id,
            event_type=REMOVE_FROM_CART,
            timestamp=timestamp,
            event_value=number(item.get("qty"), "quote item qty", PLATFORM),
            session_id=f"quote-{quote}",
            event_id=f"mage-cart:{quote}:{product_id}:remove:{int(timestamp)}",
            context={},
        )
    ]


def wishlist_add(body: dict[str, Any], received_at: float | None = None) -> list[Any]:
    """``wishlist_add_product``: a logged-in customer saved a product."""
    wishlist = find_object(body, "wishlist")
    product = find_object(body, "product")
    item = body.get("data", {}).get("item") if isinstance(body.get("data"), dict) else None
    item = item if isinstance(item, dict) else {}
    customer = identifier(wishlist.get("customer_id"))
    if customer is None:
        raise PayloadError("Magento wishlist has no customer_id")
    product_id = _entity_id(product, "wishlist product")
    wishlist_id = identifier(wishlist.get("wishlist_id")) or customer
    return [
        Interaction(
            user_id=customer,
            item_id=product_id,
            event_type=WISHLIST,
            timestamp=_time(item.get("added_at"), received_at, "wishlist item added_at"),
            event_id=f"mage-wishlist:{wishlist_id}:{product_id}",
            context={},
        )
    ]


# --------------------------------------------------------------------- customers
def customer_user(customer: dict[str, Any]) -> User:
    """A customer → a user with their customer group (an id: names are store-specific)."""
    customer_id = _entity_id(customer, "customer")
    return User(user_id=customer_id, properties=drop_empty({"CUSTOMER_GROUP": identifier(customer.get("group_id"))}))


def customer_deletion(customer: dict[str, Any]) -> ForgetShopper:
    """A deleted customer account is a request to be forgotten."""
    return ForgetShopper(user_id=_entity_id(customer, "deleted customer"))
