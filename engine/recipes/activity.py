"""Catalogue-wide recent activity a recipe can ask the serving layer for at request time.

Some answers depend on what everybody is doing right now, not on what the model saw when it was
trained (trending-now: which items are rising in the latest window). A recipe says what it needs
with an :class:`ActivityRequest`; the serving layer counts it in the store, caches it, and hands it
over in ``Query.activity`` as plain arrays, so the recipe still never sees the database. Offline
evaluation and batch jobs pass none, and the recipe answers from its training data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ActivityRequest:
    """Count interactions per item in ``windows`` consecutive windows of ``window_seconds``,
    ending now; only events of ``event_types`` (lower-case) when given."""

    window_seconds: float
    windows: int
    event_types: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class RecentActivity:
    """The counts an :class:`ActivityRequest` asked for."""

    #: The end of the latest window (epoch seconds).
    now: float
    window_seconds: float
    #: Items with at least one counted event.
    item_ids: np.ndarray
    #: items × windows; column 0 is the latest window, column k the k-th before it.
    counts: np.ndarray

    @classmethod
    def empty(cls, now: float, request: ActivityRequest) -> RecentActivity:
        return cls(now, request.window_seconds, np.empty(0, dtype=str), np.zeros((0, request.windows)))
