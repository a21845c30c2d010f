"""Fixtures for the webhook intake: a store per backend, a real HTTP server, a Shopify sender.

Every intake test runs against SQLite (a file in tmp_path) and, where the server at
127.0.0.1:5432 answers, PostgreSQL: the same suite on every backend (gorse's lesson). On
PostgreSQL each test gets a dataset group with a random name, deleted at the end.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from adapters.shopify import sign
from engine.api.app import create_app
from engine.storage.store import Store
from webhooks.intake import WORKER_KEY

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "payloads"
SECRET = "s3cret"


@dataclass
class Shop:
    """A connected dataset group in a store, as a test sees it."""

    store: Store
    group: str


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    if request.param == "postgresql":
        # A private database for the test session (tests/conftest.py), skipped where absent.
        store = Store(request.getfixturevalue("postgres_url"))
        group = f"shop1-{uuid.uuid4().hex[:12]}"
    else:
        store = Store(f"sqlite:///{tmp_path}/shelfwise.db")
        group = "shop1"
    store.create_dataset_group(group)
    store.connect(group, "shopify", SECRET)
    try:
        yield Shop(store, group)
    finally:
        if request.param == "postgresql":
            store.delete_dataset_group(group)
        store.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start the real app (with its delivery worker) on a loopback port in a thread; returns its URL.

    ``serve(store, max_body_bytes=1000)``: keyword arguments are ``create_app`` overrides
    (``extra={"webhook_worker": False}`` leaves the stored deliveries unprocessed).
    """
    servers: list[Any] = []

    def start(store: Store, **overrides: Any) -> str:
        app = create_app(store=store, database_url=store.database_url, **overrides)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        # A short poll interval: shutdown() waits for the loop to notice (0.5 s per test otherwise).
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        servers.append((server, thread, app))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread, app in servers:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        worker = app.extensions.get(WORKER_KEY)
        if worker is not None:
            worker.stop()


@pytest.fixture
def order_body() -> bytes:
    """The real Shopify orders/create body, read in place, byte for byte."""
    path = PAYLOADS / "shopify_orders_create.json"
    if not path.is_file():
        pytest.skip(f"payload {path} is missing")
    return path.read_bytes()


@pytest.fixture
def send_shopify(shop: Shop, serve: Callable[..., str]) -> Callable[..., requests.Response]:
    """POST a delivery the way Shopify does, signed by default (stripe-style test signer).

    ``secret=None`` leaves the signature header out; ``group``/``platform`` change the URL.
    """
    base_url = serve(shop.store)

    def send(
        body: bytes,
        *,
        topic: str = "orders/create",
        webhook_id: str | None = None,
        secret: str | None = SECRET,
        group: str | None = None,
        platform: str = "shopify",
        url: str | None = None,
    ) -> requests.Response:
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": "shop1.myshopify.com",
            "X-Shopify-API-Version": "2024-07",
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        }
        if secret is not None:
            headers["X-Shopify-Hmac-Sha256"] = sign(body, secret)
        target = f"{url or base_url}/webhooks/{platform}/{group or shop.group}"
        return requests.post(target, data=body, headers=headers, timeout=10)

    return send
