"""Genuine Shopify deliveries (signed, distinct orders) and a bounded, concurrent sender."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from adapters.shopify import sign

ORDER = Path(__file__).resolve().parents[2].parent / "shared" / "payloads" / "shopify_orders_create.json"
SECRET = "bench-secret"


@dataclass(frozen=True)
class Prepared:
    webhook_id: str
    body: bytes
    headers: dict[str, str]


def deliveries(n: int, *, offset: int = 0) -> list[Prepared]:
    """``n`` orders/create deliveries of different orders by 500 shoppers over 300 products,
    signed ahead of time so the timing measures the server, not the signer."""
    template = json.loads(ORDER.read_bytes())
    prepared = []
    for i in range(offset, offset + n):
        order = dict(template, id=10_000_000 + i, cart_token=f"cart-{i}")
        order["customer"] = dict(template["customer"], id=1_000 + i % 500)
        order["line_items"] = [
            dict(line, id=i * 10 + k, product_id=5_000 + (i * 7 + k * 13) % 300)
            for k, line in enumerate(template["line_items"])
        ]
        body = json.dumps(order).encode()
        webhook_id = f"bench-{i}"
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Shop-Domain": "bench.myshopify.com",
            "X-Shopify-Hmac-Sha256": sign(body, SECRET),
        }
        prepared.append(Prepared(webhook_id, body, headers))
    return prepared


@dataclass
class Results:
    acked: list[str] = field(default_factory=list)  # webhook ids answered 2xx
    refused: list[tuple[str, int]] = field(default_factory=list)  # answered, but not 2xx
    unanswered: list[str] = field(default_factory=list)  # connection refused / reset / timed out
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def send_all(
    url: str,
    prepared: list[Prepared],
    *,
    concurrency: int,
    on_ack: threading.Event | None = None,
    ack_target: int | None = None,
    timeout: float = 10.0,
) -> Results:
    """POST every delivery once (``concurrency`` at a time, one keep-alive session per thread).

    ``on_ack`` is set once ``ack_target`` deliveries were acknowledged (the fault run kills then).
    """
    results = Results()
    local = threading.local()

    def post(item: Prepared) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        started = time.perf_counter()
        try:
            response = session.post(url, data=item.body, headers=item.headers, timeout=timeout)
        except requests.RequestException:
            local.session = None
            with results.lock:
                results.unanswered.append(item.webhook_id)
            return
        elapsed = time.perf_counter() - started
        with results.lock:
            if 200 <= response.status_code < 300:
                results.acked.append(item.webhook_id)
                results.latencies.append(elapsed)
                if on_ack is not None and ack_target is not None and len(results.acked) >= ack_target:
                    on_ack.set()
            else:
                results.refused.append((item.webhook_id, response.status_code))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(post, prepared))
    return results
