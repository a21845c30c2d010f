"""Verify → dedupe → parse → ingest for one *stored* delivery, with no HTTP in sight.

The Flask view stores the raw delivery and calls :func:`process_delivery`; a replay command calls
the very same function for deliveries already stored (``failed`` after a bug fix, ``rejected``
after a secret was corrected), so live and replayed deliveries can never be treated differently.
This is dj-stripe's lesson: keep every raw delivery, record why it failed, allow replay.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from adapters import ADAPTERS
from adapters.base import Delivery, SignatureError
from engine.errors import NotFound
from engine.storage.store import DeliveryInfo, Store

log = logging.getLogger(__name__)

# Delivery statuses (engine/storage/tables.py WebhookDelivery.status).
RECEIVED = "received"
REJECTED = "rejected"
DUPLICATE = "duplicate"
PROCESSED = "processed"
FAILED = "failed"

NOT_CONNECTED = "NotConnected"

#: Longest error text kept on a delivery row and returned to the platform.
MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery, and how to answer the platform."""

    delivery_id: int
    status: str
    records: int = 0
    error: str | None = None
    #: Machine-readable reason for a rejection (the API error shape's ``code``).
    error_code: str | None = None
    #: HTTP code for the platform: 401 for a rejected delivery, 200 for everything else. A
    #: failure *after* verification still answers 200 so the platform does not retry and, after
    #: repeated failures, delete the subscription (Shopify: 8 failures; WooCommerce: 5). The
    #: delivery stays stored as "failed" and can be replayed.
    http_status: int = 200
    #: True when the delivery had been processed before and nothing was ingested this time.
    already_processed: bool = False

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "deliveryId": self.delivery_id}
        if self.status == PROCESSED:
            body["records"] = self.records
        if self.error:
            body["error"] = self.error
        return body


def fallback_dedupe_key(body: bytes) -> str:
    """For platforms that send no delivery id: identical bodies are the same delivery."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _describe(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:MAX_ERROR_LENGTH]


def _load(store: Store, delivery_id: int) -> DeliveryInfo:
    found = store.deliveries(ids=[delivery_id])
    if not found:
        raise NotFound(f"webhook delivery {delivery_id} does not exist")
    return found[0]


def process_delivery(store: Store, delivery_id: int) -> Outcome:
    """Run a stored delivery through verify, dedupe, parse and ingest; mark and return the outcome.

    Safe to call again on the same delivery (replay):

    * a delivery already ``processed`` is not ingested twice;
    * a ``failed`` delivery already holds its own dedupe key (it was claimed before parsing), so the
      row's own key is checked before claiming: claiming again would not conflict on SQLite or
      PostgreSQL, but checking first keeps the rule explicit and skips a write;
    * ``duplicate`` deliveries stay duplicates (another delivery holds the key).

    Ingest is one transaction, so a delivery marked ``failed`` left nothing behind.
    """
    info = _load(store, delivery_id)
    if info.status == PROCESSED:
        return Outcome(delivery_id, PROCESSED, records=info.records, already_processed=True)

    adapter_class = ADAPTERS.get(info.platform)
    if adapter_class is None:
        error = f"no adapter for platform {info.platform!r}"
        store.mark_delivery(delivery_id, FAILED, error=error)
        return Outcome(delivery_id, FAILED, error=error)
    delivery = Delivery.of(info.body, info.headers)

    # Verify before anything reads the body: a forged request must not even claim a delivery id
    # (tables.WebhookDelivery: the dedupe key is set only after the signature checks out).
    try:
        secret, config = store.connection(info.dataset_group, info.platform)
    except NotFound:
        error = (
            f"this store is not connected: dataset group {info.dataset_group!r} has no {info.platform} "
            f"connection (run `shelfwise connect {info.platform} --dataset-group {info.dataset_group} "
            "--secret ...`)"
        )
        store.mark_delivery(delivery_id, REJECTED, error=error)
        return Outcome(delivery_id, REJECTED, error=error, error_code=NOT_CONNECTED, http_status=401)
    adapter = adapter_class.from_connection(config)
    try:
        adapter.verify(delivery, secret)
    except SignatureError as exc:
        store.mark_delivery(delivery_id, REJECTED, error=exc.message)
        return Outcome(delivery_id, REJECTED, error=exc.message, error_code=exc.code, http_status=401)

    # Dedupe by the database's unique constraint, never by select-then-insert: platform retries
    # arrive concurrently (STYLE.md, practice 5).
    key = adapter.delivery_id(delivery) or fallback_dedupe_key(info.body)
    if info.dedupe_key != key and not store.claim_delivery(delivery_id, key):
        store.mark_delivery(delivery_id, DUPLICATE)
        return Outcome(delivery_id, DUPLICATE)

    try:
        records = adapter.parse(delivery)
        # The delivery is marked processed inside the ingest's own transaction: no crash can leave
        # it ingested but unmarked, to be ingested again by a replay.
        counts = store.ingest(info.dataset_group, records, processed_delivery=delivery_id)
    except Exception as exc:  # any failure here is recorded on the delivery, never raised to the platform
        error = _describe(exc)
        log.warning("webhook delivery %s (%s %s) failed: %s", delivery_id, info.platform, info.topic, error)
        store.mark_delivery(delivery_id, FAILED, error=error)
        return Outcome(delivery_id, FAILED, error=error)
    return Outcome(delivery_id, PROCESSED, records=sum(counts.values()))
