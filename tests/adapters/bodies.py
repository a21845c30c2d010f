"""Realistic webhook and API bodies for the store adapters' tests.

Where /work/shared/payloads has the platform's own example it is read in place, byte for byte
(:func:`shared`). The others are built here from the field lists in
/work/shared/reference/platforms.md and the platforms' documented examples (Shopify's sample
product, cart, checkout and compliance payloads; WooCommerce REST v3 products and customers;
Adobe Commerce observer payloads ``{"eventName", "data": {...}}``), with the personal data
those examples carry, so the tests can check none of it reaches a record.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "payloads"


def shared(name: str) -> bytes:
    """A payload from /work/shared/payloads, read in place and never re-serialised."""
    path = PAYLOADS / name
    if not path.is_file():
        pytest.skip(f"payload {path} is missing")
    return path.read_bytes()


def shared_json(name: str) -> dict[str, Any]:
    return json.loads(shared(name))


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


# --------------------------------------------------------------------- Shopify
SHOPIFY_PRODUCT: dict[str, Any] = {
    "id": 632910392,
    "title": "IPod Nano - 8GB",
    "body_html": "<p>It's the small iPod with one very big idea: <strong>Video</strong>. Now the world's most "
    "popular music player &amp; more.</p>",
    "vendor": "Apple",
    "product_type": "Cult Products",
    "created_at": "2024-05-01T11:00:00-04:00",
    "handle": "ipod-nano",
    "updated_at": "2024-05-02T11:00:00-04:00",
    "published_at": "2024-05-01T11:00:00-04:00",
    "template_suffix": None,
    "published_scope": "web",
    "tags": "Emotive, Flash Memory, MP3, Music",
    "status": "active",
    "admin_graphql_api_id": "gid://shopify/Product/632910392",
    "variants": [
        {
            "id": 808950810,
            "product_id": 632910392,
            "title": "Pink",
            "price": "199.00",
            "sku": "IPOD2008PINK",
            "position": 1,
            "inventory_policy": "continue",
            "compare_at_price": None,
            "fulfillment_service": "manual",
            "inventory_management": "shopify",
            "option1": "Pink",
            "taxable": True,
            "grams": 567,
            "inventory_quantity": 10,
            "requires_shipping": True,
        },
        {
            "id": 49148385,
            "product_id": 632910392,
            "title": "Red",
            "price": "189.00",
            "sku": "IPOD2008RED",
            "position": 2,
            "inventory_policy": "deny",
            "inventory_management": "shopify",
            "option1": "Red",
            "inventory_quantity": 20,
        },
    ],
    "options": [{"id": 594680422, "product_id": 632910392, "name": "Color", "position": 1, "values": ["Pink", "Red"]}],
    "images": [{"id": 850703190, "product_id": 632910392, "position": 1, "src": "https://cdn.shopify.com/ipod.png"}],
}

SHOPIFY_CUSTOMER: dict[str, Any] = {
    "id": 207119551,
    "email": "bob.norman@mail.example.com",
    "accepts_marketing": False,
    "created_at": "2024-05-01T11:00:00-04:00",
    "updated_at": "2024-05-01T11:00:00-04:00",
    "first_name": "Bob",
    "last_name": "Norman",
    "orders_count": 1,
    "state": "disabled",
    "total_spent": "199.65",
    "last_order_id": 450789469,
    "note": "Likes gift wrap",
    "verified_email": True,
    "tax_exempt": False,
    "phone": "+16136120707",
    "tags": "Léon, Noël",
    "last_order_name": "#1001",
    "currency": "USD",
    "default_address": {
        "id": 207119551,
        "customer_id": 207119551,
        "first_name": None,
        "last_name": None,
        "address1": "Chestnut Street 92",
        "city": "Louisville",
        "province": "Kentucky",
        "country": "United States",
        "zip": "40202",
        "phone": "555-625-1199",
        "default": True,
    },
}

SHOPIFY_CART: dict[str, Any] = {
    "id": "eeafa272cebfd4b22385bc4b645e762c",
    "token": "eeafa272cebfd4b22385bc4b645e762c",
    "line_items": [
        {
            "id": 704912205188288575,
            "properties": {},
            "quantity": 3,
            "variant_id": 704912205188288575,
            "key": "704912205188288575:33f11f7a1ec7d93b826de33bb54de37b",
            "discounted_price": "19.99",
            "discounts": [],
            "gift_card": False,
            "grams": 200,
            "line_price": "59.97",
            "original_line_price": "59.97",
            "original_price": "19.99",
            "price": "19.99",
            "product_id": 788032119674292922,
            "sku": "example-shirt-s",
            "taxable": True,
            "title": "Example T-Shirt - Small",
            "total_discount": "0.00",
            "vendor": "Acme",
        },
        {
            "id": 704912205188288576,
            "properties": {},
            "quantity": 1,
            "variant_id": 704912205188288576,
            "price": "19.99",
            "product_id": 788032119674292922,
            "sku": "example-shirt-m",
            "title": "Example T-Shirt - Medium",
        },
    ],
    "note": "Please wrap it, it is for Mary Major",
    "updated_at": "2022-01-01T00:00:00.000Z",
    "created_at": "2022-01-01T00:00:00.000Z",
}

SHOPIFY_CHECKOUT: dict[str, Any] = {
    "id": 981820079255243537,
    "token": "123123123",
    "cart_token": "eeafa272cebfd4b22385bc4b645e762c",
    "email": "john.smith@mail.example.com",
    "gateway": None,
    "buyer_accepts_marketing": False,
    "created_at": "2021-12-31T19:00:00-05:00",
    "updated_at": "2021-12-31T19:00:00-05:00",
    "note": None,
    "currency": "USD",
    "completed_at": None,
    "phone": None,
    "line_items": [
        {
            "key": "9d8e3d8e6b0a9e2c",
            "fulfillment_service": "manual",
            "gift_card": False,
            "grams": 200,
            "presentment_title": "Example T-Shirt",
            "presentment_variant_title": "Small",
            "product_id": 788032119674292922,
            "properties": None,
            "quantity": 1,
            "requires_shipping": True,
            "sku": "example-shirt-s",
            "taxable": True,
            "title": "Example T-Shirt",
            "variant_id": 642667041472713922,
            "variant_title": "Small",
            "vendor": "Acme",
            "compare_at_price": "24.99",
            "line_price": "19.99",
            "price": "19.99",
        }
    ],
    "name": "#981820079255243537",
    "source_name": "web",
    "total_price": "19.99",
    "billing_address": {"first_name": "John", "last_name": "Smith", "address1": "123 Elm St.", "zip": "K2P0V6"},
    "shipping_address": {"first_name": "John", "last_name": "Smith", "address1": "123 Elm St.", "zip": "K2P0V6"},
    "customer": {
        "id": 603851970716743426,
        "email": "john.smith@mail.example.com",
        "first_name": "John",
        "last_name": "Smith",
        "orders_count": 0,
        "state": "disabled",
        "total_spent": "0.00",
        "phone": None,
        "tags": "",
    },
}

# The compliance topics (platforms.md §1.6, Shopify's documented examples).
SHOPIFY_CUSTOMERS_REDACT: dict[str, Any] = {
    "shop_id": 954889,
    "shop_domain": "shop1.myshopify.com",
    "customer": {"id": 207119551, "email": "bob.norman@hostmail.com", "phone": "555-625-1199"},
    "orders_to_redact": [450789469, 280263, 220458],
}
SHOPIFY_DATA_REQUEST: dict[str, Any] = {
    "shop_id": 954889,
    "shop_domain": "shop1.myshopify.com",
    "orders_requested": [450789469, 280263],
    "customer": {"id": 207119551, "email": "bob.norman@hostmail.com", "phone": "555-625-1199"},
    "data_request": {"id": 9999},
}
SHOPIFY_SHOP_REDACT: dict[str, Any] = {"shop_id": 954889, "shop_domain": "shop1.myshopify.com"}
#: ``app/uninstalled`` sends the Shop resource.
SHOPIFY_SHOP: dict[str, Any] = {
    "id": 548380009,
    "name": "Super Toys",
    "email": "super@supertoys.example.com",
    "domain": None,
    "province": "Tennessee",
    "country": "US",
    "address1": "190 MacLaren Street",
    "zip": "37178",
    "city": "Houston",
    "phone": "3213213210",
    "shop_owner": "Jane Smithers",
    "myshopify_domain": "shop1.myshopify.com",
    "plan_name": "enterprise",
}


def shopify_topic_bodies() -> dict[str, bytes]:
    order = shared("shopify_orders_create.json")
    return {
        "orders/create": order,
        "orders/paid": order,
        "products/create": encode(SHOPIFY_PRODUCT),
        "products/update": encode(SHOPIFY_PRODUCT),
        "products/delete": b'{"id":788032119674292922}',
        "customers/create": encode(SHOPIFY_CUSTOMER),
        "customers/update": encode(SHOPIFY_CUSTOMER),
        "carts/create": encode(SHOPIFY_CART),
        "carts/update": encode(SHOPIFY_CART),
        "checkouts/create": encode(SHOPIFY_CHECKOUT),
        "checkouts/update": encode(SHOPIFY_CHECKOUT),
        "app/uninstalled": encode(SHOPIFY_SHOP),
        "customers/data_request": encode(SHOPIFY_DATA_REQUEST),
        "customers/redact": encode(SHOPIFY_CUSTOMERS_REDACT),
        "shop/redact": encode(SHOPIFY_SHOP_REDACT),
    }


# --------------------------------------------------------------------- WooCommerce
WOO_PRODUCT: dict[str, Any] = {
    "id": 794,
    "name": "Premium Quality",
    "slug": "premium-quality-19",
    "permalink": "https://example.com/product/premium-quality-19/",
    "date_created": "2017-03-23T17:01:14",
    "date_created_gmt": "2017-03-23T20:01:14",
    "date_modified": "2017-03-23T17:01:14",
    "date_modified_gmt": "2017-03-23T20:01:14",
    "type": "simple",
    "status": "publish",
    "featured": False,
    "catalog_visibility": "visible",
    "description": "<p>Pellentesque habitant morbi tristique senectus et netus et malesuada fames ac turpis "
    "egestas.</p>\n",
    "short_description": "<p>Pellentesque habitant morbi tristique.</p>\n",
    "sku": "",
    "price": "21.99",
    "regular_price": "21.99",
    "sale_price": "",
    "on_sale": False,
    "purchasable": True,
    "total_sales": 0,
    "manage_stock": True,
    "stock_quantity": 12,
    "stock_status": "instock",
    "categories": [
        {"id": 9, "name": "Clothing", "slug": "clothing"},
        {"id": 14, "name": "T-shirts", "slug": "t-shirts"},
    ],
    "tags": [{"id": 33, "name": "cotton", "slug": "cotton"}],
    "images": [{"id": 792, "src": "https://example.com/wp-content/uploads/2017/03/T_2_front-4.jpg", "alt": ""}],
    "attributes": [],
    "variations": [],
    "parent_id": 0,
    "related_ids": [31, 22, 369, 414, 56],
}

WOO_CUSTOMER: dict[str, Any] = {
    "id": 25,
    "date_created": "2017-03-21T16:09:28",
    "date_created_gmt": "2017-03-21T19:09:28",
    "date_modified": "2017-03-21T16:09:30",
    "date_modified_gmt": "2017-03-21T19:09:30",
    "email": "john.doe@example.com",
    "first_name": "John",
    "last_name": "Doe",
    "role": "customer",
    "username": "john.doe",
    "billing": {
        "first_name": "John",
        "last_name": "Doe",
        "address_1": "969 Market",
        "city": "San Francisco",
        "postcode": "94103",
        "email": "john.doe@example.com",
        "phone": "(555) 555-5555",
    },
    "shipping": {"first_name": "John", "last_name": "Doe", "address_1": "969 Market", "city": "San Francisco"},
    "is_paying_customer": False,
    "avatar_url": "https://secure.gravatar.com/avatar/8eb1b522f60d11fa897de1dc6351b7e8?s=96",
    "meta_data": [],
}


def woo_topic_bodies() -> dict[str, bytes]:
    order = shared("woocommerce_order_created.json")
    return {
        "order.created": order,
        "order.updated": order,
        "order.restored": order,
        "product.created": encode(WOO_PRODUCT),
        "product.updated": encode(WOO_PRODUCT),
        "product.restored": encode(WOO_PRODUCT),
        "product.deleted": b'{"id":794}',
        "customer.created": encode(WOO_CUSTOMER),
        "customer.updated": encode(WOO_CUSTOMER),
        "customer.deleted": b'{"id":25}',
    }


# --------------------------------------------------------------------- Magento / Adobe Commerce
def magento_flat_product() -> dict[str, Any]:
    """The product model's data as an observer sees it: attributes flat, stock as the model holds it."""
    rest = shared_json("magento_product.json")
    flat = {k: v for k, v in rest.items() if k not in ("custom_attributes", "extension_attributes", "id")}
    flat["entity_id"] = str(rest["id"])
    for attribute in rest["custom_attributes"]:
        flat[attribute["attribute_code"]] = attribute["value"]
    flat["quantity_and_stock_status"] = {"is_in_stock": True, "qty": 10}
    flat["status"] = "1"
    flat["visibility"] = "4"
    return flat


MAGENTO_ORDER: dict[str, Any] = {
    "entity_id": 12,
    "increment_id": "000000012",
    "state": "new",
    "status": "pending",
    "quote_id": 31,
    "customer_id": 5,
    "customer_is_guest": 0,
    "customer_email": "roni_cost@example.com",
    "customer_firstname": "Veronica",
    "customer_lastname": "Costello",
    "base_currency_code": "USD",
    "grand_total": 110.0,
    "created_at": "2024-03-01 12:00:00",
    "updated_at": "2024-03-01 12:00:05",
    "items": [
        {
            "item_id": 40,
            "product_id": 2079,
            "product_type": "simple",
            "sku": "MS-Champ-S",
            "name": "Champ Tee Small",
            "qty_ordered": 2,
            "price": 25.0,
            "row_total": 50.0,
            "parent_item_id": None,
        },
        {
            "item_id": 41,
            "product_id": 1812,
            "product_type": "configurable",
            "sku": "MH01-XS-Black",
            "name": "Chaz Kangeroo Hoodie",
            "qty_ordered": 1,
            "price": 52.0,
            "row_total": 52.0,
        },
        {
            "item_id": 42,
            "parent_item_id": 41,
            "product_id": 1801,
            "product_type": "simple",
            "sku": "MH01-XS-Black",
            "name": "Chaz Kangeroo Hoodie-XS-Black",
            "qty_ordered": 1,
            "price": 0.0,
            "row_total": 0.0,
        },
    ],
    "billing_address": {
        "address_type": "billing",
        "city": "Calder",
        "email": "roni_cost@example.com",
        "firstname": "Veronica",
        "lastname": "Costello",
        "postcode": "49628-7978",
        "street": ["6146 Honey Bluff Parkway"],
        "telephone": "(555) 229-3326",
    },
    "payment": {"method": "checkmo"},
}

MAGENTO_CUSTOMER: dict[str, Any] = {
    "entity_id": "5",
    "group_id": "1",
    "email": "roni_cost@example.com",
    "firstname": "Veronica",
    "lastname": "Costello",
    "dob": "1973-12-15",
    "created_at": "2024-01-01 10:00:00",
}


def magento_topic_bodies() -> dict[str, bytes]:
    product = magento_flat_product()
    quote_item = {
        "item_id": "77",
        "quote_id": "31",
        "product_id": "2079",
        "sku": "MS-Champ-S",
        "qty": 2,
        "created_at": "2024-03-01 11:50:00",
        "updated_at": "2024-03-01 11:50:00",
    }
    return {
        "observer.catalog_product_save_after": encode(
            {"eventName": "catalog_product_save_after", "data": {"product": product, "data_object": product}}
        ),
        "observer.catalog_product_save_commit_after": encode(
            {"eventName": "catalog_product_save_commit_after", "data": {"data_object": product}}
        ),
        "observer.catalog_product_delete_after": encode(
            {"eventName": "catalog_product_delete_after", "data": {"product": {"entity_id": "2079"}}}
        ),
        "observer.catalog_product_delete_commit_after": encode(
            {"eventName": "catalog_product_delete_commit_after", "data": {"data_object": {"entity_id": "2079"}}}
        ),
        "observer.sales_order_place_after": encode(
            {"eventName": "sales_order_place_after", "data": {"order": MAGENTO_ORDER}}
        ),
        "observer.checkout_submit_all_after": encode(
            {"eventName": "checkout_submit_all_after", "data": {"order": MAGENTO_ORDER}}
        ),
        "plugin.magento.sales.api.order_management.place": encode({"order": MAGENTO_ORDER}),
        "plugin.sales.api.order_management.place": encode({"order": MAGENTO_ORDER}),
        "observer.checkout_cart_product_add_after": encode(
            {"eventName": "checkout_cart_product_add_after", "data": {"quote_item": quote_item, "product": product}}
        ),
        "observer.sales_quote_remove_item": encode(
            {"eventName": "sales_quote_remove_item", "data": {"quote_item": quote_item}}
        ),
        "observer.wishlist_add_product": encode(
            {
                "eventName": "wishlist_add_product",
                "data": {
                    "wishlist": {"wishlist_id": "3", "customer_id": "5", "sharing_code": "f3k2"},
                    "product": product,
                    "item": {"wishlist_item_id": "9", "product_id": "2079", "added_at": "2024-03-01 11:40:00"},
                },
            }
        ),
        "observer.customer_register_success": encode(
            {"eventName": "customer_register_success", "data": {"customer": MAGENTO_CUSTOMER}}
        ),
        "observer.customer_save_after": encode(
            {"eventName": "customer_save_after", "data": {"data_object": MAGENTO_CUSTOMER}}
        ),
        "observer.customer_delete_after": encode(
            {"eventName": "customer_delete_after", "data": {"customer": MAGENTO_CUSTOMER}}
        ),
        "observer.customer_delete_commit_after": encode(
            {"eventName": "customer_delete_commit_after", "data": {"data_object": MAGENTO_CUSTOMER}}
        ),
    }


def deep(value: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(value)
