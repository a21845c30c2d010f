"""Changes to a connection's settings made by the intake itself: a back-fill's resume point, the
"disabled" mark an uninstall leaves. One short transaction each, touching only the keys given, so
a concurrent ``shelfwise connect`` or another back-fill's checkpoint is not overwritten wholesale."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select

from adapters.base import Adapter, Delivery, SignatureError
from engine.errors import NotFound
from engine.storage import tables as t
from engine.storage.store import Store

#: Set in a connection's settings when the store uninstalled Shelfwise (epoch seconds).
DISABLED_AT = "disabled_at"
#: A back-fill's per-resource resume state (adapters/paging.py).
BACKFILL = "backfill"


def update_config(store: Store, dataset_group: str, platform: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` into the connection's settings (a None value removes the key)."""
    group = store.get_dataset_group(dataset_group)
    with store.session() as s, s.begin():
        row = s.scalar(
            select(t.Connection)
            .where(t.Connection.dataset_group_id == group.id, t.Connection.platform == platform)
            .with_for_update()
        )
        if row is None:
            raise NotFound(f"dataset group {dataset_group!r} has no {platform} connection")
        config = dict(row.config or {})
        for key, value in changes.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        row.config = config  # a new dict: SQLAlchemy sees the JSON column change
    return config


def disable(store: Store, dataset_group: str, platform: str) -> None:
    """The store uninstalled Shelfwise: keep its data, stop ingesting its events (privacy requests
    are still honoured) until ``shelfwise connect`` is run again."""
    update_config(store, dataset_group, platform, {DISABLED_AT: time.time()})


def is_disabled(config: dict[str, Any]) -> bool:
    return config.get(DISABLED_AT) is not None


@dataclass(frozen=True)
class Lookup:
    """A dataset group and its connection to one platform (None when it has none)."""

    group_id: int
    group_name: str
    secret: str | None
    config: dict[str, Any]
    #: The secret a rotation replaced (``shelfwise connect --rotate``), and until when it counts.
    previous_secret: str | None = None
    previous_secret_until: float | None = None

    def verify(self, adapter: Adapter, delivery: Delivery) -> None:
        """Check the delivery's signature with the current secret, or with the one it replaced
        while a rotation's grace period lasted when the delivery arrived (retries of deliveries
        signed before the switch keep arriving); SignatureError from the current secret otherwise."""
        assert self.secret is not None
        try:
            adapter.verify(delivery, self.secret)
        except SignatureError:
            until = self.previous_secret_until
            arrived = time.time() if delivery.received_at is None else delivery.received_at
            if self.previous_secret is None or until is None or arrived > until:
                raise
            try:
                adapter.verify(delivery, self.previous_secret)
            except SignatureError:
                pass
            else:
                return
            raise


# Built once, with bound parameters: the intake runs it on every request.
_LOOKUP = (
    select(
        t.DatasetGroup.id,
        t.DatasetGroup.name,
        t.Connection.secret,
        t.Connection.config,
        t.Connection.previous_secret,
        t.Connection.previous_secret_until,
    )
    .outerjoin(
        t.Connection,
        (t.Connection.dataset_group_id == t.DatasetGroup.id) & (t.Connection.platform == bindparam("platform")),
    )
    .where(t.DatasetGroup.name == bindparam("group"))
)


def lookup(store: Store, dataset_group: str, platform: str) -> Lookup:
    """The group and its connection in one query."""
    with store.engine.connect() as connection:  # no ORM session: this runs on every request
        row = connection.execute(_LOOKUP, {"group": dataset_group, "platform": platform}).first()
    if row is None:
        raise NotFound(f"dataset group {dataset_group!r} does not exist")
    return Lookup(row.id, row.name, row.secret, dict(row.config or {}), row.previous_secret, row.previous_secret_until)
