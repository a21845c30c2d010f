"""Privacy requests carried out: erase a shopper, export what is held about them, erase a store.

What "everything held about a shopper" means here: their user row, their interactions (and those
of the anonymous ids their guest orders were recorded under), and every raw webhook body that
names them. Raw bodies are the one place names, e-mails and addresses exist at all (records never
hold them), so an erasure purges each stored body that either contains one of the identifiers the
request gave (e-mail, phone) or parses into records about one of the erased ids. Bodies are also
purged for everyone once the retention period has passed (webhooks/worker.py), which bounds how
many an erasure has to look at.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from adapters.actions import ExportShopper, ForgetShopper
from adapters.base import Adapter, Delivery
from engine.jobs.snapshot import discard_beside
from engine.records import Alias, Erasure, Interaction, User
from engine.storage import tables as t
from engine.storage.store import Store
from webhooks import queue

log = logging.getLogger(__name__)


def shoppers(store: Store, group_id: int, user_id: str | None, prefixes: Iterable[str]) -> list[str]:
    """The ids a request is about: the shopper's own, and the owners of their guest orders' events."""
    found: dict[str, None] = {}
    if user_id:
        found[user_id] = None
    prefixes = [p for p in prefixes if p]
    if prefixes:
        with store.session() as s:
            for prefix in prefixes:
                rows = s.scalars(
                    select(t.InteractionRow.user_id)
                    .where(
                        t.InteractionRow.dataset_group_id == group_id,
                        t.InteractionRow.event_id.startswith(prefix, autoescape=True),
                    )
                    .distinct()
                ).all()
                found.update(dict.fromkeys(rows))
    return list(found)


# --------------------------------------------------------------------- raw deliveries
def _user_ids(parsed: Iterable[Any]) -> set[str]:
    found: set[str] = set()
    for record in parsed:
        if isinstance(record, Alias):
            found.update((record.user_id, record.anonymous_id))
        elif isinstance(record, Interaction | User | Erasure | ForgetShopper | ExportShopper) and record.user_id:
            found.add(record.user_id)
    return found


def _aliases(parsed: Iterable[Any]) -> list[tuple[str, str]]:
    return [(r.anonymous_id, r.user_id) for r in parsed if isinstance(r, Alias)]


def plan_erasure(
    store: Store,
    group_id: int,
    platform: str,
    adapter: Adapter,
    user_ids: Iterable[str],
    identifiers: Iterable[str] = (),
) -> tuple[list[str], list[int]]:
    """Who to erase and which stored raw deliveries to purge, for an erasure of ``user_ids``.

    Every stored body of this store is read once: one that contains an identifier (e-mail, phone)
    is doomed outright; all are parsed with the adapter. Aliases found there widen the set
    of ids (the cart token a shopper browsed under before checking out is theirs too), and any
    body whose records name one of the ids is doomed. Returns (every id, delivery ids).
    """
    wanted = set(user_ids)
    needles = [i.lower().encode("utf-8") for i in identifiers if i]
    doomed: list[int] = []
    named: list[tuple[int, set[str]]] = []
    links: list[tuple[str, str]] = []
    for delivery_id, headers, body, received_at in queue.stored_bodies(store, group_id, platform):
        if needles and any(n in body.lower() for n in needles):
            doomed.append(delivery_id)  # and parsed all the same: its aliases may lead further
        try:
            parsed = adapter.parse(Delivery.of(body, headers, received_at=received_at))
        except Exception:  # a body that does not parse names nobody we could find by id
            continue
        named.append((delivery_id, _user_ids(parsed)))
        links += _aliases(parsed)
    grown = True
    while grown:  # follow aliases both ways until nothing new turns up
        grown = False
        for anonymous, known in links:
            if (anonymous in wanted) != (known in wanted):
                wanted.update((anonymous, known))
                grown = True
    doomed += [delivery_id for delivery_id, ids in named if ids & wanted]
    return sorted(wanted), sorted(set(doomed))


# --------------------------------------------------------------------- exports
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:100]


def export_shopper(
    store: Store,
    group_name: str,
    group_id: int,
    platform: str,
    request: ExportShopper,
    export_dir: Path,
    delivery_id: int,
) -> Path:
    """Write what Shelfwise holds about the shopper as JSON; the same request overwrites its file.

    The merchant delivers it to the shopper: Shelfwise holds no names, e-mails or addresses, only
    the ids and events below (raw webhook bodies are purged within the retention period).
    """
    user_ids = shoppers(store, group_id, request.user_id, request.event_id_prefixes)
    columns = (
        t.InteractionRow.user_id,
        t.InteractionRow.item_id,
        t.InteractionRow.event_type,
        t.InteractionRow.event_value,
        t.InteractionRow.timestamp,
        t.InteractionRow.session_id,
        t.InteractionRow.event_id,
        t.InteractionRow.recommendation_id,
    )
    with store.session() as s:
        events = (
            s.execute(
                select(*columns)
                .where(t.InteractionRow.dataset_group_id == group_id, t.InteractionRow.user_id.in_(user_ids))
                .order_by(t.InteractionRow.timestamp, t.InteractionRow.id)
            ).all()
            if user_ids
            else []
        )
    users = store.users(group_name, user_ids) if user_ids else {}
    document = {
        "platform": platform,
        "datasetGroup": group_name,
        "requestId": request.request_id,
        "deliveryId": delivery_id,
        "exportedAt": datetime.now(UTC).isoformat(),
        "note": "Shelfwise keeps shopper ids, attributes without personal data, and events; "
        "no names, e-mail or postal addresses.",
        "shoppers": [
            {
                "userId": user_id,
                "properties": users[user_id].properties if user_id in users else None,
                "interactions": [
                    {
                        "eventType": e.event_type,
                        "itemId": e.item_id,
                        "timestamp": datetime.fromtimestamp(e.timestamp, UTC).isoformat(),
                        "eventValue": e.event_value,
                        "sessionId": e.session_id,
                        "eventId": e.event_id,
                        "recommendationId": e.recommendation_id,
                    }
                    for e in events
                    if e.user_id == user_id
                ],
            }
            for user_id in user_ids
        ],
    }
    name = request.request_id or f"delivery-{delivery_id}"
    target = export_dir / _safe(group_name) / f"{_safe(platform)}-data-request-{_safe(name)}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".json.partial")
    partial.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, target)  # never a half-written export
    log.info("wrote data request export %s (%d shoppers, %d events)", target, len(user_ids), len(events))
    return target


def discard_training_snapshots(store: Store, group_id: int) -> None:
    """After shoppers are erased: delete the group's columnar training snapshots (they hold raw
    events, the erased shoppers' included); the next training reads the store afresh."""
    removed = discard_beside(_artifact_paths(store, group_id))
    if removed:
        log.info("deleted %d training snapshot(s) after an erasure", len(removed))


def _artifact_paths(store: Store, group_id: int) -> list[str]:
    with store.session() as s:
        return list(
            s.scalars(
                select(t.SolutionVersion.artifact_path)
                .join(t.Solution, t.Solution.id == t.SolutionVersion.solution_id)
                .where(t.Solution.dataset_group_id == group_id)
            ).all()
        )


# --------------------------------------------------------------------- the whole store
def erase_store(store: Store, group_name: str, group_id: int, export_dir: Path) -> None:
    """``shop/redact``: delete the dataset group with everything in it (events, catalog, users,
    keys, connections, deliveries, solutions and campaigns), the model files trained on it, its
    training snapshot and the data-request exports written for it."""
    artifacts = _artifact_paths(store, group_id)
    store.delete_dataset_group(group_name)
    for path in filter(None, artifacts):
        Path(path).unlink(missing_ok=True)
    discard_beside(artifacts)  # the training snapshot holds the group's raw events
    shutil.rmtree(export_dir / _safe(group_name), ignore_errors=True)
    log.warning("erased dataset group %s at the store's request (%d model files)", group_name, len(artifacts))
