"""The BigCommerce adapter: the shared contract, Standard Webhooks signatures, thin callbacks completed
through the API (mocked with ``responses``), back-fill with pagination, rate limits and resume, and
the whole intake through a real server.

API bodies are reconstructed from BigCommerce's API reference (v2 "Get an Order" and "List Order
Products", v3 "Get a Product" with ``include=variants``, "Get All Customers"): field names are the
documented ones, values made up. Callback bodies follow platforms.md §6.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from adapters.actions import Checkpoint, ForgetShopper
from adapters.base import Delivery, PayloadError, SignatureError
from adapters.bigcommerce import BigCommerceAdapter, BigCommerceClient, PlatformError, sign
from adapters.bigcommerce.backfill import order_lines
from adapters.common import (
    AVAILABILITY,
    BRAND,
    CATEGORIES,
    DESCRIPTION,
    IMAGE_URL,
    PRICE,
    STATUS,
    STOCK,
    TITLE,
    URL,
)
from engine.errors import InvalidInput
from engine.records import PURCHASE, Erasure, Interaction, Item, User
from engine.storage.store import Store
from tests.adapters.contract import AdapterContract
from tests.adapters.live import live_intake, settled
from webhooks.backfill import run_backfill

SECRET = "bc-client-secret"
STORE_HASH = "abc123"
API = f"https://api.bigcommerce.com/stores/{STORE_HASH}"
CONFIG = {"store_hash": STORE_HASH, "access_token": "tok-123"}
STOREFRONT = "https://towels.example"
CDN = f"https://cdn11.bigcommerce.com/s-{STORE_HASH}/products/77/images"

PERSONAL_DATA = (
    "Jane",
    "Doe",
    "janedoe@example.com",
    "123 Main Street",
    "Austin",
    "78751",
    "512-555-0100",
    "12.345.678.9",
)


# --------------------------------------------------------------------- realistic bodies
def callback(scope: str, resource_id: int, *, kind: str = "order", hash_: str = "3f9e1a") -> bytes:
    """A callback exactly as BigCommerce POSTs it: thin, the resource named by type and id."""
    return json.dumps(
        {
            "created_at": 1561482670,
            "store_id": "1025646",
            "producer": f"stores/{STORE_HASH}",
            "scope": scope,
            "data": {"type": kind, "id": resource_id},
            "hash": hash_,
        }
    ).encode()


def order(**changes: Any) -> dict[str, Any]:
    body = {
        "id": 100,
        "customer_id": 11,
        "date_created": "Tue, 05 Mar 2019 21:57:34 +0000",
        "date_modified": "Wed, 06 Mar 2019 10:00:00 +0000",
        "date_shipped": "",
        "status_id": 11,
        "status": "Awaiting Fulfillment",
        "subtotal_ex_tax": "123.0000",
        "total_inc_tax": "123.0000",
        "items_total": 3,
        "payment_method": "Cash on Delivery",
        "ip_address": "12.345.678.9",
        "currency_code": "USD",
        "customer_message": "Leave it with the neighbour, Jane",
        "cart_id": "d4e978c2-bdcf-41b0-a49b-fecf4f5223c1",
        "billing_address": {
            "first_name": "Jane",
            "last_name": "Doe",
            "street_1": "123 Main Street",
            "city": "Austin",
            "state": "Texas",
            "zip": "78751",
            "country": "United States",
            "phone": "512-555-0100",
            "email": "janedoe@example.com",
        },
        "products": {"url": f"{API}/v2/orders/100/products", "resource": "/orders/100/products"},
    }
    body.update(changes)
    return body


def order_products() -> list[dict[str, Any]]:
    return [
        {
            "id": 16,
            "order_id": 100,
            "product_id": 77,
            "variant_id": 1,
            "name": "[Sample] Fog Linen Chambray Towel - Beige Stripe",
            "sku": "SLCTBS-A9D2",
            "base_price": "49.0000",
            "price_ex_tax": "49.0000",
            "price_inc_tax": "53.0400",
            "total_ex_tax": "98.0000",
            "quantity": 2,
        },
        {
            "id": 17,
            "order_id": 100,
            "product_id": 77,
            "variant_id": 2,  # another variant of the same product: rolls up to product 77
            "name": "[Sample] Fog Linen Chambray Towel - Blue Stripe",
            "sku": "SLCTBS-B1",
            "price_ex_tax": "12.3300",
            "quantity": 1,
        },
        {
            "id": 18,
            "order_id": 100,
            "product_id": 0,  # a custom product typed in by staff
            "variant_id": 0,
            "name": "Gift wrapping",
            "price_ex_tax": "2.0000",
            "quantity": 1,
        },
    ]


def product(**changes: Any) -> dict[str, Any]:
    body = {
        "id": 77,
        "name": "[Sample] Fog Linen Chambray Towel - Beige Stripe",
        "type": "physical",
        "sku": "SLCTBS",
        "description": "<p>The perfect <b>beach</b> towel &amp; more.</p>",
        "price": 49,
        "sale_price": 0,
        "calculated_price": 44.5,
        "categories": [23, 39],
        "brand_id": 36,
        "inventory_level": 12,
        "inventory_tracking": "variant",
        "is_visible": True,
        "availability": "available",
        "date_created": "2018-08-15T14:48:46+00:00",
        "date_modified": "2018-09-05T20:42:07+00:00",
        "variants": [
            {"id": 1, "product_id": 77, "sku": "SLCTBS-A9D2", "inventory_level": 0, "purchasing_disabled": False},
            {"id": 2, "product_id": 77, "sku": "SLCTBS-B1", "inventory_level": 12, "purchasing_disabled": False},
        ],
        # "Get a Product" with include=images; the page path is relative to the storefront
        "custom_url": {"url": "/fog-linen-chambray-towel-beige-stripe/", "is_customized": False},
        "images": [
            {
                "id": 266,
                "product_id": 77,
                "is_thumbnail": False,
                "sort_order": 0,
                "url_standard": f"{CDN}/500x659/towel-back.jpg",
                "url_zoom": f"{CDN}/1280x1280/towel-back.jpg",
            },
            {
                "id": 265,
                "product_id": 77,
                "is_thumbnail": True,
                "sort_order": 1,
                "url_standard": f"{CDN}/500x659/towel-front.jpg",
                "url_zoom": f"{CDN}/1280x1280/towel-front.jpg",
            },
        ],
    }
    body.update(changes)
    return body


def customer(customer_id: int = 11, group: int = 2) -> dict[str, Any]:
    return {
        "id": customer_id,
        "email": "janedoe@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
        "phone": "512-555-0100",
        "customer_group_id": group,
        "date_created": "2019-03-01T10:00:00Z",
        "date_modified": "2019-03-02T10:00:00Z",
    }


def v3_page(data: list[Any], page: int = 1, total_pages: int = 1) -> dict[str, Any]:
    return {
        "data": data,
        "meta": {
            "pagination": {
                "total": len(data),
                "count": len(data),
                "per_page": 250,
                "current_page": page,
                "total_pages": total_pages,
            }
        },
    }


def mock_api(rsps: responses.RequestsMock) -> None:
    """The store's API as the callbacks in these tests need it."""
    rsps.get(f"{API}/v2/orders/100", json=order())
    rsps.get(f"{API}/v2/orders/100/products", json=order_products())
    rsps.get(f"{API}/v3/catalog/products/77", json={"data": product(), "meta": {}})
    rsps.get(f"{API}/v3/catalog/categories", json={"data": [{"id": 23, "name": "Bath"}, {"id": 39, "name": "Kitchen"}]})
    rsps.get(f"{API}/v3/catalog/brands", json={"data": [{"id": 36, "name": "OFS"}]})
    rsps.get(f"{API}/v3/customers", json=v3_page([customer()]))
    rsps.get(f"{API}/v2/store", json=store_profile())


def store_profile() -> dict[str, Any]:
    """v2 "Get Store Information" (the fields the storefront address needs, and a few more)."""
    return {
        "id": STORE_HASH,
        "domain": "towels.example",
        "secure_url": f"{STOREFRONT}/",
        "name": "Fog Linen Towels",
        "currency": "USD",
    }


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mock_api(rsps)
        yield rsps


# --------------------------------------------------------------------- deliveries
def bc_delivery(
    body: bytes,
    *,
    secret: str | None = SECRET,
    msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    timestamp: int | None = None,
) -> Delivery:
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(stamp)}
    if secret is not None:
        headers["webhook-signature"] = sign(msg_id, stamp, body, secret)
    return Delivery.of(body, headers)


def with_fields(body: bytes, **fields: Any) -> bytes:
    """The body with top-level fields replaced (for bodies that are JSON objects; others unchanged)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body
    if not isinstance(payload, dict):
        return body
    payload.update(fields)
    return json.dumps(payload).encode()


def parse(body: bytes, config: dict[str, Any] | None = None) -> list[Any]:
    return BigCommerceAdapter.from_connection(config or CONFIG).parse(bc_delivery(body))


class TestBigCommerceContract(AdapterContract):
    adapter_class = BigCommerceAdapter
    secret = SECRET
    personal_data = PERSONAL_DATA
    required_topics = ("store/order/created", "store/product/created", "store/product/updated")

    def connection_config(self) -> dict[str, Any]:
        return dict(CONFIG)

    @pytest.fixture
    def adapter(self, api: responses.RequestsMock) -> BigCommerceAdapter:
        # The callbacks are thin: parsing calls the store's API, mocked by ``api``.
        return BigCommerceAdapter.from_connection(self.connection_config())

    def topic_bodies(self) -> dict[str, bytes]:
        return {
            "store/order/created": callback("store/order/created", 100),
            "store/order/updated": callback("store/order/updated", 100),
            "store/order/statusUpdated": callback("store/order/statusUpdated", 100),
            "store/product/created": callback("store/product/created", 77, kind="product"),
            "store/product/updated": callback("store/product/updated", 77, kind="product"),
            "store/product/inventory/updated": callback("store/product/inventory/updated", 77, kind="product"),
            "store/product/inventory/order/updated": callback(
                "store/product/inventory/order/updated", 77, kind="product"
            ),
            "store/product/deleted": callback("store/product/deleted", 77, kind="product"),
            "store/customer/created": callback("store/customer/created", 11, kind="customer"),
            "store/customer/updated": callback("store/customer/updated", 11, kind="customer"),
            "store/customer/deleted": callback("store/customer/deleted", 11, kind="customer"),
        }

    def make_delivery(
        self, body: bytes, *, topic: str, secret: str | None, delivery_id: str = "contract-delivery-1"
    ) -> Delivery:
        # BigCommerce names the topic (scope) and the dedupe key (hash) inside the body.
        return bc_delivery(with_fields(body, scope=topic, hash=delivery_id), secret=secret)

    def test_unknown_topic_with_an_unreadable_body_does_not_crash(self, adapter: BigCommerceAdapter) -> None:
        # The scope is inside the body, so an unreadable body has no topic at all: it is a clear
        # PayloadError (the intake keeps the delivery as failed, replayable), not a crash.
        delivery = self.make_delivery(b"\x00garbage", topic=self.unknown_topic, secret=self.secret)
        assert adapter.topic(delivery) is None and adapter.delivery_id(delivery) is None
        with pytest.raises(PayloadError, match="not JSON"):
            adapter.parse(delivery)


# --------------------------------------------------------------------- signatures
def test_signer_matches_the_standard_webhooks_recipe() -> None:
    body = callback("store/order/created", 100)
    digest = hmac.new(SECRET.encode(), b"msg_1.1700000000." + body, hashlib.sha256).digest()
    assert sign("msg_1", 1700000000, body, SECRET) == "v1," + base64.b64encode(digest).decode()


def test_whsec_secret_is_base64_decoded_like_the_standard_webhooks_library() -> None:
    key = b"\x01\x02raw key bytes"
    secret = "whsec_" + base64.b64encode(key).decode()
    body = callback("store/order/created", 100)
    digest = hmac.new(key, b"m.5." + body, hashlib.sha256).digest()
    assert sign("m", 5, body, secret) == "v1," + base64.b64encode(digest).decode()
    BigCommerceAdapter().verify(bc_delivery(body, secret=secret), secret)


def test_any_one_of_several_signatures_is_enough_during_secret_rotation() -> None:
    body = callback("store/order/created", 100)
    delivery = bc_delivery(body)
    good = delivery.headers["webhook-signature"]
    headers = dict(delivery.headers, **{"webhook-signature": f"v1,b2xkIHNpZ25hdHVyZQ== v1a,xyz {good}"})
    BigCommerceAdapter().verify(Delivery.of(body, headers), SECRET)


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp"])
def test_signature_binds_the_id_and_the_timestamp(header: str) -> None:
    body = callback("store/order/created", 100)
    delivery = bc_delivery(body, msg_id="100", timestamp=int(time.time()))
    changed = dict(delivery.headers, **{header: str(int(delivery.headers[header]) + 1)})
    with pytest.raises(SignatureError, match="no webhook-signature matches"):
        BigCommerceAdapter().verify(Delivery.of(body, changed), SECRET)


@pytest.mark.parametrize("age", [301, -301], ids=["stale", "future"])
def test_timestamps_more_than_five_minutes_off_are_refused(age: int) -> None:
    now = 1_700_000_000.0
    delivery = bc_delivery(callback("store/order/created", 100), timestamp=int(now - age))
    with pytest.raises(SignatureError, match="possible replay"):
        BigCommerceAdapter(clock=lambda: now).verify(delivery, SECRET)
    BigCommerceAdapter(clock=lambda: now - age).verify(delivery, SECRET)  # fine when it was fresh


def test_a_stored_delivery_replayed_later_verifies_against_its_receipt_time() -> None:
    received = 1_700_000_000.0
    fresh = bc_delivery(callback("store/order/created", 100), timestamp=int(received) - 2)
    replayed = Delivery.of(fresh.body, fresh.headers, received_at=received)
    BigCommerceAdapter(clock=lambda: received + 86_400).verify(replayed, SECRET)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_named(missing: str) -> None:
    delivery = bc_delivery(callback("store/order/created", 100))
    headers = {k: v for k, v in delivery.headers.items() if k != missing}
    with pytest.raises(SignatureError, match=f"missing {missing}"):
        BigCommerceAdapter().verify(Delivery.of(delivery.body, headers), SECRET)


def test_timestamp_that_is_not_a_number_is_refused() -> None:
    delivery = bc_delivery(callback("store/order/created", 100))
    headers = dict(delivery.headers, **{"webhook-timestamp": "yesterday"})
    with pytest.raises(SignatureError, match="not Unix seconds"):
        BigCommerceAdapter().verify(Delivery.of(delivery.body, headers), SECRET)


def test_dedupe_key_is_the_payload_hash_and_the_topic_its_scope() -> None:
    delivery = bc_delivery(callback("store/order/statusUpdated", 100, hash_="ab12"))
    adapter = BigCommerceAdapter()
    assert adapter.delivery_id(delivery) == "ab12"
    assert adapter.topic(delivery) == "store/order/statusUpdated"


# --------------------------------------------------------------------- orders
def test_order_callback_fetches_the_order_and_gives_one_purchase_per_catalog_line(
    api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        records = parse(callback("store/order/created", 100))
    created = datetime(2019, 3, 5, 21, 57, 34, tzinfo=UTC).timestamp()
    cart = "d4e978c2-bdcf-41b0-a49b-fecf4f5223c1"
    assert records == [
        Interaction("11", "77", PURCHASE, created, 98.0, cart, "bigcommerce:100:16", context={}),
        Interaction("11", "77", PURCHASE, created, 12.33, cart, "bigcommerce:100:17", context={}),
    ]
    assert "line 18 has no catalog product" in caplog.text
    assert api.calls[0].request.headers["X-Auth-Token"] == "tok-123"
    assert not any(value in repr(records) for value in PERSONAL_DATA)


def test_every_order_callback_gives_the_same_event_ids(api: responses.RequestsMock) -> None:
    scopes = ("store/order/created", "store/order/updated", "store/order/statusUpdated")
    ids = {tuple(r.event_id for r in parse(callback(scope, 100))) for scope in scopes}
    assert ids == {("bigcommerce:100:16", "bigcommerce:100:17")}


@pytest.mark.parametrize(
    ("status_id", "status"), [(0, "Incomplete"), (5, "Cancelled"), (6, "Declined"), (4, "Refunded")]
)
def test_orders_that_were_not_bought_give_no_purchases(
    status_id: int, status: str, caplog: pytest.LogCaptureFixture
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mock_api(rsps)
        rsps.replace(responses.GET, f"{API}/v2/orders/100", json=order(status_id=status_id, status=status))
        with caplog.at_level(logging.INFO):
            assert parse(callback("store/order/statusUpdated", 100)) == []
    assert f"{status!r}, not a purchase" in caplog.text


def test_unknown_order_status_is_logged_and_skipped(
    api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    api.replace(responses.GET, f"{API}/v2/orders/100", json=order(status_id=99, status="Teleported"))
    with caplog.at_level(logging.INFO):
        assert parse(callback("store/order/created", 100)) == []
    assert "unknown order status_id 99" in caplog.text


def test_guest_order_belongs_to_its_cart_else_to_the_order(api: responses.RequestsMock) -> None:
    api.replace(responses.GET, f"{API}/v2/orders/100", json=order(customer_id=0))
    assert {r.user_id for r in parse(callback("store/order/created", 100))} == {"d4e978c2-bdcf-41b0-a49b-fecf4f5223c1"}
    api.replace(responses.GET, f"{API}/v2/orders/100", json=order(customer_id=0, cart_id=""))
    assert {(r.user_id, r.session_id) for r in parse(callback("store/order/created", 100))} == {("order-100", None)}


def test_order_deleted_before_the_fetch_is_skipped(
    api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    api.replace(responses.GET, f"{API}/v2/orders/100", status=404, json=[{"status": 404, "message": "not found"}])
    with caplog.at_level(logging.INFO):
        assert parse(callback("store/order/created", 100)) == []
    assert "no longer exists" in caplog.text


def test_order_lines_are_read_across_pages() -> None:
    lines = order_products()
    with responses.RequestsMock() as rsps:
        for page, chunk in ((1, lines[:2]), (2, lines[2:])):
            rsps.get(
                f"{API}/v2/orders/100/products",
                json=chunk,
                match=[matchers.query_param_matcher({"limit": "2", "page": str(page)})],
            )
        client = BigCommerceClient(STORE_HASH, "tok-123")
        assert [line["id"] for line in order_lines(client, 100, limit=2)] == [16, 17, 18]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o.update(date_created="sometime"), "not an RFC 2822 date"),
        (lambda o: o.pop("date_created"), "date_created is missing"),
        (lambda o: o.update(id="x"), "no numeric id"),
    ],
    ids=["bad-date", "no-date", "no-id"],
)
def test_unusable_order_is_a_payload_error_that_says_why(
    api: responses.RequestsMock, change: Any, message: str
) -> None:
    body = order()
    change(body)
    api.replace(responses.GET, f"{API}/v2/orders/100", json=body)
    with pytest.raises(PayloadError, match=message):
        parse(callback("store/order/created", 100))


def test_bad_line_quantity_is_a_payload_error(api: responses.RequestsMock) -> None:
    lines = order_products()
    lines[0]["quantity"] = "two"
    api.replace(responses.GET, f"{API}/v2/orders/100/products", json=lines)
    with pytest.raises(PayloadError, match="quantity 'two'"):
        parse(callback("store/order/created", 100))


# --------------------------------------------------------------------- products and customers
def test_product_callback_fetches_the_product_with_names_for_its_category_and_brand(
    api: responses.RequestsMock,
) -> None:
    (item,) = parse(callback("store/product/updated", 77, kind="product"))
    assert item == Item(
        item_id="77",
        properties={
            TITLE: "[Sample] Fog Linen Chambray Towel - Beige Stripe",
            DESCRIPTION: "The perfect beach towel & more.",
            CATEGORIES: "Bath|Kitchen",
            BRAND: "OFS",
            PRICE: 44.5,  # calculated_price: what shoppers pay
            STOCK: 12,  # variants summed: 0 + 12
            AVAILABILITY: "in_stock",
            STATUS: "ACTIVE",
            # custom_url on the store's secure URL (asked of v2/store); the thumbnail-flagged image
            URL: f"{STOREFRONT}/fog-linen-chambray-towel-beige-stripe/",
            IMAGE_URL: f"{CDN}/500x659/towel-front.jpg",
        },
        creation_timestamp=datetime(2018, 8, 15, 14, 48, 46, tzinfo=UTC).timestamp(),
    )
    categories = next(c for c in api.calls if "/categories" in c.request.url)
    assert "id%3Ain=23%2C39" in categories.request.url
    fetched = next(c for c in api.calls if "/catalog/products/77" in c.request.url)
    assert "include=variants%2Cimages" in fetched.request.url


def test_configured_store_url_is_used_without_asking_the_api(api: responses.RequestsMock) -> None:
    (item,) = parse(
        callback("store/product/updated", 77, kind="product"), {**CONFIG, "store_url": "https://www.towels.example/"}
    )
    assert item.properties[URL] == "https://www.towels.example/fog-linen-chambray-towel-beige-stripe/"
    assert not [c for c in api.calls if "/v2/store" in c.request.url]


def test_without_the_store_profile_the_url_stays_a_path_and_it_is_logged(
    api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    api.replace(responses.GET, f"{API}/v2/store", status=403, json={"title": "You don't have a required scope"})
    with caplog.at_level(logging.WARNING):
        (item,) = parse(callback("store/product/updated", 77, kind="product"))
    assert item.properties[URL] == "/fog-linen-chambray-towel-beige-stripe/"
    assert "set it with --set store_url=" in caplog.text


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        ([], None),
        ([{"sort_order": 2, "url_standard": f"{CDN}/b.jpg"}, {"sort_order": 1, "url_zoom": f"{CDN}/a.jpg"}], "a.jpg"),
        (
            [{"is_thumbnail": True, "url_standard": "not a url"}, {"sort_order": 5, "url_standard": f"{CDN}/c.jpg"}],
            "c.jpg",
        ),
    ],
    ids=["no-images", "first-by-sort-order", "thumbnail-without-a-usable-url"],
)
def test_main_image_is_the_thumbnail_else_the_first_by_sort_order(
    api: responses.RequestsMock, images: list[dict[str, Any]], expected: str | None
) -> None:
    api.replace(responses.GET, f"{API}/v3/catalog/products/77", json={"data": product(images=images, custom_url=None)})
    (item,) = parse(callback("store/product/updated", 77, kind="product"))
    assert item.properties.get(IMAGE_URL) == (f"{CDN}/{expected}" if expected else None)
    assert URL not in item.properties  # no custom_url: no page to link


def test_store_url_that_is_not_an_address_is_refused_when_connecting() -> None:
    with pytest.raises(InvalidInput, match=r"store_url .towels\.example. is not an http"):
        BigCommerceAdapter.from_connection({**CONFIG, "store_url": "towels.example"})


@pytest.mark.parametrize(
    ("changes", "stock", "availability"),
    [
        ({"variants": [{"id": 1, "inventory_level": 5, "purchasing_disabled": True}]}, 5, "out_of_stock"),
        ({"inventory_tracking": "product", "inventory_level": 0, "variants": []}, 0, "out_of_stock"),
        ({"inventory_tracking": "none"}, None, "in_stock"),
        ({"availability": "preorder"}, 12, "backorder"),
        ({"availability": "disabled"}, 12, "out_of_stock"),
    ],
    ids=["only-variant-disabled", "product-tracked-empty", "untracked", "preorder", "disabled"],
)
def test_stock_and_availability_roll_up_from_the_variants(
    api: responses.RequestsMock, changes: dict[str, Any], stock: int | None, availability: str
) -> None:
    api.replace(responses.GET, f"{API}/v3/catalog/products/77", json={"data": product(**changes)})
    (item,) = parse(callback("store/product/updated", 77, kind="product"))
    assert item.properties.get(STOCK) == stock
    assert item.properties[AVAILABILITY] == availability


def test_hidden_product_and_unknown_values_are_mapped_or_left_out(
    api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    api.replace(
        responses.GET,
        f"{API}/v3/catalog/products/77",
        json={"data": product(is_visible=False, inventory_tracking="quantum", categories=[23, 404], brand_id=0)},
    )
    with caplog.at_level(logging.INFO):
        (item,) = parse(callback("store/product/updated", 77, kind="product"))
    assert item.properties[STATUS] == "HIDDEN"
    assert STOCK not in item.properties and BRAND not in item.properties
    assert item.properties[CATEGORIES] == "Bath"
    assert "unknown inventory_tracking 'quantum'" in caplog.text and "categories id 404" in caplog.text


def test_product_deleted_erases_the_item_without_calling_the_api(api: responses.RequestsMock) -> None:
    assert parse(callback("store/product/deleted", 77, kind="product")) == [Erasure(item_id="77")]
    assert len(api.calls) == 0


def test_customer_becomes_a_user_with_its_group_only(api: responses.RequestsMock) -> None:
    assert parse(callback("store/customer/updated", 11, kind="customer")) == [
        User(user_id="11", properties={"CUSTOMER_GROUP": "2"})
    ]


def test_deleted_customer_is_forgotten(api: responses.RequestsMock) -> None:
    assert parse(callback("store/customer/deleted", 11, kind="customer")) == [ForgetShopper(user_id="11")]
    assert len(api.calls) == 0


def test_callback_without_a_resource_id_is_a_payload_error() -> None:
    body = json.dumps({"scope": "store/order/created", "data": {"type": "order"}, "hash": "h"}).encode()
    with pytest.raises(PayloadError, match=r"no numeric data\.id"):
        parse(body)


def test_connection_without_api_credentials_is_refused_saying_what_to_set() -> None:
    with pytest.raises(InvalidInput, match="--set store_hash=HASH --set access_token=TOKEN"):
        BigCommerceAdapter.from_connection({"store_hash": STORE_HASH})
    with pytest.raises(InvalidInput, match="not a store hash"):
        BigCommerceAdapter.from_connection({"store_hash": "../x", "access_token": "t"})
    # Without settings the adapter still verifies and labels deliveries (the intake's rejections).
    assert BigCommerceAdapter().topic(bc_delivery(callback("store/order/created", 100))) == "store/order/created"
    with pytest.raises(InvalidInput, match="access_token"):
        BigCommerceAdapter().parse(bc_delivery(callback("store/order/created", 100)))


def test_refused_token_is_a_platform_error_that_names_the_token(api: responses.RequestsMock) -> None:
    api.replace(responses.GET, f"{API}/v2/orders/100", status=401, json={"title": "Unauthorized"})
    with pytest.raises(PlatformError, match="access_token"):
        parse(callback("store/order/created", 100))


# --------------------------------------------------------------------- the client: rate limits
def client(sleeps: list[float], **options: Any) -> BigCommerceClient:
    return BigCommerceClient(STORE_HASH, "tok-123", sleep=sleeps.append, **options)


def test_429_waits_for_the_reset_time_bigcommerce_names_then_retries() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/v2/orders/100", status=429, headers={"X-Rate-Limit-Time-Reset-Ms": "1500"})
        rsps.get(f"{API}/v2/orders/100", json={"id": 100})
        assert client(sleeps).get("v2/orders/100") == {"id": 100}
    assert sleeps == [1.5]


def test_server_errors_back_off_and_give_up_with_a_platform_error() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/v2/orders/100", status=503)
        with pytest.raises(PlatformError, match="answered 503") as failure:
            client(sleeps, max_retries=3).get("v2/orders/100")
        assert len(rsps.calls) == 4
    assert sleeps == [1.0, 2.0, 4.0] and failure.value.status == 503


def test_exhausted_quota_pauses_before_the_next_call() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        rsps.get(
            f"{API}/v2/orders/1",
            json={"id": 1},
            headers={"X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "2500"},
        )
        rsps.get(f"{API}/v2/orders/2", json={"id": 2})
        c = client(sleeps)
        c.get("v2/orders/1")
        assert sleeps == []
        c.get("v2/orders/2")
    assert sleeps == [2.5]


def test_no_content_is_none() -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/v2/orders", status=204)
        assert client([]).get("v2/orders") is None


# --------------------------------------------------------------------- back-fill
def order_summary(order_id: int) -> dict[str, Any]:
    return order(id=order_id, date_modified=f"Wed, 0{order_id % 9 + 1} Mar 2019 10:00:00 +0000")


def mock_backfill(rsps: responses.RequestsMock, *, orders_page_2: dict[str, Any] | None = None) -> None:
    """Two pages of products, one of customers, orders in pages of 2 (3 orders: a short last page)."""
    rsps.get(
        f"{API}/v3/catalog/products",
        json=v3_page([product(id=77)], 1, 2),
        match=[matchers.query_param_matcher({"page": "1"}, strict_match=False)],
    )
    rsps.get(
        f"{API}/v3/catalog/products",
        json=v3_page([product(id=78, date_modified="2019-01-01T00:00:00+00:00")], 2, 2),
        match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)],
    )
    rsps.get(f"{API}/v3/catalog/categories", json={"data": [{"id": 23, "name": "Bath"}, {"id": 39, "name": "Kitchen"}]})
    rsps.get(f"{API}/v3/catalog/brands", json={"data": [{"id": 36, "name": "OFS"}]})
    rsps.get(f"{API}/v3/customers", json=v3_page([customer(11), customer(12, group=0)]))
    rsps.get(f"{API}/v2/store", json=store_profile())
    rsps.get(
        f"{API}/v2/orders",
        json=[order_summary(100), order_summary(101)],
        match=[matchers.query_param_matcher({"page": "1"}, strict_match=False)],
    )
    rsps.get(
        f"{API}/v2/orders",
        match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)],
        **(orders_page_2 or {"json": [order_summary(102)]}),
    )
    rsps.get(re.compile(rf"{API}/v2/orders/\d+/products"), json=order_products()[:1])


def run(adapter: BigCommerceAdapter, sleeps: list[float]) -> list[Any]:
    return list(adapter.backfill(adapter.api_client(sleep=sleeps.append)))


def test_backfill_walks_every_page_of_products_customers_and_orders() -> None:
    adapter = BigCommerceAdapter.from_connection({**CONFIG, "page_size": 2})
    with responses.RequestsMock() as rsps:
        mock_backfill(rsps)
        out = run(adapter, [])
        urls = [c.request.url for c in rsps.calls]  # responses forgets its calls when it stops
    records = [r for r in out if not isinstance(r, Checkpoint)]
    assert [r.item_id for r in records if isinstance(r, Item)] == ["77", "78"]
    assert [(r.user_id, r.properties) for r in records if isinstance(r, User)] == [
        ("11", {"CUSTOMER_GROUP": "2"}),
        ("12", {}),
    ]
    assert [r.event_id for r in records if isinstance(r, Interaction)] == [
        "bigcommerce:100:16",
        "bigcommerce:101:16",
        "bigcommerce:102:16",
    ]
    # a checkpoint after every page: 2 of products, 1 of customers, 2 of orders
    checkpoints = [r for r in out if isinstance(r, Checkpoint)]
    assert len(checkpoints) == 5
    final = checkpoints[-1].state
    assert {name: state["running"] for name, state in final.items()} == {
        "products": False,
        "customers": False,
        "orders": False,
    }
    # the high-water marks for the next pass, as ISO-8601 whatever the API version wrote
    assert final["products"]["next_since"] == "2019-01-01T00:00:00+00:00"
    assert final["orders"]["next_since"] == "2019-03-04T10:00:00+00:00"
    orders_calls = [url for url in urls if "/v2/orders?" in url]
    assert orders_calls and all("sort=id%3Aasc" in url and "limit=2" in url for url in orders_calls)
    # products come with their images, and the storefront's address is asked once for the whole run
    items = [r for r in records if isinstance(r, Item)]
    assert [(i.properties[URL], i.properties[IMAGE_URL]) for i in items] == [
        (f"{STOREFRONT}/fog-linen-chambray-towel-beige-stripe/", f"{CDN}/500x659/towel-front.jpg")
    ] * 2
    product_calls = [url for url in urls if "/catalog/products?" in url]
    assert product_calls and all("include=variants%2Cimages" in url for url in product_calls)
    assert len([url for url in urls if url.endswith("/v2/store")]) == 1


def test_backfill_waits_out_a_429_and_carries_on() -> None:
    sleeps: list[float] = []
    adapter = BigCommerceAdapter.from_connection({**CONFIG, "page_size": 2})
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/v3/catalog/products", status=429, headers={"X-Rate-Limit-Time-Reset-Ms": "750"})
        mock_backfill(rsps)
        out = run(adapter, sleeps)
    assert sleeps == [0.75]
    assert len([r for r in out if isinstance(r, Item)]) == 2


def test_interrupted_backfill_resumes_from_its_last_checkpoint_without_fetching_again() -> None:
    adapter = BigCommerceAdapter.from_connection({**CONFIG, "page_size": 2})
    kept: list[Any] = []
    saved: dict[str, Any] | None = None
    with responses.RequestsMock() as rsps:
        mock_backfill(rsps, orders_page_2={"status": 500})
        with pytest.raises(PlatformError, match="answered 500"):
            for out in adapter.backfill(adapter.api_client(sleep=lambda _s: None, max_retries=1)):
                if isinstance(out, Checkpoint):
                    saved = out.state  # what the intake stores in the connection settings
                else:
                    kept.append(out)
    assert saved is not None and saved["orders"]["cursor"] == 2

    resumed = BigCommerceAdapter.from_connection({**CONFIG, "page_size": 2, "backfill": saved})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mock_backfill(rsps)
        rest = [r for r in run(resumed, []) if not isinstance(r, Checkpoint)]
        fetched = [c.request.url for c in rsps.calls]
    # orders continue at page 2; the finished streams only catch up on what changed since their pass
    assert [r.event_id for r in rest if isinstance(r, Interaction)] == ["bigcommerce:102:16"]
    assert [url for url in fetched if "/v2/orders?" in url] == [f"{API}/v2/orders?limit=2&page=2&sort=id%3Aasc"]
    listed = [requests.utils.unquote(url) for url in fetched if "/catalog/products?" in url or "/customers?" in url]
    assert listed and all(":min=" in url for url in listed)


def test_a_finished_backfill_catches_up_on_changes_since_its_last_pass() -> None:
    adapter = BigCommerceAdapter.from_connection({**CONFIG, "page_size": 2})
    with responses.RequestsMock() as rsps:
        mock_backfill(rsps)
        state = [r for r in run(adapter, []) if isinstance(r, Checkpoint)][-1].state
    again = BigCommerceAdapter.from_connection({**CONFIG, "page_size": 2, "backfill": state})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mock_backfill(rsps)
        run(again, [])
        urls = [requests.utils.unquote(c.request.url) for c in rsps.calls]
    assert any("v3/catalog/products?" in u and "date_modified:min=2019-01-01T00:00:00+00:00" in u for u in urls)
    assert any("v2/orders?" in u and "min_date_modified=2019-03-04T10:00:00+00:00" in u for u in urls)


def test_orders_end_at_no_content() -> None:
    adapter = BigCommerceAdapter.from_connection({**CONFIG, "page_size": 2})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mock_backfill(rsps, orders_page_2={"status": 204})
        records = [r for r in run(adapter, []) if isinstance(r, Interaction)]
    assert [r.event_id for r in records] == ["bigcommerce:100:16", "bigcommerce:101:16"]


def test_shelfwise_backfill_stores_each_page_and_resumes_after_a_failure(store: Store) -> None:
    """The same run ``shelfwise backfill bigcommerce`` makes: pages ingested, the checkpoint saved in
    the connection, and a second run after an API failure picking up at the failed page."""
    store.create_dataset_group("bc-fill")
    store.connect("bc-fill", "bigcommerce", SECRET, {**CONFIG, "page_size": 2})
    options = {"sleep": lambda _s: None, "max_retries": 0}
    with responses.RequestsMock() as rsps:
        mock_backfill(rsps, orders_page_2={"status": 500})
        with pytest.raises(PlatformError):
            run_backfill(store, "bc-fill", "bigcommerce", client_options=options)
    assert sorted(store.items("bc-fill")) == ["77", "78"]
    assert store.count_interactions("bc-fill") == 2  # orders 100 and 101; page 2 failed
    assert store.connection("bc-fill", "bigcommerce")[1]["backfill"]["orders"]["cursor"] == 2

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mock_backfill(rsps)
        report = run_backfill(store, "bc-fill", "bigcommerce", client_options=options)
    assert report.counts["interactions"] == 1  # order 102 only: nothing before the failed page again
    assert store.count_interactions("bc-fill") == 3


# --------------------------------------------------------------------- through the real server
@pytest.fixture
def live_shop(store: Store) -> Iterator[tuple[Store, str, str]]:
    """A connected dataset group and the real app (with its delivery worker) on a loopback port."""
    store.create_dataset_group("bc-shop")
    store.connect("bc-shop", "bigcommerce", SECRET, dict(CONFIG))
    with live_intake(store, "bc-shop", "bigcommerce") as url:
        yield store, "bc-shop", url


def test_callbacks_through_the_intake_verify_fetch_ingest_and_dedupe(live_shop: tuple[Store, str, str]) -> None:
    store, group, url = live_shop
    body = callback("store/order/created", 100, hash_="hash-1")

    def post(delivery: Delivery) -> requests.Response:
        return requests.post(url, data=delivery.body, headers=dict(delivery.headers), timeout=10)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru("http://127.0.0.1")
        mock_api(rsps)
        forged = post(bc_delivery(body, secret="not-the-secret"))
        assert forged.status_code == 401 and forged.json()["error"]["code"] == "InvalidSignature"
        stale = post(bc_delivery(body, timestamp=int(time.time()) - 3600))
        assert stale.status_code == 401 and "possible replay" in stale.json()["error"]["message"]

        first = post(bc_delivery(body, msg_id="msg_a"))
        assert first.status_code == 200 and first.json()["status"] == "accepted"
        # BigCommerce fired the same event twice: another message id, the same payload hash
        second = post(bc_delivery(body, msg_id="msg_b"))
        assert second.status_code == 200 and second.json()["status"] == "duplicate"
        statuses = settled(store, group)  # the worker fetches the order while the API is mocked

    assert statuses == ["rejected", "rejected", "processed", "duplicate"]
    assert [d.records for d in store.deliveries(group)][2] == 2
    events = store.latest_events(group, "11")
    assert [(e.item_id, e.event_type, e.event_value) for e in events] == [
        ("77", PURCHASE, 98.0),
        ("77", PURCHASE, 12.33),
    ]
