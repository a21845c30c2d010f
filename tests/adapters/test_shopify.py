"""The Shopify adapter: the shared contract, then orders/create parsed field by field."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Delivery, PayloadError, SignatureError
from adapters.shopify import ShopifyAdapter, sign
from engine.records import PURCHASE, Interaction, User
from tests.adapters.contract import AdapterContract

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "payloads"
ORDER_FILE = PAYLOADS / "shopify_orders_create.json"
SECRET = "s3cret"


def order_body() -> bytes:
    """The real orders/create body, byte for byte as stored (never re-serialised)."""
    if not ORDER_FILE.is_file():
        pytest.skip(f"payload {ORDER_FILE} is missing")
    return ORDER_FILE.read_bytes()


def order() -> dict[str, Any]:
    return json.loads(order_body())


def shopify_delivery(
    body: bytes, *, topic: str = "orders/create", secret: str | None = SECRET, webhook_id: str = "wh-1"
) -> Delivery:
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Shop-Domain": "t.myshopify.com",
    }
    if secret is not None:
        headers["X-Shopify-Hmac-Sha256"] = sign(body, secret)
    return Delivery.of(body, headers)


def parse(payload: dict[str, Any], topic: str = "orders/create") -> list:
    return ShopifyAdapter().parse(shopify_delivery(json.dumps(payload).encode(), topic=topic))


class TestShopifyContract(AdapterContract):
    adapter_class = ShopifyAdapter
    personal_data = (
        "bob.norman@hostmail.com",
        "Bob",
        "Norman",
        "Chestnut Street 92",
        "Louisville",
        "555-625-1199",
        "40202",
        "Happy Birthday",
    )

    def topic_bodies(self) -> dict[str, bytes]:
        return {"orders/create": order_body(), "orders/paid": order_body()}

    def make_delivery(
        self, body: bytes, *, topic: str, secret: str | None, delivery_id: str = "contract-delivery-1"
    ) -> Delivery:
        return shopify_delivery(body, topic=topic, secret=secret, webhook_id=delivery_id)


# --------------------------------------------------------------------- signatures
def test_signer_matches_the_documented_recipe() -> None:
    body = order_body()
    documented = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert sign(body, SECRET) == documented


def test_signature_is_over_the_raw_bytes_not_reserialised_json() -> None:
    body = order_body()
    delivery = shopify_delivery(body)
    reserialised = Delivery(body=json.dumps(json.loads(body)).encode(), headers=delivery.headers)
    ShopifyAdapter().verify(delivery, SECRET)
    with pytest.raises(SignatureError):
        ShopifyAdapter().verify(reserialised, SECRET)


def test_lower_case_header_names_work() -> None:
    # HTTP/2 lower-cases header names (shopify.dev delivery-structure page).
    body = order_body()
    delivery = Delivery.of(
        body,
        {
            "x-shopify-hmac-sha256": sign(body, SECRET),
            "x-shopify-topic": "orders/create",
            "x-shopify-webhook-id": "w9",
        },
    )
    adapter = ShopifyAdapter()
    adapter.verify(delivery, SECRET)
    assert adapter.topic(delivery) == "orders/create"
    assert adapter.delivery_id(delivery) == "w9"


def test_non_ascii_signature_header_is_rejected_not_crashed() -> None:
    delivery = Delivery.of(b"{}", {"X-Shopify-Hmac-Sha256": "ünïcode"})
    with pytest.raises(SignatureError, match="does not match"):
        ShopifyAdapter().verify(delivery, SECRET)


def test_empty_signature_header_counts_as_missing() -> None:
    with pytest.raises(SignatureError, match="missing"):
        ShopifyAdapter().verify(Delivery.of(b"{}", {"X-Shopify-Hmac-Sha256": " "}), SECRET)


def test_empty_webhook_id_is_no_delivery_id() -> None:
    assert ShopifyAdapter().delivery_id(Delivery.of(b"{}", {"X-Shopify-Webhook-Id": ""})) is None


# --------------------------------------------------------------------- orders/create
def test_order_line_items_become_purchases_of_their_products() -> None:
    records = ShopifyAdapter().parse(shopify_delivery(order_body()))
    interactions = [r for r in records if isinstance(r, Interaction)]
    created = datetime(2008, 1, 10, 16, 0, tzinfo=UTC).timestamp()  # 11:00 at -05:00
    assert interactions == [
        Interaction(
            user_id="207119551",
            item_id="632910392",  # the three variants (green, red, black) roll up to the product
            event_type=PURCHASE,
            timestamp=created,
            event_value=199.0,
            session_id="68778783ad298f1c80c3bafcddeea02f",
            event_id=f"450789469:{line_id}",
            context={},
        )
        for line_id in (466157049, 518995019, 703073504)
    ]


def test_the_customer_becomes_a_user_with_non_personal_attributes_only() -> None:
    users = [r for r in ShopifyAdapter().parse(shopify_delivery(order_body())) if isinstance(r, User)]
    assert users == [User(user_id="207119551", properties={"ORDERS_COUNT": 0})]


def test_orders_paid_is_parsed_like_orders_create() -> None:
    assert parse(order(), "orders/paid") == parse(order(), "orders/create")


def test_event_value_is_price_times_quantity_without_float_noise() -> None:
    payload = order()
    payload["line_items"] = [dict(payload["line_items"][0], price="19.99", quantity=3)]
    (purchase,) = [r for r in parse(payload) if isinstance(r, Interaction)]
    assert purchase.event_value == 59.97


def test_missing_price_leaves_event_value_empty() -> None:
    payload = order()
    payload["line_items"] = [dict(payload["line_items"][0], price=None)]
    (purchase,) = [r for r in parse(payload) if isinstance(r, Interaction)]
    assert purchase.event_value is None


def test_line_items_without_a_product_are_skipped_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    payload = order()
    payload["line_items"][1]["product_id"] = None  # a custom line item (a tip, a manual charge)
    with caplog.at_level(logging.INFO):
        records = parse(payload)
    kept = [r.event_id for r in records if isinstance(r, Interaction)]
    assert kept == ["450789469:466157049", "450789469:703073504"]
    assert "518995019" in caplog.text and "no product_id" in caplog.text


@pytest.mark.parametrize(
    "customer", [None, {}, {"email": "bob.norman@hostmail.com"}], ids=["null", "empty", "no-id"]
)
def test_guest_checkout_is_known_by_its_cart_token(customer: Any) -> None:
    payload = order()
    payload["customer"] = customer
    records = parse(payload)
    assert {r.user_id for r in records} == {"68778783ad298f1c80c3bafcddeea02f"}
    assert not [r for r in records if isinstance(r, User)]


def test_guest_without_cart_token_falls_back_to_checkout_token_then_order_id() -> None:
    payload = order()
    del payload["customer"]
    payload["cart_token"] = None
    payload["checkout_token"] = "chk-77"
    assert {(r.user_id, r.session_id) for r in parse(payload)} == {("chk-77", "chk-77")}
    payload["checkout_token"] = None
    assert {(r.user_id, r.session_id) for r in parse(payload)} == {("order-450789469", None)}


def test_created_at_with_z_suffix_is_utc() -> None:
    payload = order()
    payload["created_at"] = "2024-03-01T12:00:00Z"
    assert {r.timestamp for r in parse(payload) if isinstance(r, Interaction)} == {
        datetime(2024, 3, 1, 12, tzinfo=UTC).timestamp()
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("line_items"), "line_items"),
        (lambda p: p.update(line_items="nope"), "line_items"),
        (lambda p: p.update(created_at="last tuesday"), "created_at"),
        (lambda p: p.pop("created_at"), "created_at"),
        (lambda p: p.pop("id"), "no id"),
        (lambda p: p["line_items"][0].update(price="free"), "price"),
        (lambda p: p["line_items"][0].update(quantity="2"), "quantity"),
    ],
    ids=[
        "no-line-items",
        "line-items-not-a-list",
        "bad-created-at",
        "no-created-at",
        "no-id",
        "bad-price",
        "bad-quantity",
    ],
)
def test_unusable_order_is_a_payload_error_that_says_why(change: Any, message: str) -> None:
    payload = copy.deepcopy(order())
    change(payload)
    with pytest.raises(PayloadError, match=message):
        parse(payload)


def test_body_that_is_not_an_object_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="not a JSON object"):
        ShopifyAdapter().parse(shopify_delivery(b"[1, 2]"))


def test_missing_topic_header_is_ignored_like_an_unknown_topic() -> None:
    delivery = Delivery.of(order_body(), {"X-Shopify-Hmac-Sha256": sign(order_body(), SECRET)})
    assert ShopifyAdapter().parse(delivery) == []
