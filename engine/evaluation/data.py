"""Records (items, users, interactions) as training data, for evaluations outside a store."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from engine.recipes.base import TrainingData
from engine.records import Interaction, Item, User


def training_data(
    interactions: Iterable[Interaction], items: Iterable[Item] = (), users: Iterable[User] = ()
) -> TrainingData:
    """The same snapshot training takes from the store, built from records in time order."""
    events = sorted(interactions, key=lambda e: e.timestamp)
    return TrainingData.from_columns(
        [e.user_id for e in events],
        [e.item_id for e in events],
        [e.event_type for e in events],
        np.array([e.timestamp for e in events], dtype=np.float64),
        np.array([np.nan if e.event_value is None else e.event_value for e in events], dtype=np.float64),
        items={i.item_id: i for i in items},
        users={u.user_id: u for u in users},
        session_ids=[e.session_id for e in events],
        contexts=[e.context or None for e in events] if any(e.context for e in events) else None,
    )
