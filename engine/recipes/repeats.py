"""Whether to show a shopper what they already interacted with, learned instead of a fixed rule.

People almost never re-watch a film they rated, but often buy the groceries they bought last
week, and a product viewed a minute ago is the one most likely to be carted next. So
user-personalization estimates, from the training histories, the chance that each item a
shopper already has is among their next interactions (:class:`RepeatModel`), puts it on the same
scale as the chance for the model's new suggestions at each rank (:class:`RankCalibration`,
measured on held-out users at fit time) and merges the two lists by that chance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.recipes.base import TrainingData
from engine.recipes.sequences import events_by_user
from engine.recipes.validation import INPUT_SHARE
from engine.recipes.weighting import string_codes
from engine.records import Interaction

#: At most this many of a user's most recent distinct items are considered for showing again.
MAX_SEEN = 50
#: Below this many observed repeats there is nothing to learn: seen items are simply left out.
MIN_REPEATS = 20
MAX_EVENT_TYPES = 8
_L2 = 1.0


@dataclass(frozen=True)
class SeenItem:
    item_id: str
    rank: int  # 0 = the most recently interacted-with item
    events: int
    last_type: str
    age_seconds: float


def seen_items(history: Sequence[Interaction], limit: int = MAX_SEEN) -> list[SeenItem]:
    """The distinct items of a history, newest first, with what the repeat model looks at."""
    if not history:
        return []
    now = max(e.timestamp for e in history)
    last: dict[str, Interaction] = {}
    counts: dict[str, int] = {}
    for event in history:  # oldest first: the last write wins
        last[event.item_id] = event
        counts[event.item_id] = counts.get(event.item_id, 0) + 1
    newest_first = sorted(last.values(), key=lambda e: e.timestamp, reverse=True)[:limit]
    return [
        SeenItem(e.item_id, rank, counts[e.item_id], e.event_type.lower(), max(now - e.timestamp, 0.0))
        for rank, e in enumerate(newest_first)
    ]


class RepeatModel:
    """Logistic regression: P(seen item is among the next interactions | recency rank, how often
    and how long ago it was touched, its last event type, how long the history is)."""

    def __init__(self, event_types: Sequence[str] = (), coef: np.ndarray | None = None, repeats: int = 0) -> None:
        self.event_types = [t.lower() for t in event_types]
        self.coef = np.zeros(self.n_features) if coef is None else np.asarray(coef, dtype=np.float64)
        self.repeats = repeats

    @property
    def n_features(self) -> int:
        return 6 + len(self.event_types)

    @property
    def enabled(self) -> bool:
        """False when the data shows (almost) no repeats: seen items are then left out."""
        return self.repeats >= MIN_REPEATS

    def features(self, items: Sequence[SeenItem]) -> np.ndarray:
        """One row per item, as :meth:`fit` builds them (numpy's ``log1p``, column by column)."""
        out = np.zeros((len(items), self.n_features))
        if not items:
            return out
        rank = np.fromiter((s.rank for s in items), dtype=np.float64, count=len(items))
        events = np.fromiter((s.events for s in items), dtype=np.float64, count=len(items))
        age = np.fromiter((s.age_seconds for s in items), dtype=np.float64, count=len(items))
        out[:, 0] = 1.0
        out[:, 1] = np.log1p(rank)
        out[:, 2] = rank == 0
        out[:, 3] = np.log1p(events)
        out[:, 4] = np.log1p(age / 3600.0)
        out[:, 5] = np.log1p(float(len(items)))
        type_column = {t: 6 + k for k, t in enumerate(self.event_types)}
        for row, s in enumerate(items):
            if (column := type_column.get(s.last_type)) is not None:
                out[row, column] = 1.0
        return out

    def probabilities(self, items: Sequence[SeenItem]) -> np.ndarray:
        if not items:
            return np.empty(0)
        if not self.enabled:
            return np.zeros(len(items))
        return _sigmoid(self.features(items) @ self.coef)

    @classmethod
    def fit(cls, data: TrainingData, *, users: np.ndarray | None = None, max_users: int = 20_000, seed: int = 0):
        """Learn from training histories cut by time: each user's oldest 90% is what they had,
        the newest 10% what they did next.

        Every user's :func:`seen_items` and :meth:`features` at once, as columns (a Python loop
        over twenty thousand histories cost more than the rest of training).
        """
        order, offsets = events_by_user(data)
        pool = np.arange(data.n_users) if users is None else np.asarray(users)
        if len(pool) > max_users:
            pool = np.random.default_rng(seed).choice(pool, size=max_users, replace=False)
        raw, type_code = string_codes(data.event_types)
        raw_counts = np.bincount(type_code, minlength=len(raw))
        lowered = np.char.lower(raw.astype(str)) if len(raw) else raw
        types, lowered_code = np.unique(lowered, return_inverse=True)
        counts = np.bincount(lowered_code, weights=raw_counts, minlength=len(types))
        common = types[np.argsort(-counts, kind="stable")][:MAX_EVENT_TYPES].tolist()
        model = cls(common)
        pool = np.asarray(pool, dtype=np.int64)
        total = offsets[pool + 1] - offsets[pool]
        n_input = np.floor(INPUT_SHARE * total).astype(np.int64)
        pool, total, n_input = pool[n_input > 0], total[n_input > 0], n_input[n_input > 0]
        if len(pool) == 0:
            return model
        # The given window of each user: at most the newest 4 × MAX_SEEN events of their 90%.
        start = offsets[pool] + np.maximum(0, n_input - 4 * MAX_SEEN)
        end = offsets[pool] + n_input
        row, at = _ranges(start, end)
        events = order[at]
        n_items = data.n_items
        item = data.item_index[events].astype(np.int64)
        key = row * n_items + item
        uniq, first, inverse, count = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
        last = np.full(len(uniq), -1, dtype=np.int64)
        np.maximum.at(last, inverse, np.arange(len(key)))
        key_row = uniq // n_items
        stamps = data.timestamps[events]
        last_ts = stamps[last]
        newest_first = np.lexsort((first, -last_ts, key_row))
        rank = rank_within(key_row[newest_first])
        kept = newest_first[rank < MAX_SEEN]
        rank = rank[rank < MAX_SEEN]
        k_row = key_row[kept]
        now = np.full(len(pool), -np.inf)
        np.maximum.at(now, row, stamps)
        distinct = np.bincount(k_row, minlength=len(pool))
        x = np.zeros((len(kept), model.n_features))
        x[:, 0] = 1.0
        x[:, 1] = np.log1p(rank.astype(np.float64))
        x[:, 2] = rank == 0
        x[:, 3] = np.log1p(count[kept].astype(np.float64))
        x[:, 4] = np.log1p(np.maximum(now[k_row] - last_ts[kept], 0.0) / 3600.0)
        x[:, 5] = np.log1p(distinct[k_row].astype(np.float64))
        column = {t: 6 + k for k, t in enumerate(model.event_types)}
        type_column = np.array([column.get(t, -1) for t in types[lowered_code].tolist()], dtype=np.int64)
        typed = type_column[type_code[events[last[kept]]]] if len(type_column) else np.empty(0, dtype=np.int64)
        has = typed >= 0
        x[np.flatnonzero(has), typed[has]] = 1.0
        # The answers: the items of each user's newest 10%.
        later_row, later = _ranges(offsets[pool] + n_input, offsets[pool] + total)
        truth = later_row * n_items + data.item_index[order[later]].astype(np.int64)
        y = np.isin(uniq[kept], truth).astype(np.float64)
        # Users in pool order, each user's items newest first (as the per-user definition lists them).
        by_pool = np.argsort(k_row, kind="stable")
        x, y = x[by_pool], y[by_pool]
        model.repeats = int(y.sum())
        if model.enabled:
            model.coef = _logistic(x, y)
        return model

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}event_types": np.array(self.event_types, dtype=str),
            f"{prefix}coef": self.coef,
            f"{prefix}repeats": np.array([self.repeats], dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> RepeatModel:
        return cls(arrays[f"{prefix}event_types"].tolist(), arrays[f"{prefix}coef"], int(arrays[f"{prefix}repeats"][0]))


class RankCalibration:
    """P(the item a model ranks r-th among new items is among the next interactions), measured
    on held-out users and made non-increasing; ranks past the table decay like 1/r."""

    def __init__(self, hit_rates: np.ndarray | None = None) -> None:
        self.hit_rates = np.zeros(0) if hit_rates is None else np.asarray(hit_rates, dtype=np.float64)

    @classmethod
    def from_hits(cls, hits: np.ndarray) -> RankCalibration:
        """``hits``: (requests × ranks) 0/1 matrix."""
        if hits.size == 0:
            return cls()
        return cls(_non_increasing(hits.mean(axis=0)))

    def __call__(self, ranks: np.ndarray) -> np.ndarray:
        ranks = np.asarray(ranks, dtype=np.int64)
        if len(self.hit_rates) == 0:
            return np.zeros(len(ranks))
        last = len(self.hit_rates) - 1
        tail = self.hit_rates[last] * (last + 1) / (ranks + 1.0)
        return np.where(ranks <= last, self.hit_rates[np.minimum(ranks, last)], tail)


def merge(
    new_items: np.ndarray, new_scores: np.ndarray, seen: np.ndarray, seen_scores: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Interleave new suggestions (already ranked) and seen items by their probabilities; new
    items win ties, so a list stays as the model ranked it when repeats are unlikely."""
    items = np.concatenate([new_items, seen])
    scores = np.concatenate([new_scores, seen_scores])
    # lexsort: last key first. Ties broken by new-before-seen, then by the new list's order.
    tiebreak = np.concatenate([np.arange(len(new_items)), len(new_items) + np.arange(len(seen))])
    order = np.lexsort((tiebreak, -scores))[:n]
    return items[order], scores[order]


def _ranges(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [start, end): each position's range number, and the position."""
    lengths = end - start
    row = np.repeat(np.arange(len(start)), lengths)
    offset = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return row, np.repeat(start, lengths) + offset


def rank_within(rows: np.ndarray) -> np.ndarray:
    """0, 1, 2... within each run of equal values of ``rows`` (which is sorted)."""
    if len(rows) == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    lengths = np.diff(np.r_[starts, len(rows)])
    return np.arange(len(rows)) - np.repeat(starts, lengths)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _logistic(x: np.ndarray, y: np.ndarray, iterations: int = 25) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (the bias is not penalised).

    A full Newton step is taken whenever it lowers the penalised loss, and halved until it does
    otherwise: from the base-rate start, rare repeats (under 1% of seen items) sent plain Newton
    off to coefficients in the billions, the sigmoid saturated, and all 25 iterations ran."""
    coef = np.zeros(x.shape[1])
    rate = min(max(y.mean(), 1e-6), 1 - 1e-6)
    coef[0] = math.log(rate / (1 - rate))
    penalty = np.full(x.shape[1], _L2)
    penalty[0] = 0.0

    def loss(c: np.ndarray) -> float:
        z = x @ c
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * c * c))

    current = loss(coef)
    for _ in range(iterations):
        p = _sigmoid(x @ coef)
        gradient = x.T @ (p - y) + penalty * coef
        hessian = (x.T * (p * (1 - p))) @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        for _ in range(40):
            trial = loss(coef - step)
            if trial <= current:
                break
            step = step / 2
        coef -= step
        current = trial
        if np.abs(step).max() < 1e-6:
            break
    return coef


def _non_increasing(values: np.ndarray) -> np.ndarray:
    """Pool-adjacent-violators: the closest non-increasing sequence (least squares)."""
    blocks: list[list[float]] = []  # [mean, weight]
    for v in values.tolist():
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            mean, weight = blocks.pop()
            blocks[-1][0] = (blocks[-1][0] * blocks[-1][1] + mean * weight) / (blocks[-1][1] + weight)
            blocks[-1][1] += weight
    return np.concatenate([np.full(int(w), m) for m, w in blocks])
