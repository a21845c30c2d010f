"""One request's reads of a shopper's events, shared by the stages that need them.

A request folds in the shopper's latest events, and a filter on ``Interactions.EVENT_TYPE`` or a
campaign's ``excludeEventTypes`` needs every (item, event type) the shopper ever had. Read apart
that is two or three indexed range reads of the same rows; whichever stage asks first for the whole
history makes the one read that the others are derived from.
"""

from __future__ import annotations

from engine.records import Interaction
from engine.storage import Store
from engine.storage.store import NOT_INTERACTIONS


class UserEvents:
    def __init__(self, store: Store, dataset_group: str, user_id: str | None, limit: int) -> None:
        self.store = store
        self.dataset_group = dataset_group
        self.user_id = user_id
        self.limit = limit
        self._all: list[Interaction] | None = None

    def latest(self) -> tuple[Interaction, ...]:
        """The newest ``limit`` events (impressions left out), oldest first, as a model folds them in."""
        if not self.user_id:
            return ()
        if self._all is None:
            return tuple(self.store.latest_events(self.dataset_group, self.user_id, self.limit))
        kept = [e for e in self._all if e.event_type not in NOT_INTERACTIONS]
        return tuple(kept[-self.limit :]) if self.limit > 0 else ()

    def item_event_types(self) -> list[tuple[str, str]]:
        """Every (item id, event type) of the whole history, once each: no cap, events sent a moment
        ago included."""
        if not self.user_id:
            return []
        if self._all is None:
            self._all = self.store.user_events(self.dataset_group, self.user_id)
        return list(dict.fromkeys((e.item_id, e.event_type) for e in self._all))
