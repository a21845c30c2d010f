"""The delivery table as a durable queue: store, claim with a lease, list, purge.

No broker: the database that holds the deliveries is the queue, so whatever was acknowledged
survives any crash. A worker claims deliveries with one ``UPDATE ... WHERE status IN (...)
RETURNING id``; the status re-check in the WHERE makes two workers (threads or processes, SQLite or
PostgreSQL) unable to take the same delivery, and the lease lets a delivery whose worker died be
taken over once it expires.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from engine.storage import tables as t
from engine.storage.store import Store

# Delivery statuses (tables.WebhookDelivery.status).
RECEIVED = "received"  # stored, not yet verified (an older intake, or verification could not run)
VERIFIED = "verified"  # stored, signature checked, dedupe key claimed: waiting for a worker
PROCESSING = "processing"  # claimed by a worker until its lease expires
PROCESSED = "processed"
FAILED = "failed"  # authentic but could not be processed; kept with the reason, replayable
REJECTED = "rejected"  # bad or missing signature, or the store is not connected
DUPLICATE = "duplicate"  # another delivery holds the same platform delivery id
PING = "ping"  # a platform's unsigned hand-shake (WooCommerce), answered and kept for the record
ERASED = "erased"  # its shopper was erased before it was processed: never processed

#: Waiting for a worker.
PENDING = (RECEIVED, VERIFIED)
#: Done with: their raw bodies are purged once the retention period has passed.
SETTLED = (PROCESSED, FAILED, REJECTED, DUPLICATE, PING, ERASED)

_table = t.WebhookDelivery.__table__
_c = _table.c
# Built once: the intake runs this on every request, and building a statement costs more than
# running it on SQLite.
_INSERT = insert(_table).returning(_c.id)


@dataclass(frozen=True)
class DeliverySummary:
    """A delivery without its body: what ``shelfwise webhooks list`` shows."""

    id: int
    dataset_group: str
    platform: str
    topic: str | None
    status: str
    error: str | None
    records: int
    attempts: int
    received_at: float
    processed_at: float | None
    purged: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "datasetGroup": self.dataset_group,
            "platform": self.platform,
            "topic": self.topic,
            "status": self.status,
            "error": self.error,
            "records": self.records,
            "attempts": self.attempts,
            "receivedAt": self.received_at,
            "processedAt": self.processed_at,
            "bodyPurged": self.purged,
        }


def insert_delivery(
    store: Store,
    group_id: int,
    platform: str,
    topic: str | None,
    headers: dict[str, str],
    body: bytes,
    *,
    status: str,
    dedupe_key: str | None = None,
    error: str | None = None,
) -> int:
    """One INSERT, committed before the caller answers; IntegrityError when the key is taken."""
    now = time.time()
    values = {
        "dataset_group_id": group_id,
        "platform": platform,
        "topic": topic[:128] if topic else None,  # the column's width: an odd header must not lose it
        "headers": headers,
        "body": body,
        "received_at": now,
        "status": status,
        "dedupe_key": dedupe_key[:256] if dedupe_key else None,
        "error": error,
        "records": 0,
        "attempts": 0,
        "processed_at": now if status not in PENDING else None,
    }
    # A bare connection rather than an ORM session: this runs on every request, and the session's
    # bookkeeping costs as much as the INSERT itself.
    with store.engine.begin() as connection:
        return connection.execute(_INSERT, values).scalar_one()


def insert_unique(
    store: Store, group_id: int, platform: str, topic: str | None, headers: dict[str, str], body: bytes, key: str
) -> tuple[int, str]:
    """Store a verified delivery under its dedupe key, or as a duplicate when a retry already holds
    it. The unique constraint decides (never select-then-insert): concurrent retries race safely."""
    try:
        return insert_delivery(
            store, group_id, platform, topic, headers, body, status=VERIFIED, dedupe_key=key
        ), VERIFIED
    except IntegrityError:
        return insert_delivery(store, group_id, platform, topic, headers, body, status=DUPLICATE), DUPLICATE


def _claimable(now: float, statuses: Iterable[str]) -> Any:
    return or_(_c.status.in_(list(statuses)), and_(_c.status == PROCESSING, _c.lease_until < now))


def claim(
    store: Store,
    *,
    limit: int,
    lease_seconds: float,
    ids: Iterable[int] | None = None,
    statuses: Iterable[str] = PENDING,
) -> list[tuple[int, int]]:
    """Take up to ``limit`` deliveries (oldest first) for this worker: (id, attempts) pairs.

    Claimable: a status in ``statuses``, or "processing" with an expired lease (its worker died).
    """
    now = time.time()
    statuses = list(statuses)
    chosen = select(_c.id).where(_claimable(now, statuses)).order_by(_c.id).limit(limit)
    if ids is not None:
        chosen = chosen.where(_c.id.in_(list(ids)))
    statement = (
        update(_table)
        .where(_c.id.in_(chosen.scalar_subquery()), _claimable(now, statuses))
        .values(status=PROCESSING, lease_until=now + lease_seconds, attempts=_c.attempts + 1)
        .returning(_c.id, _c.attempts)
    )
    with store.session() as s, s.begin():
        rows = s.execute(statement).all()
    return sorted((row.id, row.attempts) for row in rows)


def renew(store: Store, ids: Iterable[int], lease_seconds: float) -> None:
    """Extend the lease on deliveries still being processed (before a slow privacy request)."""
    wanted = list(ids)
    if wanted:
        with store.session() as s, s.begin():
            s.execute(
                update(_table)
                .where(_c.id.in_(wanted), _c.status == PROCESSING)
                .values(lease_until=time.time() + lease_seconds)
            )


def summaries(
    store: Store,
    *,
    dataset_group: str | None = None,
    statuses: Iterable[str] | None = None,
    ids: Iterable[int] | None = None,
    limit: int | None = None,
) -> list[DeliverySummary]:
    """Deliveries without their bodies, newest last (the most recent ``limit`` when given)."""
    query = select(
        _c.id,
        t.DatasetGroup.name,
        _c.platform,
        _c.topic,
        _c.status,
        _c.error,
        _c.records,
        _c.attempts,
        _c.received_at,
        _c.processed_at,
        _c.purged_at,
    ).join(t.DatasetGroup, t.DatasetGroup.id == _c.dataset_group_id)
    if dataset_group is not None:
        query = query.where(t.DatasetGroup.name == dataset_group)
    if statuses is not None:
        query = query.where(_c.status.in_(list(statuses)))
    if ids is not None:
        query = query.where(_c.id.in_(list(ids)))
    query = query.order_by(_c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with store.session() as s:
        rows = s.execute(query).all()
    return [
        DeliverySummary(
            r.id,
            r.name,
            r.platform,
            r.topic,
            r.status,
            r.error,
            r.records or 0,
            r.attempts or 0,
            r.received_at,
            r.processed_at,
            r.purged_at is not None,
        )
        for r in reversed(rows)
    ]


def count_by_status(store: Store, dataset_group_id: int | None = None) -> dict[str, int]:
    query = select(_c.status, func.count()).group_by(_c.status)
    if dataset_group_id is not None:
        query = query.where(_c.dataset_group_id == dataset_group_id)
    with store.session() as s:
        return {status: n for status, n in s.execute(query).all()}


def purge(store: Store, ids: Iterable[int]) -> int:
    """Erase raw bodies and headers (they hold names, e-mails, addresses); a delivery that was
    still waiting is marked ``erased`` so nobody processes the shopper's data afterwards."""
    wanted = list(ids)
    if not wanted:
        return 0
    now = time.time()
    statement = (
        update(_table)
        .where(_c.id.in_(wanted), _c.purged_at.is_(None))
        .values(
            body=b"",
            headers={},
            purged_at=now,
            status=case((_c.status.in_([*PENDING, PROCESSING, FAILED, REJECTED]), ERASED), else_=_c.status),
        )
    )
    with store.session() as s, s.begin():
        return s.execute(statement).rowcount


def purge_expired(store: Store, *, older_than: float) -> int:
    """The retention sweep: bodies of settled deliveries received before ``older_than``."""
    statement = (
        update(_table)
        .where(_c.status.in_(list(SETTLED)), _c.purged_at.is_(None), _c.received_at < older_than)
        .values(body=b"", headers={}, purged_at=time.time())
    )
    with store.session() as s, s.begin():
        return s.execute(statement).rowcount


def stored_bodies(store: Store, group_id: int, platform: str) -> Iterator[tuple[int, dict[str, str], bytes, float]]:
    """(id, headers, body, received_at) of every delivery of a store still holding its body."""
    query = (
        select(_c.id, _c.headers, _c.body, _c.received_at)
        .where(_c.dataset_group_id == group_id, _c.platform == platform, _c.purged_at.is_(None))
        .order_by(_c.id)
        .execution_options(yield_per=500)
    )
    with store.session() as s:
        for row in s.execute(query):
            yield row.id, dict(row.headers or {}), bytes(row.body or b""), row.received_at


@dataclass(frozen=True)
class StoredDelivery:
    """One delivery with its raw bytes, as a worker or a replay processes it."""

    id: int
    dataset_group: str
    dataset_group_id: int
    platform: str
    topic: str | None
    headers: dict[str, str]
    body: bytes
    status: str
    dedupe_key: str | None
    received_at: float
    purged: bool


def load(store: Store, ids: Iterable[int]) -> dict[int, StoredDelivery]:
    """Deliveries with their raw bytes, by id (ids that do not exist are left out)."""
    wanted = list(ids)
    if not wanted:
        return {}
    query = (
        select(_table, t.DatasetGroup.name.label("group_name"))
        .join(t.DatasetGroup, t.DatasetGroup.id == _c.dataset_group_id)
        .where(_c.id.in_(wanted))
    )
    with store.session() as s:
        rows = s.execute(query).all()
    return {
        row.id: StoredDelivery(
            row.id,
            row.group_name,
            row.dataset_group_id,
            row.platform,
            row.topic,
            dict(row.headers or {}),
            bytes(row.body or b""),
            row.status,
            row.dedupe_key,
            row.received_at,
            row.purged_at is not None,
        )
        for row in rows
    }
