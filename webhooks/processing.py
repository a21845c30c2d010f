"""After the answer: verify again, dedupe, parse, ingest, carry out privacy requests.

Runs in the background worker (webhooks/worker.py) for deliveries that :func:`webhooks.acceptance.accept`
stored, and for ``shelfwise webhooks replay``: live and replayed deliveries go through the very same
function (dj-stripe's lesson: keep every raw delivery, record why it failed, allow replay).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from adapters import ADAPTERS
from adapters.actions import PRIVACY_ACTIONS, DisconnectStore, ExportShopper, ForgetShopper
from adapters.base import Adapter, Delivery, SignatureError
from engine.errors import NotFound
from engine.records import Alias, Erasure
from engine.storage.store import Store
from webhooks import connections, privacy, queue
from webhooks.acceptance import describe, fallback_dedupe_key, not_connected
from webhooks.queue import DUPLICATE, ERASED, FAILED, PING, PROCESSED, REJECTED
from webhooks.settings import IntakeSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What processing did with one delivery."""

    delivery_id: int
    status: str
    records: int = 0
    error: str | None = None
    #: True when the delivery had been processed before and nothing was ingested this time.
    already_processed: bool = False


@dataclass(frozen=True)
class _Parsed:
    """A verified, deduped delivery and what its adapter made of it, ready to ingest."""

    info: queue.StoredDelivery
    adapter: Adapter
    config: dict[str, Any]
    parsed: list[Any]

    @property
    def simple(self) -> bool:
        """Only records to store: it can share a transaction with other deliveries."""
        return not connections.is_disabled(self.config) and not any(
            isinstance(p, PRIVACY_ACTIONS) or (isinstance(p, Erasure) and p.user_id) for p in self.parsed
        )


def process_delivery(store: Store, delivery_id: int, settings: IntakeSettings | None = None) -> Outcome:
    """Verify, dedupe, parse and ingest one stored delivery; mark it and return the outcome.

    Safe to call again on the same delivery (replay):

    * a delivery already ``processed`` is not ingested twice;
    * a ``failed`` delivery already holds its own dedupe key, so its own key is not a duplicate;
    * ``duplicate`` deliveries stay duplicates (another delivery holds the key);
    * ``rejected`` ones are verified again (after the secret was corrected).
    """
    outcomes = process_deliveries(store, [delivery_id], settings)
    if not outcomes:
        raise NotFound(f"webhook delivery {delivery_id} does not exist")
    return outcomes[0]


def process_deliveries(store: Store, ids: list[int], settings: IntakeSettings | None = None) -> list[Outcome]:
    """Process stored deliveries in order; consecutive ones that only carry records share one
    transaction (the worker's throughput), and any one that fails there is retried alone, so one
    bad delivery never takes others down with it. Ingest marks each delivery processed in the
    same transaction as its records: a crash cannot leave one ingested but unmarked.
    """
    settings = settings or IntakeSettings()
    infos = queue.load(store, ids)
    outcomes: dict[int, Outcome] = {}
    secrets_seen: dict[tuple[str, str], connections.Lookup | None] = {}
    batch: list[_Parsed] = []
    for position, delivery_id in enumerate(ids):
        info = infos.get(delivery_id)
        if info is None:
            continue
        step = _prepare(store, info, secrets_seen)
        if isinstance(step, Outcome):
            outcomes[delivery_id] = step
        elif step.simple:
            batch.append(step)
        else:
            # In order: what came before is stored before an erasure, and what comes after is
            # read again (an erasure may have purged it meanwhile).
            outcomes.update(_ingest(store, batch))
            batch = []
            queue.renew(store, ids[position:], settings.lease_seconds)  # an erasure may take a while
            try:
                outcomes[delivery_id] = _apply(store, step, settings)
            except Exception as exc:
                outcomes[delivery_id] = _failed(store, info, exc)
            infos.update(queue.load(store, ids[position + 1 :]))
    outcomes.update(_ingest(store, batch))
    return [outcomes[i] for i in ids if i in outcomes]


def _prepare(
    store: Store, info: queue.StoredDelivery, secrets_seen: dict[tuple[str, str], connections.Lookup | None]
) -> Outcome | _Parsed:
    """Everything before ingest: verify, dedupe, parse. Settles the delivery unless it parses."""
    if info.status == PROCESSED:
        return Outcome(info.id, PROCESSED, already_processed=True)
    if info.purged:
        error = "the raw body was purged (retention period or a privacy erasure); nothing to process"
        if info.status == ERASED:
            return Outcome(info.id, ERASED, error=error)
        store.mark_delivery(info.id, FAILED, error=error)
        return Outcome(info.id, FAILED, error=error)

    def settle(status: str, error: str | None = None) -> Outcome:
        store.mark_delivery(info.id, status, error=error)
        return Outcome(info.id, status, error=error)

    adapter_class = ADAPTERS.get(info.platform)
    if adapter_class is None:
        return settle(FAILED, f"no adapter for platform {info.platform!r}")
    key = (info.dataset_group, info.platform)
    if key not in secrets_seen:
        try:
            found = connections.lookup(store, info.dataset_group, info.platform)
        except NotFound:
            found = None
        secrets_seen[key] = found if found is not None and found.secret is not None else None
    connection = secrets_seen[key]
    if connection is None:
        return settle(REJECTED, not_connected(info.dataset_group, info.platform))
    config = connection.config
    delivery = Delivery.of(info.body, info.headers, received_at=info.received_at)
    try:
        adapter = adapter_class.from_connection(config)
        if adapter.is_ping(delivery):
            return settle(PING)
        connection.verify(adapter, delivery)
    except SignatureError as exc:
        return settle(REJECTED, exc.message)
    except Exception as exc:
        return settle(FAILED, describe(exc))

    # Dedupe by the database's unique constraint, never by select-then-insert (STYLE.md, 5). A
    # verified delivery claimed its key when it was accepted; a replayed one claims it now.
    dedupe_key = adapter.delivery_id(delivery) or fallback_dedupe_key(info.body)
    if info.dedupe_key != dedupe_key and not store.claim_delivery(info.id, dedupe_key):
        return settle(DUPLICATE)
    try:
        parsed = adapter.parse(delivery)
    except Exception as exc:
        return _failed(store, info, exc)
    return _Parsed(info, adapter, config, list(parsed))


def _failed(store: Store, info: queue.StoredDelivery, exc: BaseException) -> Outcome:
    """Recorded on the delivery, shown by ``webhooks list --failed``, replayable."""
    error = describe(exc)
    log.warning("webhook delivery %s (%s %s) failed: %s", info.id, info.platform, info.topic, error)
    store.mark_delivery(info.id, FAILED, error=error)
    return Outcome(info.id, FAILED, error=error)


def _apply(store: Store, step: _Parsed, settings: IntakeSettings) -> Outcome:
    """A delivery with privacy or lifecycle requests (or a disabled connection), in its own
    transaction: carry out the requests, then ingest the records.

    Side effects before the ingest (an export file, the disabled mark) are idempotent, so a failed
    ingest that is replayed repeats them harmlessly. Raw bodies are purged only once the erasure
    is committed.
    """
    info = step.info
    actions = [p for p in step.parsed if isinstance(p, PRIVACY_ACTIONS)]
    records = [p for p in step.parsed if not isinstance(p, PRIVACY_ACTIONS)]
    if records and connections.is_disabled(step.config):
        log.info(
            "%s %s: connection disabled (the store uninstalled); %d records not ingested",
            info.platform,
            info.dataset_group,
            len(records),
        )
        records = []
    erase = [r.user_id for r in records if isinstance(r, Erasure) and r.user_id]
    identifiers: list[str] = []
    for action in actions:
        if isinstance(action, ForgetShopper):
            erase += privacy.shoppers(store, info.dataset_group_id, action.user_id, action.event_id_prefixes)
            identifiers += action.identifiers
        elif isinstance(action, ExportShopper):
            privacy.export_shopper(
                store, info.dataset_group, info.dataset_group_id, info.platform, action, settings.export_dir, info.id
            )
        elif isinstance(action, DisconnectStore) and action.erase:
            privacy.erase_store(store, info.dataset_group, info.dataset_group_id, settings.export_dir)
            return Outcome(info.id, PROCESSED)  # the delivery went with its dataset group
        elif isinstance(action, DisconnectStore):
            connections.disable(store, info.dataset_group, info.platform)

    doomed: list[int] = []
    if erase or identifiers:
        everyone, doomed = privacy.plan_erasure(
            store, info.dataset_group_id, info.platform, step.adapter, erase, identifiers
        )
        already = {r.user_id for r in records if isinstance(r, Erasure)}
        records += [Erasure(user_id=u) for u in everyone if u not in already]
        log.info("erasing %d shoppers of %s; purging %d raw deliveries", len(everyone), info.dataset_group, len(doomed))

    counts = store.ingest(info.dataset_group, records, processed_delivery=info.id)
    # A privacy request's own body names the shopper (or the shop owner) too.
    queue.purge(store, [*doomed, *([info.id] if actions else [])])
    if erase or identifiers:
        privacy.discard_training_snapshots(store, info.dataset_group_id)
    return Outcome(info.id, PROCESSED, records=sum(counts.values()))


def _ingest(store: Store, batch: list[_Parsed]) -> dict[int, Outcome]:
    """Store the records of several deliveries of one group in one transaction; alone on failure."""
    outcomes: dict[int, Outcome] = {}
    by_group: dict[str, list[_Parsed]] = {}
    for step in batch:
        by_group.setdefault(step.info.dataset_group, []).append(step)
    for group, steps in by_group.items():
        records = [record for step in steps for record in step.parsed]
        # Aliases last: each one makes the store flush what it holds, so interleaved they would
        # cost a round of statements per delivery. Joining an anonymous id to a customer after
        # the batch's events are in also reaches the events that came in this very batch.
        records.sort(key=lambda record: isinstance(record, Alias))
        try:
            store.ingest(group, records, processed_deliveries={step.info.id: len(step.parsed) for step in steps})
            outcomes.update({s.info.id: Outcome(s.info.id, PROCESSED, records=len(s.parsed)) for s in steps})
        except Exception:
            for step in steps:  # find the one that cannot be stored; the others still are
                try:
                    store.ingest(group, step.parsed, processed_delivery=step.info.id)
                    outcomes[step.info.id] = Outcome(step.info.id, PROCESSED, records=len(step.parsed))
                except Exception as exc:
                    outcomes[step.info.id] = _failed(store, step.info, exc)
    return outcomes
