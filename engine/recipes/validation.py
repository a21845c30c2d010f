"""Held-out users at training time, cut by time the way Personalize evaluates.

user-personalization uses them to choose its model family and settings by what wins on data it
did not train on, and to learn how likely its n-th suggestion is to be taken; the offline
evaluation (engine.evaluation) uses the same cut.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.recipes.base import TrainingData
from engine.recipes.sequences import events_by_user
from engine.records import Interaction

INPUT_SHARE = 0.9


@dataclass(frozen=True)
class Case:
    """A held-out user: the events a request would carry, and the items they went on to touch."""

    user_id: str
    history: tuple[Interaction, ...]
    truth: frozenset[str]
    #: The contextual metadata of their next event: what the request would have carried.
    context: Mapping[str, str] = field(default_factory=dict)


def subset(data: TrainingData, events: np.ndarray) -> TrainingData:
    """The same catalog and user metadata with only these events (Personalize trains on the full
    Items and Users datasets whichever interactions it holds out)."""
    events = np.sort(np.asarray(events, dtype=np.int64))
    return TrainingData.from_columns(
        data.user_ids[data.user_index[events]],
        data.item_ids[data.item_index[events]],
        data.event_types[events],
        data.timestamps[events],
        data.event_values[events],
        items=data.items,
        users=data.users,
        session_ids=None if data.session_ids is None else data.session_ids[events],
        contexts=None if data.contexts is None else data.contexts[events],
        interaction_ids=None if data.interaction_ids is None else data.interaction_ids[events],
        new_events=None if data.new_events is None else data.new_events[events],
    )


def interactions(data: TrainingData, events: np.ndarray) -> tuple[Interaction, ...]:
    """Events as the records a campaign reads from the store (each column gathered for all of
    them at once: element by element, numpy's scalars cost more than the records)."""
    at = np.asarray(events, dtype=np.int64)
    n = len(at)
    values = data.event_values[at].tolist()
    sessions = [None] * n if data.session_ids is None else np.asarray(data.session_ids[at], dtype=object).tolist()
    contexts = [None] * n if data.contexts is None else data.contexts[at].tolist()
    return tuple(
        Interaction(
            user_id=user,
            item_id=item,
            event_type=kind,
            timestamp=stamp,
            event_value=None if math.isnan(value) else value,
            session_id=None if session is None else str(session),
            context=dict(context or {}),
        )
        for user, item, kind, stamp, value, session, context in zip(
            data.user_ids[data.user_index[at]].tolist(),
            data.item_ids[data.item_index[at]].tolist(),
            [str(kind) for kind in data.event_types[at].tolist()],
            data.timestamps[at].astype(np.float64).tolist(),
            values,
            sessions,
            contexts,
            strict=True,
        )
    )


def holdout(data: TrainingData, test_users: np.ndarray, *, history_limit: int = 500) -> tuple[TrainingData, list[Case]]:
    """Training data without ``test_users``, and per test user their oldest 90% of events (at
    most the newest ``history_limit`` of them, as a campaign reads) and the items of the rest."""
    order, offsets = events_by_user(data)
    is_test = np.zeros(data.n_users, dtype=bool)
    is_test[test_users] = True
    train = subset(data, np.flatnonzero(~is_test[data.user_index]))
    cases = []
    for u in np.asarray(test_users).tolist():
        events = order[offsets[u] : offsets[u + 1]]
        n_input = math.floor(INPUT_SHARE * len(events))
        given, later = events[:n_input], events[n_input:]
        given = given[max(0, len(given) - history_limit) :]
        truth = frozenset(data.item_ids[data.item_index[later]].tolist())
        context = request_context(data, int(later[0])) if len(later) else {}
        cases.append(Case(str(data.user_ids[u]), interactions(data, given), truth, context))
    return train, cases


def request_context(data: TrainingData, event: int) -> dict[str, str]:
    """An event's contextual metadata as a request carries it (string values)."""
    context = None if data.contexts is None else data.contexts[event]
    return {str(k): str(v) for k, v in (context or {}).items() if v is not None}


def validation_users(data: TrainingData, *, share: float, max_users: int, seed: int) -> np.ndarray:
    """A seeded sample of users with at least two events (one to give, one to predict)."""
    counts = np.bincount(data.user_index, minlength=data.n_users)
    eligible = np.flatnonzero(counts >= 2)
    size = min(max_users, math.floor(share * data.n_users), len(eligible))
    if size <= 0:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(eligible, size=size, replace=False))


def ndcg_at_10(ranked: Sequence[str], truth: Collection[str]) -> float:
    """NDCG@10 as Personalize defines it (the offline evaluation's own metric, kept here so the
    recipes can choose by it without depending on the evaluation package)."""
    dcg = sum(1.0 / math.log2(p + 2) for p, item in enumerate(ranked[:10]) if item in truth)
    ideal = sum(1.0 / math.log2(p + 2) for p in range(min(len(truth), 10)))
    return dcg / ideal if ideal else 0.0
