"""Many shoppers' latest events in one go, as columns (batch jobs read thousands of users a block).

:meth:`Store.latest_events` is one indexed query per shopper, right for a request and far too slow
for a hundred thousand shoppers; this reads a block of shoppers per query. Rows are fetched from
the DB-API cursor as plain tuples: turning a million rows into ORM-level Row objects costs about
three times the query itself, and a batch job reads every event of every shopper in it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Select, select

from engine.storage import tables as t
from engine.storage.store import Store

#: Shoppers per query: far below SQLite's limit on bound parameters (32,766).
USERS_PER_QUERY = 5000


@dataclass(frozen=True)
class EventColumns:
    """Events of several users, grouped by user in the order asked for, each user's oldest first.

    Ids are object arrays of Python strings: cheap to build from database rows and to look up in
    a model's vocabulary (fixed-width numpy strings would cost more than the query).
    """

    user_ids: np.ndarray  # object (str) per event
    item_ids: np.ndarray  # object (str)
    event_types: np.ndarray  # object (str)
    event_values: np.ndarray  # float64, NaN where absent
    timestamps: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.user_ids)


def latest_events_of_users(
    store: Store, dataset_group: str, user_ids: Sequence[str], *, limit: int | None = None
) -> EventColumns:
    """The newest ``limit`` events (all when None) of each of ``user_ids`` (unknown ids have none)."""
    group = store.get_dataset_group(dataset_group)
    wanted = list(dict.fromkeys(user_ids))
    rows: list[tuple[Any, ...]] = []
    columns = (
        t.InteractionRow.user_id,
        t.InteractionRow.item_id,
        t.InteractionRow.event_type,
        t.InteractionRow.event_value,
        t.InteractionRow.timestamp,
    )
    with store.engine.connect() as conn, _collector_paused():
        for start in range(0, len(wanted), USERS_PER_QUERY):
            stmt = (
                select(*columns)
                .where(
                    t.InteractionRow.dataset_group_id == group.id,
                    t.InteractionRow.user_id.in_(wanted[start : start + USERS_PER_QUERY]),
                )
                .order_by(t.InteractionRow.user_id, t.InteractionRow.timestamp, t.InteractionRow.id)
            )
            rows.extend(_fetch_tuples(conn, stmt))
    if not rows:
        empty = np.empty(0, dtype=object)
        return EventColumns(empty, empty, empty, np.empty(0), np.empty(0))
    users, items, types, values, stamps = (_objects(c) for c in zip(*rows, strict=True))
    # Group in the caller's order, keeping (timestamp, id) order inside each user: the
    # database's collation need not sort ids the way Python does.
    position = {u: n for n, u in enumerate(wanted)}
    rank = np.fromiter(map(position.__getitem__, users), dtype=np.int64, count=len(users))
    order = np.argsort(rank, kind="stable") if np.any(rank[1:] < rank[:-1]) else slice(None)
    cols = EventColumns(
        users[order],
        items[order],
        types[order],
        np.fromiter((np.nan if v is None else v for v in values), dtype=np.float64, count=len(values))[order],
        stamps.astype(np.float64)[order],
    )
    return cols if limit is None else _newest(cols, rank[order], limit)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A million fetched rows are a million new tuples, and each few hundred allocations make
    Python's cyclic collector walk the young ones again; none of them can form a cycle."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _objects(column: tuple[Any, ...]) -> np.ndarray:
    out = np.empty(len(column), dtype=object)
    out[:] = column
    return out


def _newest(cols: EventColumns, rank: np.ndarray, limit: int) -> EventColumns:
    """Keep each user's last ``limit`` events (the columns are grouped, oldest first)."""
    starts = np.flatnonzero(np.r_[True, rank[1:] != rank[:-1]])
    ends = np.r_[starts[1:], len(rank)]
    from_end = np.repeat(ends, ends - starts) - np.arange(len(rank))
    keep = from_end <= limit
    if keep.all():
        return cols
    return EventColumns(*(getattr(cols, f)[keep] for f in EventColumns.__dataclass_fields__))


def _fetch_tuples(conn, stmt: Select) -> list[tuple[Any, ...]]:
    """Run a Core select through the raw DB-API cursor and return plain tuples."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    args = tuple(params[name] for name in compiled.positiontup) if compiled.positional else params
    cursor = conn.connection.cursor()
    try:
        cursor.execute(compiled.string, args)
        return cursor.fetchall()
    finally:
        cursor.close()
