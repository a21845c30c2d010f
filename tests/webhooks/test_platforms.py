"""WooCommerce and Adobe Commerce through the real server: their particular answers and checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.magento.signature import sign as magento_sign
from adapters.woocommerce import sign as woo_sign
from tests.adapters import bodies
from tests.webhooks.support import settle

if TYPE_CHECKING:
    from conftest import Shop

WOO_SECRET = "wc-secret"
MAGENTO_TOKEN = "mage-token"


def woo_post(
    url: str, body: bytes, *, topic: str = "order.created", secret: str | None = WOO_SECRET, delivery_id: str = "d1"
) -> requests.Response:
    resource, event = topic.split(".")
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }
    if secret is not None:
        headers["X-WC-Webhook-Signature"] = woo_sign(body, secret)
    return requests.post(url, data=body, headers=headers, timeout=10)


@pytest.fixture
def base_url(shop: Shop, serve: Callable[..., str]) -> str:
    shop.store.connect(shop.group, "woocommerce", WOO_SECRET)
    shop.store.connect(shop.group, "magento", MAGENTO_TOKEN)
    return serve(shop.store, max_body_bytes=20_000)


# --------------------------------------------------------------------- WooCommerce
def test_woocommerce_ping_is_answered_exactly_200_and_kept(shop: Shop, base_url: str) -> None:
    response = requests.post(
        f"{base_url}/webhooks/woocommerce/{shop.group}",
        data=bodies.shared("woocommerce_ping_body.txt"),
        headers={"User-Agent": "WooCommerce/8.9.1 Hookshot (WordPress/6.5.3)"},
        timeout=10,
    )
    assert response.status_code == 200 and response.content == b""
    (row,) = settle(shop.store, shop.group)
    assert (row.platform, row.status) == ("woocommerce", "ping")
    assert shop.store.count_interactions(shop.group) == 0


def test_woocommerce_ping_to_a_store_not_connected_says_so(shop: Shop, serve: Callable[..., str]) -> None:
    url = serve(shop.store)
    response = requests.post(f"{url}/webhooks/woocommerce/{shop.group}", data=b"webhook_id=142", timeout=10)
    assert response.status_code == 401 and response.json()["error"]["code"] == "NotConnected"


def test_woocommerce_order_is_verified_stored_and_ingested(shop: Shop, base_url: str) -> None:
    url = f"{base_url}/webhooks/woocommerce/{shop.group}"
    body = bodies.shared("woocommerce_order_created.json")
    assert woo_post(url, body, secret="wrong").status_code == 401
    assert woo_post(url, body, secret=None).status_code == 401
    assert woo_post(url, body).json()["status"] == "accepted"
    assert woo_post(url, body, topic="order.updated", delivery_id="d2").json()["status"] == "accepted"
    rows = settle(shop.store, shop.group)
    assert [r.status for r in rows] == ["rejected", "rejected", "processed", "processed"]
    events = shop.store.latest_events(shop.group, "26")
    assert sorted((e.item_id, e.event_value) for e in events) == [("34", 20.0), ("87", 9.0)]  # stored once


def test_woocommerce_body_over_the_limit_is_413(shop: Shop, base_url: str) -> None:
    response = woo_post(f"{base_url}/webhooks/woocommerce/{shop.group}", b'{"pad": "' + b"x" * 30_000 + b'"}')
    assert response.status_code == 413 and response.json()["error"]["code"] == "PayloadTooLargeException"
    assert settle(shop.store, shop.group) == []


# --------------------------------------------------------------------- Adobe Commerce
def test_magento_hook_with_the_token_is_answered_op_success_and_deduped_by_body(shop: Shop, base_url: str) -> None:
    url = f"{base_url}/webhooks/magento/{shop.group}"
    body = bodies.magento_topic_bodies()["observer.sales_order_place_after"]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {MAGENTO_TOKEN}"}
    first = requests.post(url, data=body, headers=headers, timeout=10)
    again = requests.post(url, data=body, headers=headers, timeout=10)
    assert (first.status_code, first.json()) == (200, {"op": "success"})
    assert (again.status_code, again.json()) == (200, {"op": "success"})
    refused = requests.post(url, data=body, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "InvalidSignature"
    rows = settle(shop.store, shop.group)
    assert [(r.topic, r.status) for r in rows] == [
        ("observer.sales_order_place_after", "processed"),
        ("observer.sales_order_place_after", "duplicate"),
        ("observer.sales_order_place_after", "rejected"),
    ]
    assert {e.item_id for e in shop.store.latest_events(shop.group, "5")} == {"2079", "1812"}


def test_magento_signed_hooks_are_checked_with_the_public_key(shop: Shop, base_url: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    shop.store.connect(shop.group, "magento", MAGENTO_TOKEN, {"public_key": pem.decode()})
    url = f"{base_url}/webhooks/magento/{shop.group}"
    body = bodies.magento_topic_bodies()["observer.catalog_product_save_after"]
    signed = requests.post(
        url, data=body, headers={"x-adobe-commerce-webhook-signature": magento_sign(body, key)}, timeout=10
    )
    assert signed.json() == {"op": "success"}
    forged = requests.post(
        url, data=body + b" ", headers={"x-adobe-commerce-webhook-signature": magento_sign(body, key)}, timeout=10
    )
    assert forged.status_code == 401
    assert [r.status for r in settle(shop.store, shop.group)] == ["processed", "rejected"]
    assert shop.store.items(shop.group)["2079"].properties["TITLE"] == "Champ Tee Small"
