"""The Segment adapter (Shelfwise as a Segment destination): the shared contract, the e-commerce
spec v2 table, identify/alias joining anonymous history, batches, and the intake through a real
server. Track bodies are the payload files (segment-docs examples); the others follow the Spec.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.actions import ForgetShopper
from adapters.base import Delivery, PayloadError, SignatureError
from adapters.segment import SegmentAdapter, sign
from adapters.segment.spec import CART_VIEW, CHECKOUT
from engine.errors import InvalidInput
from engine.records import ADD_TO_CART, CLICK, PURCHASE, REMOVE_FROM_CART, VIEW, WISHLIST, Alias, Interaction, User
from engine.storage.store import Store
from tests.adapters.contract import AdapterContract
from tests.adapters.live import live_intake, settled

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "payloads"
SECRET = "segment-shared-secret"
WHEN = datetime(2015, 12, 10, 4, 8, 31, 905000, tzinfo=UTC).timestamp()
PERSONAL_DATA = ("peter@initech.example", "Peter", "Gibbons", "555-0199", "Main Street 1", "8.8.8.8", "iPhone OS")


def payload(name: str) -> bytes:
    path = PAYLOADS / name
    if not path.is_file():
        pytest.skip(f"payload {path} is missing")
    return path.read_bytes()


def order_completed() -> dict[str, Any]:
    return json.loads(payload("segment_order_completed.json"))


def product_viewed() -> dict[str, Any]:
    return json.loads(payload("segment_product_viewed.json"))


def envelope(kind: str, message_id: str, **fields: Any) -> dict[str, Any]:
    """The common fields every Segment call carries (common.md), as analytics.js sends them."""
    return {
        "anonymousId": "507f191e810c19729de860ea",
        "context": {"ip": "8.8.8.8", "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 9_1 like Mac OS X)"},
        "integrations": {"All": True},
        "messageId": message_id,
        "receivedAt": "2015-12-10T04:08:31.909Z",
        "sentAt": "2015-12-10T04:08:31.581Z",
        "timestamp": "2015-12-10T04:08:31.905Z",
        "type": kind,
        "userId": "97980cfea0067",
        "version": 2,
        **fields,
    }


def identify(**fields: Any) -> dict[str, Any]:
    """A server-side identify: userId only (server libraries have no anonymousId), with personal traits."""
    body = envelope(
        "identify",
        "ident-1",
        traits={
            "email": "peter@initech.example",
            "firstName": "Peter",
            "lastName": "Gibbons",
            "phone": "555-0199",
            "address": {"street": "Main Street 1", "city": "Austin"},
            "birthday": "1970-02-19",
            "plan": "premium",
            "membershipTier": "gold",
            "logins": 5,
        },
        **fields,
    )
    if "anonymousId" not in fields:
        del body["anonymousId"]
    return body


def page(properties: dict[str, Any], kind: str = "page") -> dict[str, Any]:
    return envelope(kind, f"{kind}-1", name="Monopoly", properties=properties)


def encode(message: Any) -> bytes:
    return json.dumps(message).encode()


def segment_delivery(body: bytes, *, secret: str | None = SECRET) -> Delivery:
    headers = {"Content-Type": "application/json", "User-Agent": "Segment.io/1.0"}
    if secret is not None:
        headers["X-Signature"] = sign(body, secret)
    return Delivery.of(body, headers)


def parse(message: Any, config: dict[str, Any] | None = None) -> list[Any]:
    return SegmentAdapter.from_connection(config or {}).parse(segment_delivery(encode(message)))


class TestSegmentContract(AdapterContract):
    adapter_class = SegmentAdapter
    secret = SECRET
    unknown_topic = "contract-no-such-type"
    personal_data = PERSONAL_DATA
    required_topics = ("track", "identify", "page", "screen", "alias", "batch")

    def topic_bodies(self) -> dict[str, bytes]:
        return {
            "track": payload("segment_order_completed.json"),
            "page": encode(page({"product_id": "507f1f77bcf86cd799439011", "url": "https://shop.example/p/1"})),
            "screen": encode(page({"productId": "505bd76785ebb509fc183733"}, kind="screen")),
            "identify": encode(identify(anonymousId="507f191e810c19729de860ea")),
            "alias": encode(envelope("alias", "alias-1", previousId="507f191e810c19729de860ea")),
            "delete": encode({"type": "delete", "userId": "97980cfea0067", "messageId": "del-1"}),
            "batch": encode(
                {
                    "batch": [
                        page({"product_id": "507f1f77bcf86cd799439011"}),
                        envelope("track", "add-1", event="Product Added", properties={"product_id": "p-9", "price": 3}),
                        identify(),
                    ],
                    "context": {"library": {"name": "analytics-python"}},
                }
            ),
        }

    def make_delivery(
        self, body: bytes, *, topic: str, secret: str | None, delivery_id: str = "contract-delivery-1"
    ) -> Delivery:
        # Segment names the type and the messageId inside the body (a batch has neither).
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        if isinstance(message, dict) and topic != "batch":
            body = encode({**message, "type": topic, "messageId": delivery_id})
        return segment_delivery(body, secret=secret)

    def test_unknown_topic_with_an_unreadable_body_does_not_crash(self, adapter: SegmentAdapter) -> None:
        # The type is inside the body: an unreadable body has no topic and is a clear PayloadError
        # (kept by the intake as a failed, replayable delivery), not a crash.
        delivery = self.make_delivery(b"\x00garbage", topic=self.unknown_topic, secret=self.secret)
        assert adapter.topic(delivery) is None and adapter.delivery_id(delivery) is None
        with pytest.raises(PayloadError, match="not JSON"):
            adapter.parse(delivery)


# --------------------------------------------------------------------- signatures
def test_signer_matches_the_documented_recipe() -> None:
    body = payload("segment_order_completed.json")
    assert sign(body, SECRET) == hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()


def test_signature_is_over_the_raw_bytes_and_upper_case_hex_is_accepted() -> None:
    body = payload("segment_order_completed.json")
    delivery = segment_delivery(body)
    SegmentAdapter().verify(Delivery.of(body, {"x-signature": sign(body, SECRET).upper()}), SECRET)
    with pytest.raises(SignatureError, match="does not match"):
        SegmentAdapter().verify(Delivery(body=encode(json.loads(body)), headers=delivery.headers), SECRET)


# --------------------------------------------------------------------- track: the e-commerce spec
def test_order_completed_is_one_purchase_per_product_worth_price_times_quantity() -> None:
    assert parse(order_completed()) == [
        Interaction(
            "97980cfea0067",
            "507f1f77bcf86cd799439011",
            PURCHASE,
            WHEN,
            19.0,
            "507f191e810c19729de860ea",
            "022bb90c-bbac-11e4-8dfc-aa07a5b093db:0",
            context={},
        ),
        Interaction(
            "97980cfea0067",
            "505bd76785ebb509fc183733",
            PURCHASE,
            WHEN,
            6.0,  # 3 x 2
            "507f191e810c19729de860ea",
            "022bb90c-bbac-11e4-8dfc-aa07a5b093db:1",
            context={},
        ),
    ]


@pytest.mark.parametrize(
    ("event", "event_type"),
    [
        ("Product Viewed", VIEW),
        ("Product Clicked", CLICK),
        ("Product Added", ADD_TO_CART),
        ("Product Removed", REMOVE_FROM_CART),
        ("Product Added to Wishlist", WISHLIST),
        ("Wishlist Product Added to Cart", ADD_TO_CART),
        ("Viewed Product", VIEW),  # the v1 names still arrive from old integrations
        ("Added Product", ADD_TO_CART),
    ],
)
def test_single_product_events_map_through_the_table(event: str, event_type: str) -> None:
    message = product_viewed()
    message["event"] = event
    (interaction,) = parse(message)
    assert (interaction.item_id, interaction.event_type) == ("507f1f77bcf86cd799439011", event_type)
    assert interaction.event_value == 18.99 and interaction.event_id == "022bb90c-bbac-11e4-8dfc-aa07a5b093dc"
    assert interaction.user_id == "97980cfea0067" and interaction.timestamp == WHEN


@pytest.mark.parametrize(("event", "event_type"), [("Cart Viewed", CART_VIEW), ("Checkout Started", CHECKOUT)])
def test_list_events_give_one_interaction_per_product(event: str, event_type: str) -> None:
    message = order_completed()
    message["event"] = event
    records = parse(message)
    assert [(r.item_id, r.event_type, r.event_value) for r in records] == [
        ("507f1f77bcf86cd799439011", event_type, 19.0),
        ("505bd76785ebb509fc183733", event_type, 6.0),
    ]


@pytest.mark.parametrize("event", ["Products Searched", "Coupon Applied", "Signed Up", "Order Refunded"])
def test_events_without_a_product_or_outside_the_table_are_logged_and_skipped(
    event: str, caplog: pytest.LogCaptureFixture
) -> None:
    message = envelope("track", "m-1", event=event, properties={"query": "blue hotpants"})
    with caplog.at_level(logging.INFO):
        assert parse(message) == []
    assert repr(event) in caplog.text


def test_anonymous_shopper_is_known_by_the_anonymous_id() -> None:
    message = product_viewed()
    del message["userId"]
    (interaction,) = parse(message)
    assert interaction.user_id == interaction.session_id == "507f191e810c19729de860ea"


def test_message_with_neither_user_id_nor_anonymous_id_is_a_payload_error() -> None:
    message = product_viewed()
    del message["userId"], message["anonymousId"]
    with pytest.raises(PayloadError, match="no usable userId or anonymousId"):
        parse(message)


def test_product_id_falls_back_to_sku_and_unusable_products_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    message = order_completed()
    del message["properties"]["products"][0]["product_id"]
    message["properties"]["products"][1] = {"name": "no id at all", "price": 1}
    with caplog.at_level(logging.INFO):
        records = parse(message)
    assert [r.item_id for r in records] == ["45790-32"]
    assert "product 1 has no product_id or sku" in caplog.text


def test_prices_as_strings_count_and_unreadable_prices_leave_the_value_empty() -> None:
    message = product_viewed()
    message["properties"].update(price="4.50", quantity="3")
    assert parse(message)[0].event_value == 13.5
    message["properties"]["price"] = "free"
    assert parse(message)[0].event_value is None


def test_timestamp_falls_back_to_original_timestamp_and_a_bad_one_says_why() -> None:
    message = product_viewed()
    del message["timestamp"]
    message["originalTimestamp"] = "2015-12-10T04:08:30Z"
    assert parse(message)[0].timestamp == datetime(2015, 12, 10, 4, 8, 30, tzinfo=UTC).timestamp()
    message["originalTimestamp"] = "tea time"
    with pytest.raises(PayloadError, match="originalTimestamp 'tea time'"):
        parse(message)


# --------------------------------------------------------------------- page / screen
def test_page_without_a_product_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert parse(page({"path": "/academy/", "title": "Analytics Academy"})) == []
    assert "names no product" in caplog.text


def test_page_and_screen_with_a_product_are_views() -> None:
    for kind in ("page", "screen"):
        (interaction,) = parse(page({"product_id": "p-1"}, kind=kind))
        assert (interaction.item_id, interaction.event_type, interaction.event_value) == ("p-1", VIEW, None)
    (interaction,) = parse(page({"sku": "s-1"}), config={"product_properties": "sku"})
    assert interaction.item_id == "s-1"


# --------------------------------------------------------------------- identify / alias / delete
def test_identify_keeps_allowed_traits_only() -> None:
    assert parse(identify()) == [User("97980cfea0067", {"PLAN": "premium", "MEMBERSHIP_TIER": "gold"})]


def test_connection_chooses_the_traits_kept() -> None:
    assert parse(identify(), {"user_traits": "logins, plan"}) == [
        User("97980cfea0067", {"PLAN": "premium", "LOGINS": 5})
    ]


def test_identify_with_both_ids_joins_the_anonymous_history_to_the_user() -> None:
    message = identify(anonymousId="anon-42")
    assert parse(message) == [
        Alias(anonymous_id="anon-42", user_id="97980cfea0067"),
        User("97980cfea0067", {"PLAN": "premium", "MEMBERSHIP_TIER": "gold"}),
    ]
    message["traits"] = {"email": "peter@initech.example"}
    assert parse(message) == [Alias(anonymous_id="anon-42", user_id="97980cfea0067")]


def test_alias_joins_the_previous_id_to_the_user_in_both_spellings() -> None:
    spec = envelope("alias", "alias-1", previousId="anon-42")
    assert parse(spec) == [Alias(anonymous_id="anon-42", user_id="97980cfea0067")]
    documented = {"type": "alias", "Previous ID": "anon-7", "User ID": "u-7", "timestamp": "2015-12-10T04:08:31Z"}
    assert parse(documented) == [Alias(anonymous_id="anon-7", user_id="u-7")]
    with pytest.raises(PayloadError, match="needs previousId and userId"):
        parse({"type": "alias", "userId": "u-7"})


def test_delete_forgets_the_user() -> None:
    message = {"type": "delete", "userId": "97980cfea0067", "timestamp": "2015-12-10T04:08:31Z", "messageId": "d-1"}
    assert parse(message) == [ForgetShopper(user_id="97980cfea0067")]


def test_group_is_understood_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert parse(envelope("group", "g-1", groupId="initech", traits={"name": "Initech"})) == []
    assert "not used for recommendations" in caplog.text


# --------------------------------------------------------------------- batches and identity
def test_batch_merges_its_context_and_skips_only_the_bad_message(caplog: pytest.LogCaptureFixture) -> None:
    bad = product_viewed()
    del bad["userId"], bad["anonymousId"]
    batch = {"batch": [product_viewed(), bad, "not a message", order_completed()], "context": {"ip": "1.2.3.4"}}
    with caplog.at_level(logging.WARNING):
        records = parse(batch)
    assert [r.event_type for r in records] == [VIEW, PURCHASE, PURCHASE]
    assert "batch message 1" in caplog.text and "batch message 2" in caplog.text


def test_a_json_array_body_is_a_batch_too() -> None:
    assert [r.event_type for r in parse([product_viewed(), order_completed()])] == [VIEW, PURCHASE, PURCHASE]


def test_single_messages_dedupe_on_message_id_and_batches_on_the_body() -> None:
    adapter = SegmentAdapter()
    single = segment_delivery(payload("segment_product_viewed.json"))
    batch = segment_delivery(encode({"batch": [product_viewed()]}))
    assert adapter.delivery_id(single) == "022bb90c-bbac-11e4-8dfc-aa07a5b093dc"
    assert adapter.topic(single) == "track"
    assert adapter.delivery_id(batch) is None and adapter.topic(batch) == "batch"


def test_segment_has_no_backfill_and_says_how_history_arrives() -> None:
    with pytest.raises(InvalidInput, match="Replay"):
        SegmentAdapter().api_client()
    with pytest.raises(InvalidInput, match="Replay"):
        list(SegmentAdapter().backfill(None))  # type: ignore[arg-type]


# --------------------------------------------------------------------- through the real server
@pytest.fixture
def live_shop(store: Store) -> Iterator[tuple[Store, str, str]]:
    """A connected dataset group and the real app (with its delivery worker) on a loopback port."""
    store.create_dataset_group("seg-shop")
    store.connect("seg-shop", "segment", SECRET, {})
    with live_intake(store, "seg-shop", "segment") as url:
        yield store, "seg-shop", url


def post(url: str, message: Any, *, secret: str | None = SECRET) -> str:
    """Deliver like Segment; the answer's status (``accepted``, ``duplicate``) or the HTTP code."""
    delivery = segment_delivery(encode(message), secret=secret)
    response = requests.post(url, data=delivery.body, headers=dict(delivery.headers), timeout=10)
    return response.json()["status"] if response.status_code == 200 else str(response.status_code)


def test_anonymous_browsing_belongs_to_the_shopper_once_identified(live_shop: tuple[Store, str, str]) -> None:
    store, group, url = live_shop
    viewed = product_viewed()
    del viewed["userId"]  # browsing before logging in: anonymousId only
    added = copy.deepcopy(viewed)
    added.update(event="Product Added", messageId="anon-add-1")
    anonymous = "507f191e810c19729de860ea"

    assert post(url, viewed, secret="wrong") == "401"
    assert post(url, viewed) == "accepted"
    assert post(url, viewed) == "duplicate"  # Segment retried: the same messageId
    assert post(url, {"batch": [added]}) == "accepted"
    assert post(url, {"batch": [added]}) == "duplicate"  # the same batch again: the same body
    assert settled(store, group) == ["rejected", "processed", "duplicate", "processed", "duplicate"]
    assert [e.event_type for e in store.latest_events(group, anonymous)] == [VIEW, ADD_TO_CART]

    assert post(url, identify(anonymousId=anonymous)) == "accepted"
    settled(store, group)  # the alias is applied before the purchase arrives, as in real life
    assert post(url, order_completed()) == "accepted"
    assert settled(store, group)[-2:] == ["processed", "processed"]

    events = store.latest_events(group, "97980cfea0067")
    assert [(e.item_id, e.event_type) for e in events] == [
        ("507f1f77bcf86cd799439011", VIEW),
        ("507f1f77bcf86cd799439011", ADD_TO_CART),
        ("507f1f77bcf86cd799439011", PURCHASE),
        ("505bd76785ebb509fc183733", PURCHASE),
    ]
    assert store.latest_events(group, anonymous) == []
    assert store.users(group)["97980cfea0067"].properties == {"PLAN": "premium", "MEMBERSHIP_TIER": "gold"}
