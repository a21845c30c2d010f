"""The Magento / Adobe Commerce adapter: the contract with a token and with signatures, every hook,
the ``{"op": "success"}`` answer, the REST back-fill with searchCriteria paging."""

from __future__ import annotations

import base64
import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from responses import matchers

from adapters.actions import Checkpoint, ForgetShopper
from adapters.base import Delivery, PayloadError, SignatureError
from adapters.magento import MagentoAdapter
from adapters.magento.mapping import product_item
from adapters.magento.signature import sign
from adapters.magento.storefront import Storefront
from engine.errors import InvalidInput
from engine.records import ADD_TO_CART, PURCHASE, REMOVE_FROM_CART, WISHLIST, Alias, Erasure, Interaction, Item, User
from tests.adapters import bodies
from tests.adapters.contract import AdapterContract

SECRET = "magento-token"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
)

PERSONAL_DATA = (
    "roni_cost@example.com",
    "Veronica",
    "Costello",
    "Calder",
    "Honey Bluff",
    "(555) 229-3326",
    "1973-12-15",
)


def magento_delivery(body: bytes, *, topic: str | None = None, token: str | None = SECRET, **headers: str) -> Delivery:
    sent = {"Content-Type": "application/json", **headers}
    if topic:
        sent["X-Shelfwise-Topic"] = topic
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return Delivery.of(body, sent)


def parse(payload: Any, topic: str, received_at: float | None = None) -> list[Any]:
    delivery = magento_delivery(json.dumps(payload).encode(), topic=topic)
    return MagentoAdapter().parse(Delivery(delivery.body, delivery.headers, received_at))


class TestMagentoTokenContract(AdapterContract):
    """Signing off: each hook sends ``Authorization: Bearer <secret>``."""

    adapter_class = MagentoAdapter
    secret = SECRET
    sends_delivery_id = False
    signs_body = False
    unknown_topic = "observer.controller_action_predispatch"
    required_topics = (
        "observer.catalog_product_save_after",
        "observer.catalog_product_delete_after",
        "observer.sales_order_place_after",
        "plugin.magento.sales.api.order_management.place",
        "observer.checkout_cart_product_add_after",
        "observer.sales_quote_remove_item",
        "observer.wishlist_add_product",
        "observer.customer_save_after",
        "observer.customer_delete_after",
    )
    personal_data = PERSONAL_DATA

    def topic_bodies(self) -> dict[str, bytes]:
        return bodies.magento_topic_bodies()

    def make_delivery(
        self, body: bytes, *, topic: str, secret: str | None, delivery_id: str = "contract-delivery-1"
    ) -> Delivery:
        return magento_delivery(body, topic=topic, token=secret)


class TestMagentoSignatureContract(TestMagentoTokenContract):
    """Signing on: ``x-adobe-commerce-webhook-signature`` checked with the saved public key."""

    signs_body = True

    def connection_config(self) -> dict[str, Any]:
        return {"public_key": PUBLIC_PEM}

    def make_delivery(
        self, body: bytes, *, topic: str, secret: str | None, delivery_id: str = "contract-delivery-1"
    ) -> Delivery:
        headers = {}
        if secret is not None:
            headers["x-adobe-commerce-webhook-signature"] = sign(body, KEY if secret == self.secret else OTHER_KEY)
        return magento_delivery(body, topic=topic, token=None, **headers)


# --------------------------------------------------------------------- security and answers
def test_signature_follows_adobes_sample_rsa_sha256_over_base64_body() -> None:
    body = bodies.magento_topic_bodies()["observer.catalog_product_save_after"]
    signature = sign(body, KEY)
    # Adobe's sample: createVerify('SHA256').update(base64(body)).verify(publicKey, signature, 'base64')
    KEY.public_key().verify(base64.b64decode(signature), base64.b64encode(body), padding.PKCS1v15(), hashes.SHA256())


def test_signature_that_is_not_base64_is_rejected_not_crashed() -> None:
    adapter = MagentoAdapter.from_connection({"public_key": PUBLIC_PEM})
    delivery = magento_delivery(b"{}", token=None, **{"x-adobe-commerce-webhook-signature": "***"})
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(delivery, SECRET)


def test_with_signing_on_a_bearer_token_alone_is_not_enough() -> None:
    adapter = MagentoAdapter.from_connection({"public_key": PUBLIC_PEM})
    with pytest.raises(SignatureError, match="signing is on"):
        adapter.verify(magento_delivery(b"{}", token=SECRET), SECRET)


def test_a_public_key_that_is_not_pem_is_refused_when_connecting() -> None:
    with pytest.raises(InvalidInput, match="not a PEM public key"):
        MagentoAdapter.from_connection({"public_key": "not a key"})


def test_every_accepted_delivery_is_answered_op_success() -> None:
    ack = MagentoAdapter().acknowledgement(magento_delivery(b"{}", topic="observer.customer_save_after"))
    assert (ack.status, ack.body) == (200, {"op": "success"})


def test_observer_payload_without_the_topic_header_is_known_by_its_event_name() -> None:
    body = bodies.magento_topic_bodies()["observer.customer_save_after"]
    delivery = magento_delivery(body)
    assert MagentoAdapter().topic(delivery) == "observer.customer_save_after"
    assert MagentoAdapter().parse(delivery) == [User("5", {"CUSTOMER_GROUP": "1"})]


# --------------------------------------------------------------------- products
def test_observer_product_data_becomes_an_item() -> None:
    body = json.loads(bodies.magento_topic_bodies()["observer.catalog_product_save_after"])
    (item,) = parse(body, "observer.catalog_product_save_after")
    assert item == Item(
        item_id="2079",
        properties={
            "TITLE": "Champ Tee Small",
            "PRODUCT_DESCRIPTION": "The Champ Tee keeps you cool and dry while you do your thing. Let everyone know "
            "who you are by adding your name on the back for only $10.",
            "CATEGORIES": "11|12|16",
            "PRICE": 25.0,
            "STOCK": 10,
            "AVAILABILITY": "in_stock",
            "STATUS": "ACTIVE",
            "VISIBILITY": "CATALOG_SEARCH",
            "PRODUCT_TYPE": "SIMPLE",
            # url_key + the default suffix; no storefront configured: a path on the store's site
            "URL": "/champ-tee-small.html",
        },
        creation_timestamp=datetime(2017, 11, 29, 20, 40, 7, tzinfo=UTC).timestamp(),
    )


GALLERY_ENTRY = {
    "id": 3417,
    "media_type": "image",
    "label": "Champ Tee front",
    "position": 1,
    "disabled": False,
    "types": ["image", "small_image", "thumbnail"],
    "file": "/m/s/ms-champ-front.jpg",
}


def test_connected_storefront_gives_the_page_and_the_main_picture() -> None:
    body = json.loads(bodies.magento_topic_bodies()["observer.catalog_product_save_after"])
    body["data"]["product"]["image"] = "/m/s/ms-champ-front.jpg"  # the model's "image" role, flat
    config = {"store_url": "https://www.shop.example/", "url_suffix": "/", "media_url": "https://cdn.shop.example/p"}
    delivery = magento_delivery(json.dumps(body).encode(), topic="observer.catalog_product_save_after")
    (item,) = MagentoAdapter.from_connection(config).parse(delivery)
    assert item.properties["URL"] == "https://www.shop.example/champ-tee-small/"
    assert item.properties["IMAGE_URL"] == "https://cdn.shop.example/p/m/s/ms-champ-front.jpg"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"media_gallery_entries": [GALLERY_ENTRY]}, "/m/s/ms-champ-front.jpg"),
        (
            {
                "media_gallery_entries": [
                    dict(GALLERY_ENTRY, file="/a/off.jpg", position=0, disabled=True),
                    dict(GALLERY_ENTRY, file="/b/side.jpg", position=2, types=[]),
                    dict(GALLERY_ENTRY, file="/c/video.jpg", position=0, media_type="external-video"),
                    dict(GALLERY_ENTRY, file="/d/back.jpg", position=1, types=[]),
                ]
            },
            "/d/back.jpg",
        ),
        (
            {
                "media_gallery_entries": [dict(GALLERY_ENTRY, types=["thumbnail"])],
                "custom_attributes": [{"attribute_code": "image", "value": "/r/role.jpg"}],
            },
            "/r/role.jpg",
        ),
        ({"custom_attributes": [{"attribute_code": "image", "value": "no_selection"}]}, None),
    ],
    ids=["image-role-in-gallery", "first-enabled-picture-by-position", "image-role-attribute-first", "no-selection"],
)
def test_main_picture_is_the_image_role_else_the_first_gallery_picture(
    changes: dict[str, Any], expected: str | None
) -> None:
    rest = dict(bodies.shared_json("magento_product.json"), **changes)
    item = product_item(rest, Storefront.from_config({"base_url": "https://shop.example/rest/default"}))
    media = "https://shop.example/media/catalog/product"
    assert item.properties.get("IMAGE_URL") == (f"{media}{expected}" if expected else None)


def test_rest_product_reads_custom_attributes_and_stock_item() -> None:
    item = product_item(bodies.shared_json("magento_product.json"))
    assert item.item_id == "2079"
    assert item.properties["CATEGORIES"] == "11|12|16"
    assert (item.properties["STOCK"], item.properties["AVAILABILITY"]) == (10, "in_stock")
    assert item.properties["VISIBILITY"] == "NOT_VISIBLE_INDIVIDUALLY"  # a configurable's variant
    assert item.properties["PRODUCT_DESCRIPTION"].startswith("The Champ Tee")
    # a variant "not visible individually" has no page of its own; the documented one has no pictures
    assert "URL" not in item.properties and "IMAGE_URL" not in item.properties


def test_unknown_product_type_is_logged_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        item = product_item(dict(bodies.shared_json("magento_product.json"), type_id="subscription"))
    assert "PRODUCT_TYPE" not in item.properties and "unknown product type 'subscription'" in caplog.text


def test_deleted_product_is_erased() -> None:
    body = {"eventName": "catalog_product_delete_after", "data": {"product": {"entity_id": "2079"}}}
    assert parse(body, "observer.catalog_product_delete_after") == [Erasure(item_id="2079")]


# --------------------------------------------------------------------- orders
def test_placed_order_gives_one_purchase_per_product_with_configurables_counted_once() -> None:
    records = parse({"order": bodies.MAGENTO_ORDER}, "plugin.magento.sales.api.order_management.place")
    placed = datetime(2024, 3, 1, 12, tzinfo=UTC).timestamp()
    assert records == [
        Alias(anonymous_id="quote-31", user_id="5"),
        Interaction("5", "2079", PURCHASE, placed, 50.0, "quote-31", "mage:000000012:2079", context={}),
        Interaction("5", "1812", PURCHASE, placed, 52.0, "quote-31", "mage:000000012:1812", context={}),
    ]


def test_observer_and_plugin_hooks_of_one_order_share_event_ids() -> None:
    from_observer = parse(
        {"eventName": "sales_order_place_after", "data": {"order": bodies.MAGENTO_ORDER}},
        "observer.sales_order_place_after",
    )
    assert from_observer == parse({"order": bodies.MAGENTO_ORDER}, "plugin.sales.api.order_management.place")


def test_guest_order_is_known_by_its_quote() -> None:
    order = dict(copy.deepcopy(bodies.MAGENTO_ORDER), customer_is_guest=1, customer_id=None)
    records = parse({"order": order}, "observer.sales_order_place_after")
    assert {r.user_id for r in records} == {"quote-31"} and not [r for r in records if isinstance(r, Alias)]


def test_order_without_a_time_takes_the_delivery_time_and_cancelled_ones_count_nothing() -> None:
    order = dict(copy.deepcopy(bodies.MAGENTO_ORDER), created_at=None)
    records = parse({"order": order}, "observer.sales_order_place_after", received_at=1_700_000_000.0)
    assert {r.timestamp for r in records if isinstance(r, Interaction)} == {1_700_000_000.0}
    with pytest.raises(PayloadError, match="created_at is missing"):
        parse({"order": order}, "observer.sales_order_place_after")
    assert parse({"order": dict(order, state="canceled")}, "observer.sales_order_place_after") == []


# --------------------------------------------------------------------- carts, wishlists, customers
def test_cart_add_and_remove_and_wishlist_become_interactions() -> None:
    hooks = bodies.magento_topic_bodies()
    (added,) = MagentoAdapter().parse(
        magento_delivery(
            hooks["observer.checkout_cart_product_add_after"], topic="observer.checkout_cart_product_add_after"
        )
    )
    assert (added.user_id, added.item_id, added.event_type, added.event_value, added.event_id) == (
        "quote-31",
        "2079",
        ADD_TO_CART,
        2.0,
        "mage-cart:31:2079:add",
    )
    removal = magento_delivery(hooks["observer.sales_quote_remove_item"], topic="observer.sales_quote_remove_item")
    (removed,) = MagentoAdapter().parse(Delivery(removal.body, removal.headers, 1_709_300_000.0))
    assert (removed.event_type, removed.timestamp, removed.event_id) == (
        REMOVE_FROM_CART,
        1_709_300_000.0,
        "mage-cart:31:2079:remove:1709300000",
    )
    (saved,) = MagentoAdapter().parse(
        magento_delivery(hooks["observer.wishlist_add_product"], topic="observer.wishlist_add_product")
    )
    assert (saved.user_id, saved.item_id, saved.event_type) == ("5", "2079", WISHLIST)


def test_deleted_customer_is_forgotten() -> None:
    body = {"eventName": "customer_delete_after", "data": {"customer": bodies.MAGENTO_CUSTOMER}}
    assert parse(body, "observer.customer_delete_after") == [ForgetShopper(user_id="5")]


def test_body_without_the_expected_entity_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="no product or data_object"):
        parse({"eventName": "catalog_product_save_after", "data": {}}, "observer.catalog_product_save_after")


# --------------------------------------------------------------------- back-fill through REST
API = "https://shop.example/rest/default"
CONFIG = {"base_url": API, "access_token": "tok-1", "page_size": 2}


def criteria(page: int, **filters: str) -> dict[str, str]:
    params = {
        "searchCriteria[pageSize]": "2",
        "searchCriteria[currentPage]": str(page),
        "searchCriteria[sortOrders][0][field]": "entity_id",
        "searchCriteria[sortOrders][0][direction]": "ASC",
    }
    if "since" in filters:
        params.update(
            {
                "searchCriteria[filter_groups][0][filters][0][field]": "updated_at",
                "searchCriteria[filter_groups][0][filters][0][value]": filters["since"],
                "searchCriteria[filter_groups][0][filters][0][condition_type]": "gteq",
            }
        )
    return params


def product(n: int, updated: str = "2024-03-01 10:00:00") -> dict[str, Any]:
    return dict(bodies.shared_json("magento_product.json"), id=n, updated_at=updated)


def run(config: dict[str, Any], states: list[Any] | None = None, sleeps: list[float] | None = None) -> list[Any]:
    adapter = MagentoAdapter.from_connection(config)
    records: list[Any] = []
    states = states if states is not None else []
    client = adapter.api_client(sleep=(sleeps if sleeps is not None else []).append, max_retries=1)
    for item in adapter.backfill(client):
        (states if isinstance(item, Checkpoint) else records).append(item)
    return records


@responses.activate
def test_backfill_pages_with_search_criteria_until_total_count() -> None:
    auth = matchers.header_matcher({"Authorization": "Bearer tok-1"})
    responses.get(
        f"{API}/V1/products",
        json={"items": [product(1), product(2)], "total_count": 3},
        match=[matchers.query_param_matcher(criteria(1)), auth],
    )
    responses.get(
        f"{API}/V1/products",
        json={"items": [product(3, "2024-03-05 08:00:00")], "total_count": 3},
        match=[matchers.query_param_matcher(criteria(2))],
    )
    responses.get(
        f"{API}/V1/orders",
        json={"items": [bodies.MAGENTO_ORDER], "total_count": 1},
        match=[matchers.query_param_matcher(criteria(1))],
    )
    states: list[Any] = []
    records = run(CONFIG, states)
    assert [r.item_id for r in records if isinstance(r, Item)] == ["1", "2", "3"]
    assert [r.event_id for r in records if isinstance(r, Interaction)] == ["mage:000000012:2079", "mage:000000012:1812"]
    assert states[-1].state["products"]["next_since"] == "2024-03-05 08:00:00"
    assert states[-1].state["orders"]["next_since"] == "2024-03-01 12:00:05"


@responses.activate
def test_backfill_retries_a_429_and_resumes_after_a_failure() -> None:
    responses.get(
        f"{API}/V1/products",
        status=429,
        headers={"Retry-After": "3"},
        match=[matchers.query_param_matcher(criteria(1))],
    )
    responses.get(
        f"{API}/V1/products",
        json={"items": [product(1), product(2)], "total_count": 4},
        match=[matchers.query_param_matcher(criteria(1))],
    )
    responses.get(f"{API}/V1/products", status=500, match=[matchers.query_param_matcher(criteria(2))])
    states: list[Any] = []
    sleeps: list[float] = []
    with pytest.raises(Exception, match="500"):
        run(CONFIG, states, sleeps)
    assert sleeps[0] == 3.0
    saved = states[-1].state
    assert saved["products"]["cursor"] == 2

    responses.reset()
    responses.get(
        f"{API}/V1/products",
        json={"items": [product(3), product(4)], "total_count": 4},
        match=[matchers.query_param_matcher(criteria(2))],
    )
    responses.get(f"{API}/V1/orders", json={"items": [], "total_count": 0})
    assert [r.item_id for r in run({**CONFIG, "backfill": saved})] == ["3", "4"]


@responses.activate
def test_catch_up_filters_updated_at_from_the_newest_seen() -> None:
    state = {
        "products": {"running": False, "next_since": "2024-03-05 08:00:00"},
        "orders": {"running": False, "next_since": "2024-03-01 12:00:05"},
    }
    responses.get(
        f"{API}/V1/products",
        json={"items": [], "total_count": 0},
        match=[matchers.query_param_matcher(criteria(1, since="2024-03-05 08:00:00"))],
    )
    responses.get(
        f"{API}/V1/orders",
        json={"items": [], "total_count": 0},
        match=[matchers.query_param_matcher(criteria(1, since="2024-03-01 12:00:05"))],
    )
    assert run({**CONFIG, "backfill": state}) == []


@responses.activate
def test_backfill_places_products_on_the_store_the_rest_url_names() -> None:
    visible = dict(product(1), visibility=4, media_gallery_entries=[GALLERY_ENTRY])
    responses.get(f"{API}/V1/products", json={"items": [visible, product(2)], "total_count": 2})
    responses.get(f"{API}/V1/orders", json={"items": [], "total_count": 0})
    items = [r for r in run(CONFIG) if isinstance(r, Item)]
    assert [(i.properties.get("URL"), i.properties.get("IMAGE_URL")) for i in items] == [
        (
            "https://shop.example/champ-tee-small.html",  # base_url without /rest/default, default suffix
            "https://shop.example/media/catalog/product/m/s/ms-champ-front.jpg",
        ),
        (None, None),  # not visible individually, no pictures
    ]


@pytest.mark.parametrize("key", ["store_url", "media_url"])
def test_a_storefront_address_that_is_not_a_url_is_refused_when_connecting(key: str) -> None:
    with pytest.raises(InvalidInput, match=f"Magento {key} 'shop.example' is not an http"):
        MagentoAdapter.from_connection({key: "shop.example"})


def test_backfill_needs_a_base_url_and_a_token() -> None:
    with pytest.raises(InvalidInput, match="base_url or access_token"):
        MagentoAdapter.from_connection({"base_url": API}).api_client()
