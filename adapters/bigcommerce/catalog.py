"""BigCommerce catalog products (v3 ``/catalog/products``) → engine :class:`Item` records.

A product is the unit of recommendation: variants (sizes, colours) roll up to it, and only their
stock counts. Categories and the brand arrive as ids; merchants write filters with names
(``Items.CATEGORIES IN ("Kitchen")``), so names are looked up through the API, one request per
kind for a whole page of products, and cached for the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from adapters.base import PayloadError, PlatformClient
from adapters.bigcommerce.storefront import Storefront, main_image
from adapters.common import (
    AVAILABILITY,
    BACKORDER,
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
    lookup,
    money,
    optional_time,
)
from engine.records import Item

log = logging.getLogger(__name__)

PLATFORM = "BigCommerce"

#: ``is_visible`` → STATUS (the values Shopify's ``status`` maps to where they mean the same).
VISIBILITY: dict[bool, str] = {True: "ACTIVE", False: "HIDDEN"}
#: ``availability`` → what it says about buying, before stock is looked at.
#: ``available``: stock decides; ``preorder``: sold ahead of stock; ``disabled``: cannot be bought.
AVAILABILITY_RULES: dict[str, str | None] = {"available": None, "preorder": BACKORDER, "disabled": OUT_OF_STOCK}
#: ``inventory_tracking`` values; anything else is logged and stock left out.
INVENTORY_TRACKING = frozenset({"none", "product", "variant"})


class CatalogNames:
    """Category and brand names by id, fetched in batches through the API and cached."""

    def __init__(self, client: PlatformClient, *, batch_size: int = 50) -> None:
        self._client = client
        self._batch_size = batch_size
        self._cache: dict[str, dict[int, str]] = {"categories": {}, "brands": {}}

    def categories(self, ids: Iterable[int]) -> dict[int, str]:
        return self._lookup("categories", ids)

    def brands(self, ids: Iterable[int]) -> dict[int, str]:
        return self._lookup("brands", ids)

    def prefetch(self, products: list[dict[str, Any]]) -> None:
        """Fetch the names a page of products needs with one request per kind (not one per product)."""
        self.categories(c for p in products for c in _id_list(p.get("categories")))
        self.brands(b for p in products if (b := _positive_int(p.get("brand_id"))) is not None)

    def _lookup(self, kind: str, ids: Iterable[int]) -> dict[int, str]:
        cache = self._cache[kind]
        wanted = list(dict.fromkeys(ids))
        missing = [i for i in wanted if i not in cache]
        for start in range(0, len(missing), self._batch_size):
            chunk = missing[start : start + self._batch_size]
            body = self._client.get(f"v3/catalog/{kind}", {"id:in": ",".join(map(str, chunk)), "limit": len(chunk)})
            for entry in (body or {}).get("data") or []:
                if isinstance(entry, dict) and isinstance(entry.get("id"), int) and entry.get("name"):
                    cache[entry["id"]] = str(entry["name"]).strip()
            for gone in [i for i in chunk if i not in cache]:
                log.info("bigcommerce: %s id %s is not in the catalog; left out", kind, gone)
                cache[gone] = ""
        return {i: cache[i] for i in wanted if cache.get(i)}


def product_item(product: dict[str, Any], names: CatalogNames, storefront: Storefront | None = None) -> Item:
    """One product → one Item: title, text, category and brand names, price, stock, status, age,
    and (for widgets) its page on the storefront and main picture (needs ``include=images``)."""
    product_id = _positive_int(product.get("id"))
    if product_id is None:
        raise PayloadError(f"BigCommerce product has no numeric id: {str(product.get('id'))[:40]!r}")
    brand_id = _positive_int(product.get("brand_id"))
    stock, availability = _stock(product)
    properties = {
        TITLE: product.get("name").strip() if isinstance(product.get("name"), str) else None,
        DESCRIPTION: html_to_text(product.get("description")),
        CATEGORIES: categorical(names.categories(_id_list(product.get("categories"))).values()),
        BRAND: names.brands([brand_id]).get(brand_id) if brand_id is not None else None,
        PRICE: _price(product),
        STOCK: stock,
        AVAILABILITY: availability,
        STATUS: lookup(VISIBILITY, product.get("is_visible"), "product is_visible", PLATFORM),
        URL: storefront.product_url(product) if storefront is not None else None,
        IMAGE_URL: main_image(product),
    }
    return Item(
        item_id=str(product_id),
        properties=drop_empty(properties),
        creation_timestamp=optional_time(product.get("date_created"), "product date_created", PLATFORM),
    )


def _stock(product: dict[str, Any]) -> tuple[int | None, str | None]:
    """(STOCK, AVAILABILITY). Variant-tracked stock is the variants' sum; a variant that cannot be
    purchased does not make the product available. Untracked products are always in stock."""
    rule = lookup(AVAILABILITY_RULES, product.get("availability", "available"), "product availability", PLATFORM)
    tracking = product.get("inventory_tracking")
    if tracking not in INVENTORY_TRACKING:
        log.info(
            "bigcommerce: product %s has unknown inventory_tracking %r; stock left out", product.get("id"), tracking
        )
        return None, rule
    if tracking == "none":
        return None, rule or IN_STOCK
    variants = [v for v in product.get("variants") or [] if isinstance(v, dict)]
    if tracking == "variant" and variants:
        levels = [(_count(v.get("inventory_level")), bool(v.get("purchasing_disabled"))) for v in variants]
        total = sum(level for level, _ in levels)
        sellable = any(level > 0 and not disabled for level, disabled in levels)
    else:
        # Product-level tracking, or variants not included: the product's own level (the variants'
        # total when tracked by variant, per BigCommerce's catalog docs).
        total = _count(product.get("inventory_level"))
        sellable = total > 0
    return total, rule or (IN_STOCK if sellable else OUT_OF_STOCK)


def _price(product: dict[str, Any]) -> float | None:
    """The price shoppers see: ``calculated_price`` (sale and price-list rules applied), else ``price``."""
    for key in ("calculated_price", "price"):
        amount = money(product.get(key), f"product {product.get('id')} {key}", PLATFORM)
        if amount is not None:
            return float(amount)
    return None


def _id_list(value: Any) -> list[int]:
    return [v for v in value if _positive_int(v) is not None] if isinstance(value, list) else []


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
