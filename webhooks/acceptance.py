"""Before the answer: verify a delivery on its raw bytes and store it, in the request.

Nothing is parsed here, so a delivery costs the same whatever it holds and the platform's time
limit (Shopify: 5 s) is never at risk: one query for the group and its connection, an HMAC (or an
RSA check), one INSERT with the dedupe key, committed before the answer goes out. Rejected
deliveries are stored too, with the reason, so they can be inspected and replayed once a secret
is corrected. A worker (webhooks/worker.py) does the rest after the answer.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from adapters import ADAPTERS
from adapters.base import Adapter, Delivery, SignatureError
from engine.storage.store import Store
from webhooks import connections, queue
from webhooks.queue import PENDING, PING, RECEIVED, REJECTED, VERIFIED

log = logging.getLogger(__name__)

NOT_CONNECTED = "NotConnected"

#: Longest error text kept on a delivery row and returned to the platform.
MAX_ERROR_LENGTH = 2000


def fallback_dedupe_key(body: bytes) -> str:
    """For platforms that send no delivery id: identical bodies are the same delivery."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def describe(exc: BaseException) -> str:
    """An exception as the one line kept on a delivery."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:MAX_ERROR_LENGTH]


def not_connected(group: str, platform: str) -> str:
    return (
        f"this store is not connected: dataset group {group!r} has no {platform} connection "
        f"(run `shelfwise connect {platform} --dataset-group {group} --secret ...`)"
    )


@dataclass(frozen=True)
class Acceptance:
    """A stored delivery and the answer the platform gets."""

    delivery_id: int
    status: str
    http_status: int = 200
    #: The JSON body of a 2xx answer.
    body: Any = None
    error: str | None = None
    error_code: str | None = None

    @property
    def queued(self) -> bool:
        """A worker has something to do."""
        return self.status in PENDING


def _label(adapter: Adapter, delivery: Delivery) -> str | None:
    try:
        return adapter.topic(delivery)
    except Exception:  # a label is never worth losing a delivery over
        return None


def accept(store: Store, dataset_group: str, platform: str, headers: dict[str, str], body: bytes) -> Acceptance:
    """Verify and store one delivery; the caller answers with the result. Nothing is parsed.

    Every outcome is stored (rejected ones too, with the reason), and stored before the answer:
    a delivery that got a 2xx is in the database. NotFound for a dataset group that does not exist
    (nothing is stored: there is nowhere to store it).
    """
    adapter_class = ADAPTERS[platform]
    found = connections.lookup(store, dataset_group, platform)
    delivery = Delivery.of(body, headers)

    def keep(status: str, adapter: Adapter, error: str | None = None) -> int:
        return queue.insert_delivery(
            store, found.group_id, platform, _label(adapter, delivery), headers, body, status=status, error=error
        )

    if found.secret is None:
        error = not_connected(found.group_name, platform)
        return Acceptance(keep(REJECTED, adapter_class(), error), REJECTED, 401, error=error, error_code=NOT_CONNECTED)
    adapter: Adapter = adapter_class()
    try:
        adapter = adapter_class.from_connection(found.config)
        if adapter.is_ping(delivery):
            ack = adapter.acknowledgement(delivery)
            delivery_id = keep(PING, adapter)
            return Acceptance(delivery_id, PING, ack.status if ack else 200, ack.body if ack else None)
        found.verify(adapter, delivery)
    except SignatureError as exc:
        # Shopify's compliance rules require a 401 for a bad HMAC (platforms.md §1.6).
        return Acceptance(keep(REJECTED, adapter, exc.message), REJECTED, 401, error=exc.message, error_code=exc.code)
    except Exception as exc:
        # The adapter could not even check it (a bug, a broken setting): keep it for the worker,
        # which retries a few times and records why, and answer 500 so the platform retries too.
        log.exception("%s delivery for %s could not be verified", platform, dataset_group)
        error = describe(exc)
        return Acceptance(keep(RECEIVED, adapter, error), RECEIVED, 500, error=error, error_code="InternalError")

    key = adapter.delivery_id(delivery) or fallback_dedupe_key(body)
    delivery_id, status = queue.insert_unique(
        store, found.group_id, platform, _label(adapter, delivery), headers, body, key
    )
    ack = adapter.acknowledgement(delivery)
    answer = {"status": "accepted" if status == VERIFIED else status, "deliveryId": delivery_id}
    return Acceptance(
        delivery_id, status, ack.status if ack else 200, ack.body if ack and ack.body is not None else answer
    )
