"""The Shopify adapter: the shared contract, every topic parsed field by field, the Admin API back-fill."""

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

from adapters.actions import Checkpoint, DisconnectStore, ExportShopper, ForgetShopper
from adapters.base import CaseInsensitiveHeaders, Delivery, PayloadError, SignatureError
from adapters.http import PlatformApiError
from adapters.shopify import ShopifyAdapter, sign
from adapters.shopify.backfill import call_limit_pause
from engine.errors import InvalidInput
from engine.records import ADD_TO_CART, PURCHASE, Alias, Erasure, Interaction, Item, User
from tests.adapters import bodies
from tests.adapters.contract import AdapterContract

SECRET = "s3cret"


def order_body() -> bytes:
    """The real orders/create body, byte for byte as stored (never re-serialised)."""
    return bodies.shared("shopify_orders_create.json")


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
    required_topics = (
        "orders/create",
        "orders/paid",
        "products/create",
        "products/update",
        "products/delete",
        "customers/create",
        "customers/update",
        "carts/create",
        "carts/update",
        "checkouts/create",
        "checkouts/update",
        "app/uninstalled",
        "customers/data_request",
        "customers/redact",
        "shop/redact",
    )
    personal_data = (
        "bob.norman@hostmail.com",
        "bob.norman@mail.example.com",
        "john.smith@mail.example.com",
        "super@supertoys.example.com",
        "Norman",
        "Smithers",
        "Chestnut Street 92",
        "Louisville",
        "555-625-1199",
        "+16136120707",
        "40202",
        "Happy Birthday",
        "Likes gift wrap",
        "Mary Major",
        "123 Elm St.",
        "190 MacLaren Street",
        "Léon",
    )

    def topic_bodies(self) -> dict[str, bytes]:
        return bodies.shopify_topic_bodies()

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
    assert users == [User(user_id="207119551", properties={"ORDERS_COUNT": 0, "STATE": "DISABLED"})]


def test_a_customers_order_aliases_the_cart_token_to_the_customer() -> None:
    records = ShopifyAdapter().parse(shopify_delivery(order_body()))
    assert records[0] == Alias(anonymous_id="68778783ad298f1c80c3bafcddeea02f", user_id="207119551")


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


@pytest.mark.parametrize("customer", [None, {}, {"email": "bob.norman@hostmail.com"}], ids=["null", "empty", "no-id"])
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


# --------------------------------------------------------------------- products
def test_product_becomes_an_item_with_variants_rolled_up() -> None:
    (item,) = parse(bodies.SHOPIFY_PRODUCT, "products/update")
    assert item == Item(
        item_id="632910392",
        properties={
            "TITLE": "IPod Nano - 8GB",
            "PRODUCT_DESCRIPTION": "It's the small iPod with one very big idea: Video. Now the world's most popular "
            "music player & more.",
            "CATEGORY_L1": "Cult Products",
            "BRAND": "Apple",
            "TAGS": "Emotive|Flash Memory|MP3|Music",
            "PRICE": 189.0,  # the cheapest variant: "from $189"
            "STOCK": 30,  # both variants' inventory
            "AVAILABILITY": "in_stock",
            "STATUS": "ACTIVE",
            # The storefront page, by handle, on the shop's domain (the delivery's header here).
            "URL": "https://t.myshopify.com/products/ipod-nano",
            "IMAGE_URL": "https://cdn.shopify.com/ipod.png",
        },
        creation_timestamp=datetime(2024, 5, 1, 15, tzinfo=UTC).timestamp(),
    )


def test_product_pages_are_placed_on_the_storefront_address() -> None:
    body = json.dumps(bodies.SHOPIFY_PRODUCT).encode()
    delivery = shopify_delivery(body, topic="products/update")
    (own,) = ShopifyAdapter({"store_url": "https://shop.example/"}).parse(delivery)
    assert own.properties["URL"] == "https://shop.example/products/ipod-nano"
    (configured,) = ShopifyAdapter({"shop_domain": "mine.myshopify.com"}).parse(delivery)
    assert configured.properties["URL"] == "https://mine.myshopify.com/products/ipod-nano"
    with pytest.raises(InvalidInput, match=r"Shopify store_url 'shop\.example' is not an http"):
        ShopifyAdapter.from_connection({"store_url": "shop.example"})


def test_sold_out_product_is_backorder_when_a_variant_may_be_oversold() -> None:
    product = copy.deepcopy(bodies.SHOPIFY_PRODUCT)
    for variant in product["variants"]:
        variant["inventory_quantity"] = 0
    assert parse(product, "products/update")[0].properties["AVAILABILITY"] == "backorder"
    product["variants"][0]["inventory_policy"] = "deny"
    assert parse(product, "products/update")[0].properties["AVAILABILITY"] == "out_of_stock"


def test_unknown_product_status_is_logged_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    product = dict(bodies.SHOPIFY_PRODUCT, status="sparkly")
    with caplog.at_level(logging.INFO):
        (item,) = parse(product, "products/create")
    assert "STATUS" not in item.properties and item.properties["TITLE"] == "IPod Nano - 8GB"
    assert "unknown product status 'sparkly'" in caplog.text


def test_product_delete_erases_the_item() -> None:
    assert parse({"id": 788032119674292922}, "products/delete") == [Erasure(item_id="788032119674292922")]


# --------------------------------------------------------------------- customers
def test_customer_becomes_a_user_with_an_allow_list_of_attributes() -> None:
    assert parse(bodies.SHOPIFY_CUSTOMER, "customers/update") == [
        User(user_id="207119551", properties={"ORDERS_COUNT": 1, "STATE": "DISABLED"})
    ]


# --------------------------------------------------------------------- carts and checkouts
def test_cart_gives_one_add_to_cart_per_product_with_the_quantity() -> None:
    token = "eeafa272cebfd4b22385bc4b645e762c"
    assert parse(bodies.SHOPIFY_CART, "carts/update") == [
        Interaction(
            user_id=token,
            item_id="788032119674292922",  # two variants of one product: one event, quantities summed
            event_type=ADD_TO_CART,
            timestamp=datetime(2022, 1, 1, tzinfo=UTC).timestamp(),
            event_value=4.0,
            session_id=token,
            event_id=f"cart:{token}:788032119674292922",
            context={},
        )
    ]


def test_checkout_aliases_its_cart_and_shares_the_carts_event_ids() -> None:
    records = parse(bodies.SHOPIFY_CHECKOUT, "checkouts/create")
    token = "eeafa272cebfd4b22385bc4b645e762c"
    assert records[0] == Alias(anonymous_id=token, user_id="603851970716743426")
    (event,) = [r for r in records if isinstance(r, Interaction)]
    assert (event.user_id, event.event_type, event.event_id) == (
        "603851970716743426",
        ADD_TO_CART,
        f"cart:{token}:788032119674292922",
    )
    assert [r for r in records if isinstance(r, User)] == [
        User("603851970716743426", {"ORDERS_COUNT": 0, "STATE": "DISABLED"})
    ]


def test_guest_checkout_without_cart_token_is_known_by_its_checkout_token() -> None:
    checkout = dict(bodies.SHOPIFY_CHECKOUT, cart_token=None, customer=None)
    (event,) = parse(checkout, "checkouts/update")
    assert (event.user_id, event.event_id) == ("123123123", "checkout:123123123:788032119674292922")


# --------------------------------------------------------------------- privacy and lifecycle
def test_customers_redact_asks_to_forget_the_customer_and_their_orders() -> None:
    assert parse(bodies.SHOPIFY_CUSTOMERS_REDACT, "customers/redact") == [
        ForgetShopper(
            user_id="207119551",
            event_id_prefixes=("450789469:", "280263:", "220458:"),
            identifiers=("bob.norman@hostmail.com", "555-625-1199"),
        )
    ]


def test_customers_redact_with_only_an_email_still_erases_by_email() -> None:
    payload = {"shop_id": 1, "customer": {"email": "only@mail.example.com"}, "orders_to_redact": []}
    assert parse(payload, "customers/redact") == [ForgetShopper(None, (), ("only@mail.example.com",))]
    with pytest.raises(PayloadError, match="names no customer"):
        parse({"shop_id": 1, "customer": {}, "orders_to_redact": []}, "customers/redact")


def test_data_request_asks_for_an_export() -> None:
    assert parse(bodies.SHOPIFY_DATA_REQUEST, "customers/data_request") == [
        ExportShopper(user_id="207119551", request_id="9999", event_id_prefixes=("450789469:", "280263:"))
    ]


def test_shop_redact_erases_and_uninstall_disables() -> None:
    assert parse(bodies.SHOPIFY_SHOP_REDACT, "shop/redact") == [DisconnectStore(erase=True)]
    assert parse(bodies.SHOPIFY_SHOP, "app/uninstalled") == [DisconnectStore(erase=False)]


# --------------------------------------------------------------------- back-fill through the Admin API
API = "https://shop1.myshopify.com/admin/api/2024-07"
CONFIG = {"shop_domain": "shop1.myshopify.com", "access_token": "shpat_test"}


def product(n: int, updated: str = "2024-05-02T11:00:00-04:00") -> dict[str, Any]:
    return dict(copy.deepcopy(bodies.SHOPIFY_PRODUCT), id=n, updated_at=updated)


def api_order(n: int, updated: str = "2024-05-03T09:00:00-04:00") -> dict[str, Any]:
    return dict(order(), id=n, updated_at=updated)


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="next", <{API}/products.json?page_info=prev>; rel="previous"'}


def run(
    config: dict[str, Any], sleeps: list[float] | None = None, states: list[dict[str, Any]] | None = None
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Run a back-fill to the end (or the first error): (records, checkpoint states)."""
    adapter = ShopifyAdapter.from_connection(config)
    client = adapter.api_client(sleep=(sleeps if sleeps is not None else []).append, max_retries=2)
    records: list[Any] = []
    states = states if states is not None else []
    for item in adapter.backfill(client):
        if isinstance(item, Checkpoint):
            states.append(item.state)
        else:
            records.append(item)
    return records, states


@responses.activate
def test_backfill_follows_the_link_header_through_products_then_orders() -> None:
    next_url = f"{API}/products.json?limit=250&page_info=eyJsYXN0X2lkIjoxfQ"
    responses.get(
        f"{API}/products.json",
        json={"products": [product(1), product(2)]},
        headers={**link(next_url), "Date": "Fri, 31 May 2024 12:00:00 GMT"},
        match=[
            matchers.query_param_matcher({"limit": "250"}),
            matchers.header_matcher({"X-Shopify-Access-Token": "shpat_test"}),
        ],
    )
    # Changed while the pass was under way (after Shopify's clock said the pass began).
    responses.get(next_url, json={"products": [product(3, "2024-06-01T00:00:00Z")]})
    responses.get(
        f"{API}/orders.json",
        json={"orders": [api_order(450789469)]},
        match=[matchers.query_param_matcher({"limit": "250", "status": "any"})],
    )
    records, states = run(CONFIG)
    assert [r.item_id for r in records if isinstance(r, Item)] == ["1", "2", "3"]
    assert len([r for r in records if isinstance(r, Interaction) and r.event_type == PURCHASE]) == 3
    assert len(states) == 3  # a checkpoint after every page
    final = states[-1]
    assert final["products"] == {
        "running": False,
        "cursor": None,
        "since": None,
        "seen": "2024-06-01T00:00:00Z",
        "began": "2024-05-31T12:00:00+00:00",
        # The earlier of the two: what changed after the pass began is read again next time.
        "next_since": "2024-05-31T12:00:00+00:00",
    }
    assert final["orders"]["next_since"] == "2024-05-03T09:00:00-04:00"  # no Date header: the newest seen


@responses.activate
def test_backfill_waits_out_429_with_retry_after() -> None:
    responses.get(f"{API}/products.json", status=429, headers={"Retry-After": "2.0"}, json={"errors": "Exceeded"})
    responses.get(f"{API}/products.json", json={"products": [product(1)]})
    responses.get(f"{API}/orders.json", json={"orders": []})
    sleeps: list[float] = []
    records, _ = run(CONFIG, sleeps)
    assert sleeps == [2.0]
    assert [r.item_id for r in records] == ["1"]


@responses.activate
def test_backfill_slows_down_when_the_call_limit_bucket_is_nearly_full() -> None:
    responses.get(
        f"{API}/products.json",
        json={"products": [product(1)]},
        headers={"X-Shopify-Shop-Api-Call-Limit": "39/40"},
    )
    responses.get(f"{API}/orders.json", json={"orders": []}, headers={"X-Shopify-Shop-Api-Call-Limit": "10/40"})
    sleeps: list[float] = []
    run(CONFIG, sleeps)
    assert sleeps == [2.5]  # (39 + 1 - 35) calls over the headroom, drained at 2 calls/s


def test_call_limit_pause_is_zero_with_room_or_without_the_header() -> None:
    assert call_limit_pause(CaseInsensitiveHeaders({"X-Shopify-Shop-Api-Call-Limit": "3/40"})) == 0
    assert call_limit_pause(CaseInsensitiveHeaders({})) == 0
    assert (
        call_limit_pause(CaseInsensitiveHeaders({"X-Shopify-Shop-Api-Call-Limit": "80/80"}), leak_per_second=4) == 1.5
    )


@responses.activate
def test_backfill_resumes_at_the_page_where_it_stopped() -> None:
    next_url = f"{API}/products.json?limit=250&page_info=page2"
    responses.get(f"{API}/products.json", json={"products": [product(1)]}, headers=link(next_url))
    responses.get(next_url, status=503)
    states: list[dict[str, Any]] = []
    with pytest.raises(PlatformApiError, match="503"):
        run(CONFIG, states=states)
    # The run died on page 2; the last checkpoint says where to continue.
    saved = states[-1]
    assert saved["products"]["running"] and saved["products"]["cursor"] == next_url

    responses.reset()
    responses.get(next_url, json={"products": [product(2)]})
    responses.get(f"{API}/orders.json", json={"orders": []})
    records, states = run({**CONFIG, "backfill": saved})
    assert [r.item_id for r in records] == ["2"]  # page 1 is not read again
    assert responses.calls[0].request.url == next_url


@responses.activate
def test_a_finished_backfill_catches_up_from_the_newest_change_seen() -> None:
    state = {
        "products": {"running": False, "next_since": "2024-06-01T00:00:00Z"},
        "orders": {"running": False, "next_since": "2024-05-03T09:00:00-04:00"},
    }
    responses.get(
        f"{API}/products.json",
        json={"products": []},
        match=[matchers.query_param_matcher({"limit": "250", "updated_at_min": "2024-06-01T00:00:00Z"})],
    )
    responses.get(
        f"{API}/orders.json",
        json={"orders": []},
        match=[
            matchers.query_param_matcher(
                {"limit": "250", "status": "any", "updated_at_min": "2024-05-03T09:00:00-04:00"}
            )
        ],
    )
    records, states = run({**CONFIG, "backfill": state})
    assert records == []
    assert states[-1]["products"]["next_since"] == "2024-06-01T00:00:00Z"  # nothing newer: the mark stays


@responses.activate
def test_since_starts_a_fresh_pass_from_that_time() -> None:
    responses.get(
        f"{API}/products.json",
        json={"products": []},
        match=[matchers.query_param_matcher({"limit": "250", "updated_at_min": "2024-01-01T00:00:00+00:00"})],
    )
    responses.get(f"{API}/orders.json", json={"orders": []})
    state = {"products": {"running": True, "cursor": f"{API}/products.json?page_info=old", "since": None}}
    since = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    run({**CONFIG, "backfill": state, "backfill_since": since})


@responses.activate
def test_a_malformed_resource_is_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    responses.get(f"{API}/products.json", json={"products": [{"title": "no id"}, product(7), "junk"]})
    responses.get(f"{API}/orders.json", json={"orders": []})
    with caplog.at_level(logging.WARNING):
        records, _ = run(CONFIG)
    assert [r.item_id for r in records] == ["7"]
    assert "skipped" in caplog.text


def test_backfill_needs_a_token_and_a_shop() -> None:
    with pytest.raises(InvalidInput, match="access token"):
        ShopifyAdapter.from_connection({"shop_domain": "x.myshopify.com"}).api_client()
    with pytest.raises(InvalidInput, match="shop domain"):
        ShopifyAdapter.from_connection({"access_token": "t"}).api_client()
