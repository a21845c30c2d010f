"""Catalogue-wide recent activity for recipes that answer from what everybody is doing now.

A recipe asks for it with :meth:`engine.recipes.Recipe.activity_request` (trending-now: counts per
item in its trend window and the windows before it). This module counts it in the store and hands
it over in ``Query.activity``, so trends follow new events between trainings while the recipe
still never touches the database. One count per dataset group and request shape is shared by every
request for ``ttl_s`` seconds (a minute by default): a busy campaign costs one grouped count a
minute per worker, not one per request, and an answer is at most that much behind the events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from sqlalchemy import func, select

from engine.recipes import Query, Recipe
from engine.recipes.activity import ActivityRequest, RecentActivity
from engine.storage import Store
from engine.storage import tables as t
from engine.storage.store import NOT_INTERACTIONS

DEFAULT_TTL_SECONDS = 60.0


class ActivityService:
    def __init__(
        self, store: Store, *, ttl_s: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[tuple[str, ActivityRequest], tuple[RecentActivity, float]] = {}
        self._lock = threading.Lock()

    def attach(self, dataset_group: str, model: Recipe, query: Query) -> Query:
        """The query with the activity the model asks for (unchanged when it asks for none)."""
        request = model.activity_request()
        if request is None:
            return query
        return replace(query, activity=self.activity(dataset_group, request))

    def activity(self, dataset_group: str, request: ActivityRequest) -> RecentActivity:
        key = (dataset_group, request)
        cached = self._cache.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        with self._lock:  # one count per expiry, however many requests arrive meanwhile
            cached = self._cache.get(key)
            if cached is None or cached[1] <= time.monotonic():
                found = count_recent(self.store, dataset_group, request, now=self.clock())
                cached = (found, time.monotonic() + self.ttl_s)
                self._cache[key] = cached
            return cached[0]


def count_recent(store: Store, dataset_group: str, request: ActivityRequest, *, now: float) -> RecentActivity:
    """Interactions per item in each of ``request.windows`` windows ending at ``now`` (a grouped
    count per window, each an index range on the group's timestamps)."""
    group = store.get_dataset_group(dataset_group)
    row = t.InteractionRow
    per_window: list[dict[str, int]] = []
    with store.engine.connect() as conn:
        for w in range(request.windows):
            stmt = (
                select(row.item_id, func.count())
                .where(
                    row.dataset_group_id == group.id,
                    row.timestamp > now - (w + 1) * request.window_seconds,
                    row.timestamp <= now - w * request.window_seconds,
                    row.event_type.notin_(NOT_INTERACTIONS),
                )
                .group_by(row.item_id)
            )
            if request.event_types:
                stmt = stmt.where(func.lower(row.event_type).in_(request.event_types))
            per_window.append({item: int(n) for item, n in conn.execute(stmt)})
    items = sorted(set().union(*per_window))
    if not items:
        return RecentActivity.empty(now, request)
    position = {item: i for i, item in enumerate(items)}
    counts = np.zeros((len(items), request.windows))
    for w, found in enumerate(per_window):
        for item, n in found.items():
            counts[position[item], w] = n
    return RecentActivity(now, request.window_seconds, np.array(items, dtype=str), counts)
