"""Storage for filters, and the reads that filters make at request time.

Kept out of :mod:`engine.storage.store` so the Store stays a narrow interface; these functions
take a Store and use its sessions and tables like any other caller inside the storage layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError

from engine.errors import AlreadyExists, NotFound
from engine.storage import tables as t
from engine.storage.store import Store, check_name


@dataclass(frozen=True)
class FilterInfo:
    id: int
    dataset_group: str
    name: str
    expression: str
    created_at: float


def _info(row: t.Filter, dataset_group: str) -> FilterInfo:
    return FilterInfo(row.id, dataset_group, row.name, row.expression, row.created_at)


def add_filter(store: Store, dataset_group: str, name: str, expression: str) -> FilterInfo:
    """Store an expression that has already been parsed; a name is unique per dataset group."""
    check_name(name, "filter")
    group = store.get_dataset_group(dataset_group)
    row = t.Filter(dataset_group_id=group.id, name=name, expression=expression)
    try:
        with store.session() as s, s.begin():
            s.add(row)
    except IntegrityError as exc:
        raise AlreadyExists(f"filter {name!r} already exists in {dataset_group!r}") from exc
    return _info(row, dataset_group)


def get_filter(store: Store, dataset_group: str, name: str) -> FilterInfo:
    group = store.get_dataset_group(dataset_group)
    with store.session() as s:
        row = s.scalar(select(t.Filter).where(t.Filter.dataset_group_id == group.id, t.Filter.name == name))
    if row is None:
        raise NotFound(f"filter {name!r} does not exist in {dataset_group!r}")
    return _info(row, dataset_group)


def list_filters(store: Store, dataset_group: str) -> list[FilterInfo]:
    group = store.get_dataset_group(dataset_group)
    with store.session() as s:
        rows = s.scalars(select(t.Filter).where(t.Filter.dataset_group_id == group.id).order_by(t.Filter.name)).all()
    return [_info(r, dataset_group) for r in rows]


def delete_filter(store: Store, dataset_group: str, name: str) -> None:
    """Personalize has no UpdateFilter: a filter is changed by deleting and creating it again."""
    group = store.get_dataset_group(dataset_group)
    with store.session() as s, s.begin():
        deleted = s.execute(
            delete(t.Filter).where(t.Filter.dataset_group_id == group.id, t.Filter.name == name)
        ).rowcount
    if not deleted:
        raise NotFound(f"filter {name!r} does not exist in {dataset_group!r}")


# No DISTINCT in SQL: with it SQLite's planner walks the (group, item) index over the whole
# dataset group instead of this user's range (hundreds of ms at 1M events). Built once: it is on
# the path of every filtered recommendation.
_USER_ITEM_EVENT_TYPES = select(t.InteractionRow.item_id, t.InteractionRow.event_type).where(
    t.InteractionRow.dataset_group_id == bindparam("group"), t.InteractionRow.user_id == bindparam("user")
)


def user_item_event_types(store: Store, dataset_group: str, user_id: str) -> list[tuple[str, str]]:
    """Every (item id, event type) the user ever interacted with: the whole history, no cap.

    Personalize's filters see only the latest 100-200 events per user; a self-hosted engine can
    afford all of them (one range scan of ix_interactions_user_time), so "already purchased"
    stays true for a shopper's oldest purchase too, and an event sent a moment ago counts.
    """
    group = store.get_dataset_group(dataset_group)
    with store.engine.connect() as conn:
        rows = conn.execute(_USER_ITEM_EVENT_TYPES, {"group": group.id, "user": user_id}).all()
    return list(dict.fromkeys((r.item_id, r.event_type) for r in rows))


def users_event_types(store: Store, dataset_group: str) -> list[tuple[str, str]]:
    """Every (user id, event type) of the dataset group, once each: what a user filter on
    ``Interactions.EVENT_TYPE`` (batch segments) tests, read once per job rather than per user."""
    group = store.get_dataset_group(dataset_group)
    with store.session() as s:
        rows = s.execute(
            select(t.InteractionRow.user_id, t.InteractionRow.event_type)
            .where(t.InteractionRow.dataset_group_id == group.id)
            .distinct()
        ).all()
    return [(r.user_id, r.event_type) for r in rows]


def catalog_rows(
    store: Store, dataset_group: str, *, updated_since: float | None = None
) -> list[tuple[str, dict[str, Any], float | None, float]]:
    """(item id, properties, creation timestamp, updated_at) of the group's items, or of those
    written at or after ``updated_since``: plain columns, no ORM objects, as a catalog of 100,000
    items is read whole when a server first filters on it."""
    group = store.get_dataset_group(dataset_group)
    query = select(t.ItemRow.item_id, t.ItemRow.properties, t.ItemRow.creation_timestamp, t.ItemRow.updated_at).where(
        t.ItemRow.dataset_group_id == group.id
    )
    if updated_since is not None:
        query = query.where(t.ItemRow.updated_at >= updated_since)
    with store.session() as s:
        rows = s.execute(query).all()
    return [(r.item_id, dict(r.properties or {}), r.creation_timestamp, r.updated_at) for r in rows]


def catalog_version(store: Store, dataset_group: str) -> tuple[int, float]:
    """(count, newest update) of the group's items: changes whenever an item is added, replaced or
    erased, so a cached catalog knows when to reload."""
    group = store.get_dataset_group(dataset_group)
    with store.session() as s:
        count, newest = s.execute(
            select(func.count(), func.max(t.ItemRow.updated_at)).where(t.ItemRow.dataset_group_id == group.id)
        ).one()
    return int(count), float(newest or 0.0)
