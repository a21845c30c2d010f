"""The mParticle adapter (Shelfwise as an mParticle Webhook output): the shared contract, the
commerce action table, identities and attributes, and the intake through a real server.

The batch is the payload file (mParticle's JSON reference); outgoing-only fields (``batch_id``,
``message_id``, identities as an array) follow platforms.md §5.3.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.base import Delivery, PayloadError, SignatureError
from adapters.mparticle import MParticleAdapter, sign
from adapters.mparticle.batch import CHECKOUT
from engine.errors import InvalidInput
from engine.records import ADD_TO_CART, CLICK, PURCHASE, REMOVE_FROM_CART, VIEW, WISHLIST, Alias, Interaction, User
from engine.storage.store import Store
from tests.adapters.contract import AdapterContract
from tests.adapters.live import live_intake, settled

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "payloads"
SECRET = "Basic c2hlbGZ3aXNlOnMzY3JldA=="  # the output's Authorization Header setting
PERSONAL_DATA = ("helpers@mparticle.com", "John", "Doe", "172.217.12.142")
SESSION = "91b86d0c-86cb-4124-a8b2-edee107de454"
MPID = "7346244611012968789"
JOIN = Alias(anonymous_id=MPID, user_id="1234")


def sample_body() -> bytes:
    path = PAYLOADS / "mparticle_batch.json"
    if not path.is_file():
        pytest.skip(f"payload {path} is missing")
    return path.read_bytes()


def sample() -> dict[str, Any]:
    return json.loads(sample_body())


def encode(batch: Any) -> bytes:
    return json.dumps(batch).encode()


def commerce(action: str, products: list[dict[str, Any]], message_id: str = "m-1", **extra: Any) -> dict[str, Any]:
    return {
        "event_type": "commerce_event",
        "data": {
            "product_action": {"action": action, "products": products, **extra},
            "currency_code": "USD",
            "message_id": message_id,
            "session_uuid": SESSION,
            "timestamp_unixtime_ms": 1402521630000,
        },
    }


def outgoing(events: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """An outgoing batch: identities as an array, a batch_id, the receive time (platforms.md §5.3)."""
    return {
        "events": events,
        "user_identities": [
            {"identity_type": "customer_id", "identity": "1234", "timestamp_unixtime_ms": 1540483995196},
            {"identity_type": "email", "identity": "helpers@mparticle.com", "timestamp_unixtime_ms": 1540483995196},
        ],
        "user_attributes": {"$firstname": "John", "$lastname": "Doe", "plan": "pro", "$gender": "m"},
        "mpid": 7346244611012968789,
        "batch_id": 8123456789012345678,
        "environment": "production",
        "timestamp_unixtime_ms": 1402521700000,
        **fields,
    }


def with_attribute(kind: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_type": kind,
        "data": {
            "event_name": "Viewed",
            "custom_event_type": "navigation",
            "screen_name": "Product Detail",
            "source_message_id": f"{kind}-1",
            "timestamp_unixtime_ms": 1402521613976,
            "custom_attributes": attributes,
        },
    }


def delivery(body: bytes, *, secret: str | None = SECRET) -> Delivery:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers.update(sign(body, secret))
    return Delivery.of(body, headers)


def parse(batch: Any, config: dict[str, Any] | None = None) -> list[Any]:
    return MParticleAdapter.from_connection(config or {}).parse(delivery(encode(batch)))


class TestMParticleContract(AdapterContract):
    adapter_class = MParticleAdapter
    secret = SECRET
    unknown_topic = "contract_no_such_event_type"
    personal_data = PERSONAL_DATA
    required_topics = ("commerce_event", "custom_event", "screen_view")

    def topic_bodies(self) -> dict[str, bytes]:
        return {
            "commerce_event,custom_event,screen_view": sample_body(),
            "commerce_event": encode(
                outgoing(
                    [
                        commerce("add_to_wishlist", [{"id": "SKU-1", "price": 5}], "m-1"),
                        commerce("remove_from_cart", [{"id": "SKU-2", "price": 7, "quantity": 2}], "m-2"),
                    ]
                )
            ),
            "screen_view": encode(outgoing([with_attribute("screen_view", {"product_id": "SKU-3"})])),
            "custom_event": encode(outgoing([with_attribute("custom_event", {"productId": "SKU-4"})])),
        }

    def make_delivery(
        self, body: bytes, *, topic: str, secret: str | None, delivery_id: str = "contract-delivery-1"
    ) -> Delivery:
        # mParticle names neither the topic nor the dedupe key outside the body.
        try:
            batch = json.loads(body)
        except ValueError:
            batch = None
        if isinstance(batch, dict):
            batch = copy.deepcopy(batch)
            if topic != MParticleAdapter().topic(Delivery.of(body, {})):
                for event in batch.get("events", []):
                    event["event_type"] = topic
            batch.pop("batch_id", None)
            batch["source_request_id"] = delivery_id
            body = encode(batch)
        return delivery(body, secret=secret)

    def test_unknown_topic_with_an_unreadable_body_does_not_crash(self, adapter: MParticleAdapter) -> None:
        # The event types are inside the body: an unreadable body has no topic and is a clear
        # PayloadError (kept by the intake as a failed, replayable delivery), not a crash.
        broken = self.make_delivery(b"\x00garbage", topic=self.unknown_topic, secret=self.secret)
        assert adapter.topic(broken) is None and adapter.delivery_id(broken) is None
        with pytest.raises(PayloadError, match="not JSON"):
            adapter.parse(broken)

    def test_altered_body_is_rejected(self, adapter: MParticleAdapter) -> None:
        pytest.skip("mParticle signs nothing: only the static Authorization value is checked (platforms.md §5.1)")


# --------------------------------------------------------------------- the Authorization value
def test_the_whole_authorization_value_must_match() -> None:
    body = sample_body()
    MParticleAdapter().verify(Delivery.of(body, {"authorization": SECRET}), SECRET)
    for wrong in ("Bearer c2hlbGZ3aXNlOnMzY3JldA==", "c2hlbGZ3aXNlOnMzY3JldA==", SECRET + "x", "Basic ünï"):
        with pytest.raises(SignatureError, match="does not match"):
            MParticleAdapter().verify(Delivery.of(body, {"Authorization": wrong}), SECRET)
    with pytest.raises(SignatureError, match="missing Authorization"):
        MParticleAdapter().verify(Delivery.of(body, {"Authorization": " "}), SECRET)


# --------------------------------------------------------------------- events
def test_sample_batch_gives_the_commerce_events_of_the_customer() -> None:
    assert parse(sample()) == [
        JOIN,  # logged in: what the mpid did before belongs to the customer
        Interaction(
            "1234",
            "SKU-12345",
            VIEW,
            1402521620.0,
            89.99,
            SESSION,
            "0b1f6c2e-5d1a-4a55-9f43-1a2b3c4d5e02:0",
            context={},
        ),
        Interaction(
            "1234",
            "SKU-12345",
            ADD_TO_CART,
            1402521630.0,
            89.99,
            SESSION,
            "0b1f6c2e-5d1a-4a55-9f43-1a2b3c4d5e03:0",
            context={},
        ),
        Interaction(
            "1234",
            "SKU-12345",
            PURCHASE,
            1402521660.0,
            89.99,
            SESSION,
            "0b1f6c2e-5d1a-4a55-9f43-1a2b3c4d5e04:0",
            context={},
        ),
    ]


@pytest.mark.parametrize(
    ("action", "event_type"),
    [
        ("view_detail", VIEW),
        ("click", CLICK),
        ("add_to_cart", ADD_TO_CART),
        ("remove_from_cart", REMOVE_FROM_CART),
        ("purchase", PURCHASE),
        ("add_to_wishlist", WISHLIST),
        ("checkout", CHECKOUT),
    ],
)
def test_product_actions_map_through_the_table_one_interaction_per_product(action: str, event_type: str) -> None:
    products = [{"id": "A", "price": 10.5, "quantity": 2}, {"id": "B", "price": "3"}, {"name": "no id"}]
    records = [r for r in parse(outgoing([commerce(action, products)])) if isinstance(r, Interaction)]
    assert [(r.item_id, r.event_type, r.event_value, r.event_id) for r in records] == [
        ("A", event_type, 21.0, "m-1:0"),
        ("B", event_type, 3.0, "m-1:1"),
    ]


@pytest.mark.parametrize("action", ["refund", "checkout_option", "remove_from_wish_list", "teleport"])
def test_other_actions_are_logged_and_skipped(action: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        records = parse(outgoing([commerce(action, [{"id": "A"}])]))
    assert not [r for r in records if isinstance(r, Interaction)]
    assert repr(action) in caplog.text


def test_promotions_impressions_and_session_events_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    events = [
        {"event_type": "commerce_event", "data": {"promotion_action": {"action": "view", "promotions": [{"id": "P"}]}}},
        {"event_type": "commerce_event", "data": {"product_impressions": [{"products": [{"id": "A"}]}]}},
        {"event_type": "session_start", "data": {"timestamp_unixtime_ms": 1}},
        {"event_type": "holograms", "data": {}},
    ]
    with caplog.at_level(logging.INFO):
        assert not [r for r in parse(outgoing(events)) if isinstance(r, Interaction)]
    assert "without a product_action" in caplog.text and "'holograms'" in caplog.text


def test_screen_views_and_custom_events_need_a_product_attribute() -> None:
    events = [
        with_attribute("screen_view", {"product_id": "S-1"}),
        with_attribute("custom_event", {"itemId": "C-1"}),
        with_attribute("custom_event", {"button_name": "home"}),
    ]
    records = [r for r in parse(outgoing(events)) if isinstance(r, Interaction)]
    assert [(r.item_id, r.event_type, r.event_id) for r in records] == [
        ("S-1", VIEW, "screen_view-1:0"),
        ("C-1", VIEW, "custom_event-1:0"),
    ]
    (only,) = [r for r in parse(outgoing(events), {"product_attributes": "button_name"}) if isinstance(r, Interaction)]
    assert only.item_id == "home"


def test_a_malformed_event_is_skipped_and_the_rest_of_the_batch_kept(caplog: pytest.LogCaptureFixture) -> None:
    late = commerce("purchase", [{"id": "A"}], "m-9")
    del late["data"]["timestamp_unixtime_ms"]
    events = [commerce("view_detail", [{"id": "A"}]), "junk", {"event_type": "commerce_event"}, late]
    with caplog.at_level(logging.WARNING):
        records = [r for r in parse(outgoing(events, timestamp_unixtime_ms=None)) if isinstance(r, Interaction)]
    assert [r.event_type for r in records] == [VIEW]
    assert "batch event 1" in caplog.text and "batch event 3" in caplog.text
    # with the batch's receive time present, the event without its own time takes that one
    (purchase,) = [r for r in parse(outgoing([late])) if isinstance(r, Interaction)]
    assert purchase.timestamp == 1402521700.0


# --------------------------------------------------------------------- identities and attributes
def test_user_is_the_customer_id_else_the_mpid() -> None:
    batch = outgoing([commerce("view_detail", [{"id": "A"}])])
    assert {r.user_id for r in parse(batch)} == {"1234"}
    batch["user_identities"] = [{"identity_type": "email", "identity": "helpers@mparticle.com"}]
    records = parse(batch)
    assert {r.user_id for r in records} == {MPID} and not [r for r in records if isinstance(r, Alias)]
    del batch["mpid"]
    with pytest.raises(PayloadError, match="neither a customer_id identity nor an mpid"):
        parse(batch)


def test_user_attributes_are_an_allow_list() -> None:
    batch = outgoing([])
    assert parse(batch) == [JOIN, User("1234", {"PLAN": "pro"})]
    assert parse(batch, {"user_attributes": ["plan", "$gender"]}) == [
        JOIN,
        User("1234", {"PLAN": "pro", "$GENDER": "m"}),
    ]
    assert not [r for r in parse(sample()) if isinstance(r, User)]  # it sends only $ (personal) attributes


def test_dedupe_key_is_the_batch_id_else_the_source_request_id() -> None:
    adapter = MParticleAdapter()
    assert adapter.delivery_id(delivery(encode(outgoing([])))) == "8123456789012345678"
    assert adapter.delivery_id(delivery(sample_body())) == "7fa67be4-f83a-429f-9d73-38b660c50825"
    bare = sample()
    del bare["source_request_id"]
    assert adapter.delivery_id(delivery(encode(bare))) is None  # the intake falls back to the body hash


def test_topic_lists_the_event_types_of_the_batch() -> None:
    adapter = MParticleAdapter()
    assert adapter.topic(delivery(sample_body())) == "commerce_event,custom_event,screen_view"
    assert adapter.topic(delivery(encode(outgoing([])))) == "no_events"
    # "Send Batches without Events" (on by default): attributes may still change
    assert adapter.parse(delivery(encode(outgoing([])))) == [JOIN, User("1234", {"PLAN": "pro"})]


def test_body_that_is_not_a_batch_is_a_payload_error() -> None:
    for body, message in ((b"[1]", "not a JSON object"), (encode({"events": "x", "mpid": 1}), "events is not a list")):
        with pytest.raises(PayloadError, match=message):
            MParticleAdapter().parse(delivery(body))


def test_mparticle_has_no_backfill_and_says_how_history_arrives() -> None:
    with pytest.raises(InvalidInput, match="replay"):
        MParticleAdapter().api_client()
    with pytest.raises(InvalidInput, match="replay"):
        list(MParticleAdapter().backfill(None))  # type: ignore[arg-type]


# --------------------------------------------------------------------- through the real server
@pytest.fixture
def live_shop(store: Store) -> Iterator[tuple[Store, str, str]]:
    """A connected dataset group and the real app (with its delivery worker) on a loopback port."""
    store.create_dataset_group("mp-shop")
    store.connect("mp-shop", "mparticle", SECRET, {})
    with live_intake(store, "mp-shop", "mparticle") as url:
        yield store, "mp-shop", url


def test_batches_through_the_intake_check_the_header_ingest_and_dedupe(live_shop: tuple[Store, str, str]) -> None:
    store, group, url = live_shop
    body = sample_body()

    def post(authorization: str | None) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        return requests.post(url, data=body, headers=headers, timeout=10)

    anonymous = sample()  # the same shopper before logging in: known by the mpid only
    anonymous["user_identities"] = {"email": "helpers@mparticle.com"}
    anonymous["source_request_id"] = "before-login"
    anonymous["events"] = anonymous["events"][1:2]  # a product view
    anonymous["events"][0]["data"]["source_message_id"] = "view-before-login"
    response = requests.post(url, data=encode(anonymous), headers={"Authorization": SECRET}, timeout=10)
    assert response.json()["status"] == "accepted"
    assert settled(store, group) == ["processed"]
    assert [e.event_type for e in store.latest_events(group, MPID)] == [VIEW]

    assert post(None).status_code == 401
    wrong = post("Basic d3Jvbmc6d3Jvbmc=")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "InvalidSignature"
    assert post(SECRET).json()["status"] == "accepted"
    assert post(SECRET).json()["status"] == "duplicate"  # mParticle retried: same source_request_id
    assert settled(store, group) == ["processed", "rejected", "rejected", "processed", "duplicate"]

    events = store.latest_events(group, "1234")
    assert store.latest_events(group, MPID) == []
    assert [(e.item_id, e.event_type) for e in events] == [
        ("SKU-12345", VIEW),  # the view from before the login
        ("SKU-12345", VIEW),
        ("SKU-12345", ADD_TO_CART),
        ("SKU-12345", PURCHASE),
    ]
    assert store.users(group) == {}  # only personal ($) attributes were sent
