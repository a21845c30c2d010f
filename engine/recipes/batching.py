"""Many queries at once (batch inference): the same answers as ``recommend``, computed in bulk.

A batch job hands over a block of queries and the events of the users in them as columns
(:class:`UserEvents`), not as one tuple of records per user, because building a few million
record objects would cost more than the recommendations. :func:`recommend_many` answers with a
recipe's own ``recommend_batch(events, queries)`` when it has one (a recipe that can answer many
shoppers at once, e.g. with :mod:`engine.recipes.als_batch`'s stacked solves and top-N), and
otherwise with one ``recommend`` call per query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import repeat

import numpy as np

from engine.recipes.base import Query, Ranked, Recipe
from engine.records import Interaction


@dataclass(frozen=True)
class UserEvents:
    """Several users' events as columns: row k's events are ``offsets[k]:offsets[k + 1]``, oldest first."""

    offsets: np.ndarray  # int64, one more than the number of rows
    item_ids: np.ndarray  # str per event (an object array of Python strings)
    event_types: np.ndarray  # str per event (an object array of Python strings)
    event_values: np.ndarray  # float64 per event, NaN where absent
    timestamps: np.ndarray  # float64 per event

    @classmethod
    def empty(cls, rows: int = 0) -> UserEvents:
        return cls(
            np.zeros(rows + 1, dtype=np.int64),
            np.empty(0, dtype=str),
            np.empty(0, dtype=str),
            np.empty(0, dtype=np.float64),
            np.empty(0, dtype=np.float64),
        )

    @classmethod
    def of(cls, *histories: Sequence[Interaction]) -> UserEvents:
        """Rows from event records (one row per history)."""
        flat = [e for h in histories for e in h]
        offsets = np.zeros(len(histories) + 1, dtype=np.int64)
        np.cumsum([len(h) for h in histories], out=offsets[1:])
        items = np.empty(len(flat), dtype=object)
        items[:] = [e.item_id for e in flat]
        types = np.empty(len(flat), dtype=object)
        types[:] = [e.event_type for e in flat]
        return cls(
            offsets,
            items,
            types,
            np.array([np.nan if e.event_value is None else e.event_value for e in flat], dtype=np.float64),
            np.array([e.timestamp for e in flat], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def row_of_event(self) -> np.ndarray:
        return np.repeat(np.arange(len(self)), np.diff(self.offsets))

    def history(self, row: int, user_id: str) -> tuple[Interaction, ...]:
        lo, hi = int(self.offsets[row]), int(self.offsets[row + 1])
        values = self.event_values[lo:hi].tolist()
        return tuple(
            Interaction(user_id, item, event_type, ts, None if value != value else value)
            for item, event_type, ts, value in zip(
                self.item_ids[lo:hi].tolist(),
                self.event_types[lo:hi].tolist(),
                self.timestamps[lo:hi].tolist(),
                values,
                strict=True,
            )
        )


@dataclass(frozen=True)
class BatchQuery:
    """One query of a batch. Its history comes from row ``events_row`` of the batch's events."""

    query: Query
    events_row: int | None = None
    #: Leave out what the recipe's ``default_exclusions`` say about the user's history (a
    #: campaign's default, when its config does not set ``excludeInteracted``).
    exclude_seen: bool = False
    #: Leave out every item in the user's history (``excludeInteracted: true``).
    exclude_history: bool = False


def recommend_many(model: Recipe, events: UserEvents, queries: Sequence[BatchQuery]) -> list[Ranked]:
    """One :class:`Ranked` per query, in order, equal to what ``model.recommend`` answers for each."""
    own = getattr(model, "recommend_batch", None)
    if callable(own):
        return own(events, queries)
    return [model.recommend(full_query(model, events, q)) for q in queries]


def full_query(model: Recipe, events: UserEvents, batch_query: BatchQuery) -> Query:
    """The query as ``recommend`` takes it: history filled in, default exclusions applied."""
    q = batch_query.query
    row = batch_query.events_row
    history = events.history(row, q.user_id or "") if row is not None else ()
    exclude = q.exclude
    if batch_query.exclude_seen and history:
        exclude = exclude | model.default_exclusions(history)
    if batch_query.exclude_history and history:
        exclude = exclude | {e.item_id for e in history}
    return replace(q, history=history, exclude=frozenset(exclude))


def event_item_index(model: Recipe, events: UserEvents) -> np.ndarray:
    """The model's column for each event's item; -1 where the model does not know the item."""
    lookup = model._item_lookup
    return np.fromiter(map(lookup.get, events.item_ids, repeat(-1)), dtype=np.int64, count=len(events.item_ids))
