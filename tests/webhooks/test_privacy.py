"""Privacy requests end to end, through the real server and worker, on every backend."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from sqlalchemy import select

from adapters.shopify import sign
from adapters.woocommerce import sign as woo_sign
from engine.storage import tables as t
from tests.adapters import bodies
from tests.webhooks.support import settle, wait_for
from webhooks.acceptance import accept
from webhooks.processing import process_delivery
from webhooks.settings import IntakeSettings
from webhooks.worker import DeliveryWorker

if TYPE_CHECKING:
    from conftest import Shop

BOB = "207119551"
BOB_CART = "68778783ad298f1c80c3bafcddeea02f"
Send = Callable[..., requests.Response]


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    return tmp_path / "exports"


@pytest.fixture
def send(shop: Shop, serve: Callable[..., str], exports: Path) -> Send:
    """POST a signed Shopify delivery of a JSON value to a server whose exports go to ``exports``."""
    url = serve(shop.store, extra={"export_dir": str(exports)})

    def post(topic: str, payload: Any, *, webhook_id: str | None = None) -> requests.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": webhook_id or f"{topic}-{len(body)}-{hash(body)}",
            "X-Shopify-Hmac-Sha256": sign(body, "s3cret"),
        }
        response = requests.post(f"{url}/webhooks/shopify/{shop.group}", data=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return response

    return post


def bob_order() -> bytes:
    return bodies.shared("shopify_orders_create.json")


def guest_order() -> dict[str, Any]:
    """Bob again, checking out as a guest (his e-mail and address, no customer id)."""
    order = json.loads(bob_order())
    order.update(id=280263, customer=None, cart_token="guest-cart-1")
    return order


def other_order() -> dict[str, Any]:
    order = json.loads(bob_order())
    order.update(
        id=999,
        email="ann@mail.example.com",
        cart_token="ann-cart",
        billing_address=None,
        shipping_address=None,
        note_attributes=[],
    )
    order["customer"] = {"id": 555, "email": "ann@mail.example.com", "orders_count": 3, "state": "enabled"}
    return order


def users_of(shop: Shop) -> set[str]:
    return set(shop.store.users(shop.group))


def events_of(shop: Shop, user: str) -> list[Any]:
    return shop.store.latest_events(shop.group, user)


def raw_bodies(shop: Shop) -> dict[str, bytes]:
    group_id = shop.store.get_dataset_group(shop.group).id
    with shop.store.session() as s:
        rows = s.execute(
            select(t.WebhookDelivery.dedupe_key, t.WebhookDelivery.body).where(
                t.WebhookDelivery.dataset_group_id == group_id
            )
        ).all()
    return {key: bytes(body) for key, body in rows}


def test_customers_redact_erases_the_shopper_their_guest_orders_and_their_raw_deliveries(
    shop: Shop, send: Send
) -> None:
    cart = dict(copy.deepcopy(bodies.SHOPIFY_CART), token=BOB_CART, id=BOB_CART)
    send("carts/update", cart, webhook_id="bob-cart")  # browsing anonymously, before checking out
    send("orders/create", bob_order(), webhook_id="bob-order")
    send("orders/create", guest_order(), webhook_id="bob-guest-order")
    send("orders/create", other_order(), webhook_id="ann-order")
    settle(shop.store, shop.group)
    assert users_of(shop) == {BOB, "555"}  # a guest has events but no user row
    assert len(events_of(shop, BOB)) == 4  # three purchases + the cart's add-to-cart, aliased to Bob
    assert len(events_of(shop, "guest-cart-1")) == 3

    send("customers/redact", bodies.SHOPIFY_CUSTOMERS_REDACT, webhook_id="redact-1")
    settle(shop.store, shop.group)
    # Bodies are purged just after the erasure commits.
    wait_for(lambda: raw_bodies(shop)["redact-1"] == b"", what="the purge")
    rows = settle(shop.store, shop.group)

    assert events_of(shop, BOB) == [] and events_of(shop, "guest-cart-1") == [] and events_of(shop, BOB_CART) == []
    assert users_of(shop) == {"555"}
    assert len(events_of(shop, "555")) == 3  # another shopper is untouched
    bodies_left = raw_bodies(shop)
    for key in ("bob-cart", "bob-order", "bob-guest-order", "redact-1"):
        assert bodies_left[key] == b"", f"{key} still holds its raw body"
    assert b"ann@mail.example.com" in bodies_left["ann-order"]
    assert [r.status for r in rows] == ["processed"] * 5
    assert [r.purged for r in rows] == [True, True, True, False, True]


def test_customers_redact_deletes_the_training_snapshot_holding_the_shoppers_events(
    shop: Shop, send: Send, tmp_path: Path
) -> None:
    from engine.jobs.snapshot import snapshot_directory
    from engine.jobs.train import train

    send("orders/create", bob_order(), webhook_id="bob-order")
    send("orders/create", other_order(), webhook_id="ann-order")
    settle(shop.store, shop.group)
    models = tmp_path / "models"
    train(shop.store, models, dataset_group=shop.group, recipe="popularity-count", solution="pop", metrics=False)
    snapshot = snapshot_directory(models, shop.group)
    assert any(snapshot.iterdir())

    send("customers/redact", bodies.SHOPIFY_CUSTOMERS_REDACT, webhook_id="redact-1")
    settle(shop.store, shop.group)
    wait_for(lambda: not snapshot.exists(), what="the snapshot's deletion")
    assert events_of(shop, BOB) == []
    # The next training reads the store afresh (and keeps a new snapshot without Bob's events).
    train(shop.store, models, dataset_group=shop.group, recipe="popularity-count", solution="pop", metrics=False)
    assert any(snapshot.iterdir())


def store_delivery(shop: Shop, topic: str, body: bytes, key: str) -> int:
    """Store a delivery as the intake does, with no worker to process it."""
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": key, "X-Shopify-Hmac-Sha256": sign(body, "s3cret")}
    return accept(shop.store, shop.group, "shopify", headers, body).delivery_id


def test_a_redacted_shoppers_delivery_still_waiting_is_never_processed(shop: Shop) -> None:
    waiting = store_delivery(shop, "orders/create", bob_order(), "late-order")
    redact = store_delivery(shop, "customers/redact", json.dumps(bodies.SHOPIFY_CUSTOMERS_REDACT).encode(), "redact")
    assert process_delivery(shop.store, redact).status == "processed"
    outcome = process_delivery(shop.store, waiting)
    assert outcome.status == "erased" and events_of(shop, BOB) == []


def test_data_request_writes_a_json_export_of_what_is_held(shop: Shop, send: Send, exports: Path) -> None:
    send("orders/create", bob_order(), webhook_id="bob-order")
    send("orders/create", guest_order(), webhook_id="bob-guest-order")
    send("orders/create", other_order(), webhook_id="ann-order")
    settle(shop.store, shop.group)

    send("customers/data_request", bodies.SHOPIFY_DATA_REQUEST, webhook_id="request-1")
    settle(shop.store, shop.group)
    wait_for(lambda: raw_bodies(shop)["request-1"] == b"", what="the purge")

    export = json.loads((exports / shop.group / "shopify-data-request-9999.json").read_text())
    assert (export["platform"], export["datasetGroup"], export["requestId"]) == ("shopify", shop.group, "9999")
    by_user = {s["userId"]: s for s in export["shoppers"]}
    assert set(by_user) == {BOB, "guest-cart-1"}
    assert by_user[BOB]["properties"] == {"ORDERS_COUNT": 0, "STATE": "DISABLED"}
    assert [(e["eventType"], e["itemId"], e["eventValue"]) for e in by_user[BOB]["interactions"]] == [
        ("purchase", "632910392", 199.0)
    ] * 3
    assert by_user["guest-cart-1"]["properties"] is None and len(by_user["guest-cart-1"]["interactions"]) == 3
    assert "ann" not in json.dumps(export) and "555" not in by_user
    assert raw_bodies(shop)["request-1"] == b""  # the request names the shopper: not kept
    assert len(events_of(shop, BOB)) == 3  # an export erases nothing


def test_uninstall_disables_the_store_and_reconnecting_enables_it(shop: Shop, send: Send) -> None:
    send("app/uninstalled", bodies.SHOPIFY_SHOP, webhook_id="bye")
    settle(shop.store, shop.group)
    wait_for(lambda: raw_bodies(shop)["bye"] == b"", what="the purge")
    _secret, config = shop.store.connection(shop.group, "shopify")
    assert config["disabled_at"] > 0

    send("orders/create", bob_order(), webhook_id="after-uninstall")
    (bye, after) = settle(shop.store, shop.group)
    assert (after.status, after.records) == ("processed", 0) and events_of(shop, BOB) == []
    assert bye.purged  # the Shop resource names its owner

    send("customers/redact", bodies.SHOPIFY_CUSTOMERS_REDACT, webhook_id="still-honoured")
    assert settle(shop.store, shop.group)[-1].status == "processed"

    shop.store.connect(shop.group, "shopify", "s3cret")
    send("orders/create", bob_order(), webhook_id="reinstalled")
    settle(shop.store, shop.group)
    assert len(events_of(shop, BOB)) == 3


def test_shop_redact_erases_the_dataset_group_its_models_and_exports(
    shop: Shop, send: Send, exports: Path, tmp_path: Path
) -> None:
    send("orders/create", bob_order(), webhook_id="bob-order")
    send("customers/data_request", bodies.SHOPIFY_DATA_REQUEST, webhook_id="request-1")
    settle(shop.store, shop.group)
    artifact = tmp_path / "models" / shop.group / "for-you" / "sv-1.npz"  # as training lays them out
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(b"model trained on the shop")
    snapshot = tmp_path / "models" / shop.group / ".snapshot"
    snapshot.mkdir()
    (snapshot / "interactions.npz").write_bytes(b"the shop's raw events")
    solution = shop.store.create_solution(shop.group, "for-you", "popularity-count", {})
    shop.store.add_solution_version(
        solution, training_mode="FULL", artifact_path=str(artifact), num_interactions=3, training_seconds=0.1
    )
    assert (exports / shop.group).is_dir()

    group_id = shop.store.get_dataset_group(shop.group).id
    send("shop/redact", bodies.SHOPIFY_SHOP_REDACT, webhook_id="redact-shop")
    wait_for(lambda: shop.group not in {g.name for g in shop.store.list_dataset_groups()}, what="the erasure")
    # The files go just after the group's rows, the exports last.
    wait_for(lambda: not (exports / shop.group).exists(), what="the files' deletion")
    assert not artifact.exists() and not (exports / shop.group).exists() and not snapshot.exists()
    with shop.store.session() as s:
        for model in (t.InteractionRow, t.UserRow, t.WebhookDelivery, t.Connection, t.Solution):
            assert s.scalars(select(model).where(model.dataset_group_id == group_id)).all() == []
    shop.store.create_dataset_group(shop.group)  # the fixture deletes it at the end


def test_woocommerce_customer_deletion_erases_the_shopper(shop: Shop, serve: Callable[..., str]) -> None:
    shop.store.connect(shop.group, "woocommerce", "wc-secret")
    url = f"{serve(shop.store)}/webhooks/woocommerce/{shop.group}"

    def post(topic: str, body: bytes, key: str) -> None:
        headers = {
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Delivery-ID": key,
            "X-WC-Webhook-Signature": woo_sign(body, "wc-secret"),
        }
        assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 200

    post("order.created", bodies.shared("woocommerce_order_created.json"), "o1")
    post("customer.created", json.dumps(dict(bodies.WOO_CUSTOMER, id=26)).encode(), "c1")
    settle(shop.store, shop.group)
    assert len(events_of(shop, "26")) == 2 and "26" in users_of(shop)

    post("customer.deleted", b'{"id":26}', "gone")
    settle(shop.store, shop.group)
    wait_for(lambda: raw_bodies(shop)["o1"] == b"", what="the purge")
    rows = settle(shop.store, shop.group)
    assert events_of(shop, "26") == [] and "26" not in users_of(shop)
    assert [r.purged for r in rows] == [True, True, True]  # a privacy request is never kept raw


def test_in_one_batch_an_erasure_covers_the_deliveries_before_and_after_it(shop: Shop) -> None:
    before = store_delivery(shop, "orders/create", bob_order(), "before")
    store_delivery(shop, "customers/redact", json.dumps(bodies.SHOPIFY_CUSTOMERS_REDACT).encode(), "redact")
    after = store_delivery(shop, "orders/create", json.dumps(dict(guest_order(), id=450789469)).encode(), "after")
    other = store_delivery(shop, "orders/create", json.dumps(other_order()).encode(), "ann")
    DeliveryWorker(shop.store, IntakeSettings()).run_once()  # all four in one batch, in order

    statuses = {r.id: r.status for r in settle(shop.store, shop.group)}
    assert (statuses[before], statuses[after], statuses[other]) == ("processed", "erased", "processed")
    assert events_of(shop, BOB) == [] and events_of(shop, "guest-cart-1") == []
    assert len(events_of(shop, "555")) == 3
