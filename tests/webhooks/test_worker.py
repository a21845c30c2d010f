"""Processing after the answer: the worker drains the database queue, survives crashes, never twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
import requests
from sqlalchemy import func, select, update

from adapters.shopify import ShopifyAdapter, sign
from engine.storage import tables as t
from engine.storage.store import Store
from tests.webhooks.support import settle
from webhooks import queue
from webhooks.acceptance import accept
from webhooks.processing import process_delivery
from webhooks.settings import IntakeSettings
from webhooks.worker import DeliveryWorker

if TYPE_CHECKING:
    from conftest import Shop

Send = Callable[..., requests.Response]


def interactions(store: Store, group: str) -> int:
    return store.count_interactions(group)


def stored_unprocessed(shop: Shop, body: bytes, n: int, *, prefix: str = "stored") -> list[int]:
    """``n`` verified deliveries, stored as the intake stores them, with no worker running."""
    ids = []
    for i in range(n):
        headers = {
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": f"{prefix}-{i}",
            "X-Shopify-Hmac-Sha256": sign(body, "s3cret"),
        }
        acceptance = accept(shop.store, shop.group, "shopify", headers, body)
        assert acceptance.status == "verified"
        ids.append(acceptance.delivery_id)
    return ids


def test_the_answer_does_not_wait_for_processing(
    shop: Shop, send_shopify: Send, order_body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_parse = ShopifyAdapter.parse

    def slow_parse(self: ShopifyAdapter, delivery: Any) -> list[Any]:
        release.wait(20)  # processing that takes as long as the test wants
        return real_parse(self, delivery)

    monkeypatch.setattr(ShopifyAdapter, "parse", slow_parse)
    started = time.monotonic()
    response = send_shopify(order_body)
    answered_in = time.monotonic() - started
    try:
        assert response.status_code == 200 and response.json()["status"] == "accepted"
        assert answered_in < 5  # Shopify's limit, while processing is still blocked
        (delivery,) = queue.summaries(shop.store, dataset_group=shop.group)
        assert delivery.status in ("verified", "processing") and interactions(shop.store, shop.group) == 0
    finally:
        release.set()
    (delivery,) = settle(shop.store, shop.group)
    assert delivery.status == "processed" and interactions(shop.store, shop.group) == 3


def test_deliveries_stored_before_a_crash_are_processed_when_the_app_starts(
    shop: Shop, serve: Callable[..., str], order_body: bytes
) -> None:
    ids = stored_unprocessed(shop, order_body, 3)
    # One was being processed when its process died: its lease has run out.
    with shop.store.session() as s, s.begin():
        s.execute(
            update(t.WebhookDelivery)
            .where(t.WebhookDelivery.id == ids[0])
            .values(status="processing", lease_until=time.time() - 1, attempts=1)
        )
    assert interactions(shop.store, shop.group) == 0

    serve(shop.store)  # a fresh app: its worker drains what was left
    rows = settle(shop.store, shop.group)
    assert [(r.id, r.status) for r in rows] == [(i, "processed") for i in ids]
    assert [r.attempts for r in rows] == [2, 1, 1]
    # The three deliveries carry the same order (same event ids): each purchase is stored once.
    assert interactions(shop.store, shop.group) == 3


def test_a_delivery_whose_lease_is_alive_is_left_to_its_worker(shop: Shop, order_body: bytes) -> None:
    (delivery_id,) = stored_unprocessed(shop, order_body, 1)
    assert queue.claim(shop.store, limit=10, lease_seconds=60) == [(delivery_id, 1)]
    assert queue.claim(shop.store, limit=10, lease_seconds=60) == []  # held by the first claim


def test_two_workers_on_two_connections_never_process_a_delivery_twice(shop: Shop, order_body: bytes) -> None:
    ids = stored_unprocessed(shop, order_body, 30)
    other = Store(shop.store.database_url, create=False)  # as if in another process
    settings = IntakeSettings(batch_size=4, poll_seconds=0.01)
    workers = [DeliveryWorker(shop.store, settings).start(), DeliveryWorker(other, settings).start()]
    try:
        rows = settle(shop.store, shop.group, timeout=30)
    finally:
        for worker in workers:
            worker.stop()
        other.close()
    assert [r.id for r in rows] == ids
    assert {r.status for r in rows} == {"processed"}
    assert {r.attempts for r in rows} == {1}  # each claimed exactly once
    assert sum(w.processed for w in workers) == 30


def test_a_delivery_that_keeps_killing_its_worker_is_given_up(shop: Shop, order_body: bytes) -> None:
    (delivery_id,) = stored_unprocessed(shop, order_body, 1)
    with shop.store.session() as s, s.begin():
        s.execute(
            update(t.WebhookDelivery)
            .where(t.WebhookDelivery.id == delivery_id)
            .values(status="processing", lease_until=time.time() - 1, attempts=5)
        )
    DeliveryWorker(shop.store, IntakeSettings()).run_once()
    (row,) = queue.summaries(shop.store, ids=[delivery_id])
    assert row.status == "failed" and "gave up after 5 attempts" in row.error
    assert interactions(shop.store, shop.group) == 0


def test_retention_purges_the_raw_bodies_of_settled_deliveries_only(shop: Shop, order_body: bytes) -> None:
    done, waiting = stored_unprocessed(shop, order_body, 2)
    worker = DeliveryWorker(shop.store, IntakeSettings(retention_seconds=3600))
    queue.claim(shop.store, limit=1, lease_seconds=60, ids=[done])
    assert process_delivery(shop.store, done).status == "processed"
    worker.run_once()  # within the retention period: nothing purged; the waiting one is processed
    assert not any(r.purged for r in queue.summaries(shop.store, dataset_group=shop.group))

    with shop.store.session() as s, s.begin():
        s.execute(update(t.WebhookDelivery).values(received_at=time.time() - 7200))
    worker._next_sweep = 0  # the sweep runs every few minutes; run it now
    worker.run_once()
    rows = queue.summaries(shop.store, dataset_group=shop.group)
    assert [(r.status, r.purged) for r in rows] == [("processed", True), ("processed", True)]
    with shop.store.session() as s:
        assert s.scalar(select(func.max(func.length(t.WebhookDelivery.body)))) == 0
    assert waiting in [r.id for r in rows]


def test_the_worker_can_be_left_off_for_a_separate_process(
    shop: Shop, serve: Callable[..., str], order_body: bytes
) -> None:
    url = serve(shop.store, extra={"webhook_worker": False})
    response = requests.post(
        f"{url}/webhooks/shopify/{shop.group}",
        data=order_body,
        headers={
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": "w-1",
            "X-Shopify-Hmac-Sha256": sign(order_body, "s3cret"),
        },
        timeout=10,
    )
    assert response.json()["status"] == "accepted"
    time.sleep(0.2)
    assert [r.status for r in queue.summaries(shop.store, dataset_group=shop.group)] == ["verified"]


def test_a_delivery_that_cannot_be_stored_fails_alone_not_its_whole_batch(
    shop: Shop, order_body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def order(n: int, product: int) -> bytes:
        payload = json.loads(order_body)
        payload["id"] = n
        for line in payload["line_items"]:
            line["product_id"] = product
        return json.dumps(payload).encode()

    good_before = stored_unprocessed(shop, order(1, 11), 1, prefix="a")
    poisoned = stored_unprocessed(shop, order(2, 666), 1, prefix="b")
    good_after = stored_unprocessed(shop, order(3, 33), 1, prefix="c")
    real_ingest = shop.store.ingest

    def ingest(group: str, records: Any, **kwargs: Any) -> dict[str, int]:
        records = list(records)
        if any(getattr(r, "item_id", None) == "666" for r in records):
            raise RuntimeError("constraint violated by product 666")
        return real_ingest(group, records, **kwargs)

    monkeypatch.setattr(shop.store, "ingest", ingest)
    DeliveryWorker(shop.store, IntakeSettings()).run_once()  # one batch of three
    rows = {r.id: r for r in queue.summaries(shop.store, dataset_group=shop.group)}
    assert [rows[i].status for i in (*good_before, *poisoned, *good_after)] == ["processed", "failed", "processed"]
    assert "product 666" in rows[poisoned[0]].error
    assert {e.item_id for e in shop.store.latest_events(shop.group, "207119551")} == {"11", "33"}
