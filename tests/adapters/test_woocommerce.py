"""The WooCommerce adapter: the shared contract, the ping, every topic, the REST v3 back-fill."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from responses import matchers

from adapters.actions import Checkpoint, ForgetShopper
from adapters.base import Delivery
from adapters.http import PlatformApiError
from adapters.woocommerce import WooCommerceAdapter, sign
from engine.errors import InvalidInput
from engine.records import PURCHASE, Erasure, Interaction, Item, User
from tests.adapters import bodies
from tests.adapters.contract import AdapterContract

SECRET = "wc-secret"


def woo_delivery(
    body: bytes, *, topic: str = "order.created", secret: str | None = SECRET, delivery_id: str = "d-1"
) -> Delivery:
    resource, event = topic.split(".", 1)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/8.9.1 Hookshot (WordPress/6.5.3)",
        "X-WC-Webhook-Source": "https://example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "142",
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }
    if secret is not None:
        headers["X-WC-Webhook-Signature"] = sign(body, secret)
    return Delivery.of(body, headers)


def parse(payload: Any, topic: str = "order.created") -> list[Any]:
    return WooCommerceAdapter().parse(woo_delivery(json.dumps(payload).encode(), topic=topic))


def order() -> dict[str, Any]:
    return bodies.shared_json("woocommerce_order_created.json")


class TestWooCommerceContract(AdapterContract):
    adapter_class = WooCommerceAdapter
    secret = SECRET
    unknown_topic = "coupon.created"
    # order.deleted is acknowledged with no records by design: tested below.
    required_topics = (
        "order.created",
        "order.updated",
        "product.created",
        "product.updated",
        "product.deleted",
        "customer.created",
        "customer.updated",
        "customer.deleted",
    )
    personal_data = (
        "João",
        "Silva",
        "Av. Brasil",
        "Rio de Janeiro",
        "12345-000",
        "joao.silva@example.com",
        "(11) 1111-1111",
        "john.doe@example.com",
        "969 Market",
        "San Francisco",
        "(555) 555-5555",
        "127.0.0.1",
        "mozilla",
        "gravatar",
    )

    def topic_bodies(self) -> dict[str, bytes]:
        return bodies.woo_topic_bodies()

    def make_delivery(
        self, body: bytes, *, topic: str, secret: str | None, delivery_id: str = "contract-delivery-1"
    ) -> Delivery:
        if "." not in topic:
            topic = f"{topic}.x"
        return woo_delivery(body, topic=topic, secret=secret, delivery_id=delivery_id)


# --------------------------------------------------------------------- security and headers
def test_signer_matches_generate_signature() -> None:
    body = bodies.shared("woocommerce_order_created.json")
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert sign(body, SECRET) == expected


def test_the_ping_is_recognised_and_answered_exactly_200() -> None:
    adapter = WooCommerceAdapter()
    ping = Delivery.of(bodies.shared("woocommerce_ping_body.txt"), {"User-Agent": "WooCommerce/8.9.1 Hookshot"})
    assert adapter.is_ping(ping)
    assert adapter.acknowledgement(ping).status == 200


def test_a_signed_or_different_body_is_no_ping() -> None:
    adapter = WooCommerceAdapter()
    assert not adapter.is_ping(woo_delivery(b"webhook_id=142"))  # signed: a real delivery
    assert not adapter.is_ping(Delivery.of(b"webhook_id=142&x=1", {}))
    assert not adapter.is_ping(Delivery.of(b'{"id": 1}', {}))


def test_the_older_delivery_id_header_is_accepted_too() -> None:
    delivery = Delivery.of(b"{}", {"X-WC-Delivery-ID": "old-77"})
    assert WooCommerceAdapter().delivery_id(delivery) == "old-77"


def test_topic_is_built_from_resource_and_event_without_the_topic_header() -> None:
    delivery = Delivery.of(b"{}", {"X-WC-Webhook-Resource": "product", "X-WC-Webhook-Event": "updated"})
    assert WooCommerceAdapter().topic(delivery) == "product.updated"


# --------------------------------------------------------------------- orders
def test_paid_order_lines_become_purchases() -> None:
    created = datetime(2017, 3, 21, 19, 16, tzinfo=UTC).timestamp()  # date_created_gmt
    assert parse(order()) == [
        Interaction("26", "87", PURCHASE, created, 9.0, event_id="wc:723:311", context={}),
        Interaction("26", "34", PURCHASE, created, 20.0, event_id="wc:723:313", context={}),
    ]


def test_order_updated_gives_the_same_event_ids_so_it_is_stored_once() -> None:
    assert parse(order(), "order.updated") == parse(order(), "order.created")


@pytest.mark.parametrize("status", ["pending", "failed", "cancelled", "refunded", "checkout-draft"])
def test_unpaid_orders_record_no_purchase(status: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert parse(dict(order(), status=status)) == []
    assert "no purchase recorded" in caplog.text


def test_unknown_order_status_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert parse(dict(order(), status="wc-shipped-by-plugin")) == []
    assert "unknown order status 'wc-shipped-by-plugin'" in caplog.text


def test_guest_order_is_known_by_the_order_and_variations_roll_up() -> None:
    payload = dict(order(), customer_id=0)
    payload["line_items"][0]["variation_id"] = 99
    payload["line_items"][1]["product_id"] = 0  # a product deleted since
    (purchase,) = parse(payload)
    assert (purchase.user_id, purchase.item_id) == ("order-723", "87")


def test_line_without_total_is_valued_at_price_times_quantity() -> None:
    payload = order()
    payload["line_items"] = [dict(payload["line_items"][1], total=None, quantity=3)]
    assert parse(payload)[0].event_value == 60.0


def test_order_deleted_is_acknowledged_with_no_records(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert parse({"id": 723}, "order.deleted") == []
    assert "723 deleted" in caplog.text


# --------------------------------------------------------------------- products and customers
def test_product_becomes_an_item() -> None:
    assert parse(bodies.WOO_PRODUCT, "product.updated") == [
        Item(
            item_id="794",
            properties={
                "TITLE": "Premium Quality",
                "PRODUCT_DESCRIPTION": "Pellentesque habitant morbi tristique senectus et netus et malesuada fames "
                "ac turpis egestas.",
                "CATEGORY_L1": "Clothing",
                "CATEGORIES": "Clothing|T-shirts",
                "TAGS": "cotton",
                "PRICE": 21.99,
                "STOCK": 12,
                "AVAILABILITY": "in_stock",
                "STATUS": "ACTIVE",
                "URL": "https://example.com/product/premium-quality-19/",
                "IMAGE_URL": "https://example.com/wp-content/uploads/2017/03/T_2_front-4.jpg",
            },
            creation_timestamp=datetime(2017, 3, 23, 20, 1, 14, tzinfo=UTC).timestamp(),
        )
    ]


def test_product_without_stock_management_or_price_leaves_them_out() -> None:
    product = dict(copy.deepcopy(bodies.WOO_PRODUCT), manage_stock=False, price="", stock_status="onbackorder")
    (item,) = parse(product, "product.created")
    assert "STOCK" not in item.properties and "PRICE" not in item.properties
    assert item.properties["AVAILABILITY"] == "backorder"


def test_a_variations_own_payload_rolls_up_to_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert parse(dict(bodies.WOO_PRODUCT, id=795, type="variation", parent_id=794), "product.updated") == []
    assert "variation of 794" in caplog.text


def test_deleted_product_is_erased_and_deleted_customer_forgotten() -> None:
    assert parse({"id": 794}, "product.deleted") == [Erasure(item_id="794")]
    assert parse({"id": 25}, "customer.deleted") == [ForgetShopper(user_id="25")]


def test_customer_becomes_a_user_with_role_and_paying_flag_only() -> None:
    assert parse(bodies.WOO_CUSTOMER, "customer.created") == [
        User("25", {"ROLE": "customer", "IS_PAYING_CUSTOMER": False})
    ]


# --------------------------------------------------------------------- back-fill through REST v3
API = "https://example.com/wp-json/wc/v3"
CONFIG = {"store_url": "https://example.com/", "consumer_key": "ck_1", "consumer_secret": "cs_1"}
AUTH = "Basic " + base64.b64encode(b"ck_1:cs_1").decode()


def page_params(page: int, **extra: str) -> dict[str, str]:
    return {"per_page": "2", "page": str(page), "orderby": "id", "order": "asc", **extra}


def product(n: int, modified: str = "2024-05-01T10:00:00") -> dict[str, Any]:
    return dict(copy.deepcopy(bodies.WOO_PRODUCT), id=n, date_modified_gmt=modified)


def run(config: dict[str, Any], states: list[Any] | None = None, sleeps: list[float] | None = None) -> list[Any]:
    adapter = WooCommerceAdapter.from_connection({**config, "page_size": 2})
    records: list[Any] = []
    states = states if states is not None else []
    client = adapter.api_client(sleep=(sleeps if sleeps is not None else []).append, max_retries=1)
    for item in adapter.backfill(client):
        (states if isinstance(item, Checkpoint) else records).append(item)
    return records


@responses.activate
def test_backfill_reads_every_page_until_x_wp_totalpages() -> None:
    pages = {"X-WP-Total": "3", "X-WP-TotalPages": "2"}
    responses.get(
        f"{API}/products",
        json=[product(1), product(2)],
        headers=pages,
        match=[matchers.query_param_matcher(page_params(1)), matchers.header_matcher({"Authorization": AUTH})],
    )
    responses.get(
        f"{API}/products",
        json=[product(3, "2024-06-01T08:00:00")],
        headers=pages,
        match=[matchers.query_param_matcher(page_params(2))],
    )
    responses.get(
        f"{API}/orders",
        json=[dict(order(), date_modified_gmt="2024-05-20T00:00:00")],
        headers={"X-WP-TotalPages": "1"},
        match=[matchers.query_param_matcher(page_params(1))],
    )
    states: list[Any] = []
    records = run(CONFIG, states)
    assert [r.item_id for r in records if isinstance(r, Item)] == ["1", "2", "3"]
    assert [r.event_id for r in records if isinstance(r, Interaction)] == ["wc:723:311", "wc:723:313"]
    assert len(states) == 3
    assert states[-1].state["products"]["next_since"] == "2024-06-01T08:00:00"
    assert states[-1].state["orders"]["next_since"] == "2024-05-20T00:00:00"


@responses.activate
def test_backfill_waits_out_a_429_then_continues() -> None:
    responses.get(f"{API}/products", status=429, headers={"Retry-After": "7"}, json={"code": "too_many_requests"})
    responses.get(f"{API}/products", json=[product(1)], headers={"X-WP-TotalPages": "1"})
    responses.get(f"{API}/orders", json=[], headers={"X-WP-TotalPages": "0"})
    sleeps: list[float] = []
    assert [r.item_id for r in run(CONFIG, sleeps=sleeps)] == ["1"]
    assert sleeps == [7.0]


@responses.activate
def test_backfill_gives_up_after_the_retries_and_resumes_from_its_checkpoint() -> None:
    pages = {"X-WP-TotalPages": "3"}
    responses.get(
        f"{API}/products",
        json=[product(1), product(2)],
        headers=pages,
        match=[matchers.query_param_matcher(page_params(1))],
    )
    responses.get(f"{API}/products", status=429, match=[matchers.query_param_matcher(page_params(2))])
    states: list[Any] = []
    with pytest.raises(PlatformApiError, match="429 after 1 retries"):
        run(CONFIG, states)
    saved = states[-1].state
    assert saved["products"] == {
        "running": True,
        "cursor": 2,
        "since": None,
        "seen": "2024-05-01T10:00:00",
        "began": None,  # the mock sends no Date header
    }

    responses.reset()
    responses.get(
        f"{API}/products",
        json=[product(3), product(4)],
        headers=pages,
        match=[matchers.query_param_matcher(page_params(2))],
    )
    responses.get(
        f"{API}/products", json=[product(5)], headers=pages, match=[matchers.query_param_matcher(page_params(3))]
    )
    responses.get(f"{API}/orders", json=[], headers={"X-WP-TotalPages": "0"})
    records = run({**CONFIG, "backfill": saved})
    assert [r.item_id for r in records] == ["3", "4", "5"]


@responses.activate
def test_catch_up_asks_for_changes_after_the_newest_seen_in_gmt() -> None:
    state = {
        "products": {"running": False, "next_since": "2024-06-01T08:00:00"},
        "orders": {"running": False, "next_since": "2024-05-20T00:00:00"},
    }
    for resource, since in (("products", "2024-06-01T08:00:00"), ("orders", "2024-05-20T00:00:00")):
        responses.get(
            f"{API}/{resource}",
            json=[],
            headers={"X-WP-TotalPages": "0"},
            match=[matchers.query_param_matcher(page_params(1, modified_after=since, dates_are_gmt="true"))],
        )
    assert run({**CONFIG, "backfill": state}) == []


def test_backfill_needs_https_and_keys() -> None:
    with pytest.raises(InvalidInput, match="consumer_secret"):
        WooCommerceAdapter.from_connection({"store_url": "https://x", "consumer_key": "ck"}).api_client()
    with pytest.raises(InvalidInput, match="https"):
        WooCommerceAdapter.from_connection({**CONFIG, "store_url": "http://example.com"}).api_client()
