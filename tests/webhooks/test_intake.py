"""The webhook intake through a real HTTP server: verify, store, answer; then the worker processes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import select

from engine.storage import tables as t
from tests.webhooks.support import settle
from webhooks.processing import process_delivery

if TYPE_CHECKING:  # conftest is pytest's to import; only its type is needed here
    from conftest import Shop

SECRET = "s3cret"  # the secret the ``shop`` fixture connects with

Send = Callable[..., requests.Response]

PERSONAL_DATA = (
    "bob.norman@hostmail.com",
    "bob",
    "norman",
    "chestnut street",
    "louisville",
    "555-625-1199",
    "40202",
    "kentucky",
    "happy birthday",
)


def rows(shop: Shop, model: type[t.Base]) -> list[dict[str, Any]]:
    """Every column of every row of ``model`` in the shop's dataset group."""
    group_id = shop.store.get_dataset_group(shop.group).id
    with shop.store.session() as s:
        found = s.scalars(select(model).where(model.dataset_group_id == group_id)).all()
        return [{c.key: getattr(r, c.key) for c in model.__table__.columns} for r in found]


def deliveries(shop: Shop) -> list[Any]:
    return shop.store.deliveries(shop.group)


def assert_error_shape(response: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"code", "message"} and error["message"]
    if code:
        assert error["code"] == code
    return error


# --------------------------------------------------------------------- the good path
def test_signed_order_is_stored_and_ingested_as_purchases(shop: Shop, send_shopify: Send, order_body: bytes) -> None:
    response = send_shopify(order_body, webhook_id="wh-good")

    assert response.status_code == 200
    (delivery,) = deliveries(shop)
    assert response.json() == {"status": "accepted", "deliveryId": delivery.id}
    settle(shop.store, shop.group)
    interactions = rows(shop, t.InteractionRow)
    assert len(interactions) == 3
    created = datetime(2008, 1, 10, 16, 0, tzinfo=UTC).timestamp()
    for row in interactions:
        assert (row["user_id"], row["item_id"], row["event_type"]) == ("207119551", "632910392", "purchase")
        assert row["event_value"] == 199.0
        assert row["timestamp"] == created
        assert row["session_id"] == "68778783ad298f1c80c3bafcddeea02f"
    assert sorted(r["event_id"] for r in interactions) == [
        "450789469:466157049",
        "450789469:518995019",
        "450789469:703073504",
    ]
    assert [(u["user_id"], u["properties"]) for u in rows(shop, t.UserRow)] == [
        ("207119551", {"ORDERS_COUNT": 0, "STATE": "DISABLED"})
    ]

    (delivery,) = deliveries(shop)
    # three line items, the customer, and the alias of the cart token to the customer
    assert delivery.status == "processed" and delivery.records == 5 and delivery.error is None
    assert delivery.body == order_body  # the raw bytes, exactly as sent (kept for the retention period)
    assert delivery.topic == "orders/create" and delivery.dedupe_key == "wh-good"
    assert {k.lower(): v for k, v in delivery.headers.items()}["x-shopify-webhook-id"] == "wh-good"


def test_no_personal_data_reaches_the_interactions_or_users_tables(
    shop: Shop, send_shopify: Send, order_body: bytes
) -> None:
    assert send_shopify(order_body).json()["status"] == "accepted"
    settle(shop.store, shop.group)
    dump = json.dumps([rows(shop, t.InteractionRow), rows(shop, t.UserRow)], default=str).lower()
    assert "207119551" in dump  # the dump is not empty
    for value in PERSONAL_DATA:
        assert value not in dump, f"personal data {value!r} was stored"


def test_unknown_topic_is_acknowledged_with_no_records(shop: Shop, send_shopify: Send) -> None:
    response = send_shopify(b'{"id": 788032119674292922}', topic="themes/publish")
    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "deliveryId": deliveries(shop)[0].id}
    (delivery,) = settle(shop.store, shop.group)
    assert (delivery.status, delivery.records) == ("processed", 0)
    assert rows(shop, t.InteractionRow) == []


# --------------------------------------------------------------------- rejected deliveries
def test_bad_signature_is_401_stored_as_rejected_and_ingests_nothing(
    shop: Shop, send_shopify: Send, order_body: bytes
) -> None:
    error = assert_error_shape(send_shopify(order_body, secret="wrong"), 401, "InvalidSignature")
    assert "does not match" in error["message"]
    (delivery,) = deliveries(shop)
    assert delivery.status == "rejected" and "does not match" in delivery.error
    assert delivery.body == order_body and delivery.dedupe_key is None
    assert rows(shop, t.InteractionRow) == [] and rows(shop, t.UserRow) == []


def test_missing_signature_is_401(shop: Shop, send_shopify: Send, order_body: bytes) -> None:
    error = assert_error_shape(send_shopify(order_body, secret=None), 401, "InvalidSignature")
    assert "missing" in error["message"]
    assert [d.status for d in deliveries(shop)] == ["rejected"]
    assert rows(shop, t.InteractionRow) == []


def test_forged_delivery_cannot_take_a_genuine_delivery_id(shop: Shop, send_shopify: Send, order_body: bytes) -> None:
    assert send_shopify(order_body, webhook_id="wh-x", secret="forger").status_code == 401
    assert send_shopify(order_body, webhook_id="wh-x").json()["status"] == "accepted"


def test_store_that_is_not_connected_is_401(shop: Shop, send_shopify: Send, order_body: bytes) -> None:
    other = f"{shop.group}-unconnected"
    shop.store.create_dataset_group(other)
    try:
        error = assert_error_shape(send_shopify(order_body, group=other), 401, "NotConnected")
        assert "not connected" in error["message"]
        (delivery,) = shop.store.deliveries(other)
        assert delivery.status == "rejected" and "not connected" in delivery.error
    finally:
        shop.store.delete_dataset_group(other)


def test_unknown_dataset_group_is_404_and_nothing_is_stored(shop: Shop, send_shopify: Send, order_body: bytes) -> None:
    assert_error_shape(send_shopify(order_body, group="no-such-shop"), 404)
    assert deliveries(shop) == []


def test_unknown_platform_is_404(shop: Shop, send_shopify: Send, order_body: bytes) -> None:
    error = assert_error_shape(send_shopify(order_body, platform="myspace"), 404)
    assert "shopify" in error["message"]  # says which platforms exist
    assert deliveries(shop) == []


def test_body_over_the_limit_is_413_in_the_error_shape(
    shop: Shop, send_shopify: Send, serve: Callable[..., str]
) -> None:
    small = serve(shop.store, max_body_bytes=1000)
    body = json.dumps({"line_items": [], "padding": "x" * 5000}).encode()
    assert_error_shape(send_shopify(body, url=small), 413, "PayloadTooLargeException")
    assert deliveries(shop) == []


def test_wrong_method_answers_in_the_error_shape(shop: Shop, send_shopify: Send, serve: Callable[..., str]) -> None:
    base_url = serve(shop.store)
    assert_error_shape(requests.get(f"{base_url}/webhooks/shopify/{shop.group}", timeout=10), 405)


# --------------------------------------------------------------------- duplicates
def test_same_delivery_twice_is_ingested_once(shop: Shop, send_shopify: Send, order_body: bytes) -> None:
    first = send_shopify(order_body, webhook_id="wh-dup")
    second = send_shopify(order_body, webhook_id="wh-dup")
    assert first.json()["status"] == "accepted"
    assert second.status_code == 200 and second.json()["status"] == "duplicate"
    assert [d.status for d in settle(shop.store, shop.group)] == ["processed", "duplicate"]
    assert len(rows(shop, t.InteractionRow)) == 3


def test_concurrent_duplicates_are_processed_exactly_once(shop: Shop, send_shopify: Send, order_body: bytes) -> None:
    barrier = threading.Barrier(4)
    answers: list[str] = []
    lock = threading.Lock()

    def deliver() -> None:
        barrier.wait()
        response = send_shopify(order_body, webhook_id="wh-race")
        with lock:
            answers.append(f"{response.status_code} {response.json()['status']}")

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answers) == ["200 accepted"] + ["200 duplicate"] * 3
    assert sorted(d.status for d in settle(shop.store, shop.group)) == ["duplicate"] * 3 + ["processed"]
    assert len(rows(shop, t.InteractionRow)) == 3


# --------------------------------------------------------------------- failures and replay
def test_signed_body_that_is_not_json_is_acknowledged_and_stored_as_failed(shop: Shop, send_shopify: Send) -> None:
    response = send_shopify(b"this is not json")
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    (summary,) = settle(shop.store, shop.group)
    assert summary.status == "failed" and "not JSON" in summary.error
    (delivery,) = deliveries(shop)
    assert delivery.body == b"this is not json"


def test_failed_delivery_replays_once_the_cause_is_fixed(
    shop: Shop, send_shopify: Send, order_body: bytes, monkeypatch: Any
) -> None:
    real_ingest = shop.store.ingest

    def broken_ingest(*args: Any, **kwargs: Any) -> dict[str, int]:
        raise RuntimeError("database went away")

    monkeypatch.setattr(shop.store, "ingest", broken_ingest)
    response = send_shopify(order_body, webhook_id="wh-replay")
    assert response.json()["status"] == "accepted"
    (summary,) = settle(shop.store, shop.group)
    assert summary.status == "failed" and "database went away" in summary.error
    (delivery,) = deliveries(shop)
    assert delivery.dedupe_key == "wh-replay"

    monkeypatch.setattr(shop.store, "ingest", real_ingest)
    outcome = process_delivery(shop.store, delivery.id)  # its own dedupe key is not a duplicate
    assert (outcome.status, outcome.records) == ("processed", 5)
    assert len(rows(shop, t.InteractionRow)) == 3

    again = process_delivery(shop.store, delivery.id)  # replaying a processed delivery ingests nothing
    assert again.status == "processed" and again.already_processed
    assert len(rows(shop, t.InteractionRow)) == 3
    assert send_shopify(order_body, webhook_id="wh-replay").json()["status"] == "duplicate"


def test_rejected_delivery_replays_after_the_secret_is_corrected(
    shop: Shop, send_shopify: Send, order_body: bytes
) -> None:
    assert send_shopify(order_body, secret="rotated").status_code == 401
    (delivery,) = deliveries(shop)
    shop.store.connect(shop.group, "shopify", "rotated")
    try:
        assert process_delivery(shop.store, delivery.id).status == "processed"
        assert len(rows(shop, t.InteractionRow)) == 3
    finally:
        shop.store.connect(shop.group, "shopify", SECRET)


# --------------------------------------------------------------------- secret rotation
def test_a_rotated_secret_still_accepts_the_old_one_during_its_grace_period(
    shop: Shop, send_shopify: Send, order_body: bytes
) -> None:
    shop.store.connect(shop.group, "shopify", "new-secret", keep_previous_for=3600)
    try:
        assert send_shopify(order_body, secret="new-secret").status_code == 200
        assert send_shopify(order_body, secret=SECRET).status_code == 200  # a retry signed before the switch
        assert_error_shape(send_shopify(order_body, secret="neither"), 401, "InvalidSignature")
        settle(shop.store)
        statuses = sorted(d.status for d in deliveries(shop))
        assert statuses.count("rejected") == 1 and statuses.count("processed") == 2
        assert len(rows(shop, t.InteractionRow)) == 3  # the same order twice: its events once
    finally:
        shop.store.connect(shop.group, "shopify", SECRET)


def test_after_the_grace_period_or_a_plain_reconnect_only_the_new_secret_counts(
    shop: Shop, send_shopify: Send, order_body: bytes
) -> None:
    shop.store.connect(shop.group, "shopify", "new-secret", keep_previous_for=3600)
    group_id = shop.store.get_dataset_group(shop.group).id
    with shop.store.session() as s, s.begin():  # the grace period is over
        row = s.scalar(select(t.Connection).where(t.Connection.dataset_group_id == group_id))
        row.previous_secret_until = 1.0
    try:
        assert_error_shape(send_shopify(order_body, secret=SECRET), 401, "InvalidSignature")
        shop.store.connect(shop.group, "shopify", "newer", keep_previous_for=3600)
        assert send_shopify(order_body, secret="new-secret").status_code == 200
        shop.store.connect(shop.group, "shopify", "newer")  # no rotation: the previous one stops counting
        assert_error_shape(send_shopify(order_body, secret="new-secret"), 401, "InvalidSignature")
    finally:
        shop.store.connect(shop.group, "shopify", SECRET)
