"""Personalize's splits: folds of users, and each test user's history cut by time.

Ranking recipes: 90% of users train; each remaining user's oldest 90% of interactions are the
live input (folded in at request time, no retraining) and the newest 10% are the truth
(:func:`engine.recipes.validation.holdout`, the same cut the recipes validate with).
Segment recipes: every user's oldest 80% trains and the newest 20% is held out.
"""

from __future__ import annotations

import math

import numpy as np

from engine.errors import InvalidInput
from engine.recipes.base import TrainingData
from engine.recipes.sequences import events_by_user
from engine.recipes.validation import subset

TEST_USER_SHARE = 0.1
SEGMENT_TRAIN_SHARE = 0.8
MAX_FOLDS = round(1 / TEST_USER_SHARE)


def user_folds(n_users: int, folds: int, seed: int) -> list[np.ndarray]:
    """Disjoint sets of test users, 10% of users each (so 10 folds test every user once)."""
    if not 1 <= folds <= MAX_FOLDS:
        raise InvalidInput(f"folds must be between 1 and {MAX_FOLDS} (each fold tests 10% of users)")
    if n_users < 2:
        raise InvalidInput("evaluation needs interactions from at least 2 users")
    size = max(1, round(TEST_USER_SHARE * n_users))
    order = np.random.default_rng(seed).permutation(n_users)
    return [np.sort(order[k * size : (k + 1) * size]) for k in range(folds) if k * size < n_users]


def segment_split(data: TrainingData) -> tuple[TrainingData, dict[str, set[str]]]:
    """Every user's oldest 80% to train on; the held-out users of each item (newest 20%)."""
    order, offsets = events_by_user(data)
    keep = np.zeros(len(data), dtype=bool)
    held_out: dict[str, set[str]] = {}
    for u in range(data.n_users):
        events = order[offsets[u] : offsets[u + 1]]
        n_train = max(1, math.floor(SEGMENT_TRAIN_SHARE * len(events)))
        keep[events[:n_train]] = True
        user = str(data.user_ids[u])
        for item in data.item_ids[data.item_index[events[n_train:]]].tolist():
            held_out.setdefault(item, set()).add(user)
    return subset(data, np.flatnonzero(keep)), held_out
