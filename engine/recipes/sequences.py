"""Users' events in time order, and what people go on to interact with next.

Shared by training-time validation (cut each user's history by time, like Personalize's
evaluation) and by the recipes that learn from order (transitions "after X, people look at Y").
"""

from __future__ import annotations

import weakref

import numpy as np
import scipy.sparse as sp

from engine.recipes.base import TrainingData
from engine.sorting import stable_order

#: Pairs of events counted at a time by :func:`transition_matrix` (bounds its memory).
TRANSITION_CHUNK = 4_000_000
#: The last answer of :func:`events_by_user`, with weak references to the arrays it came from.
_LAST_BY_USER: list[tuple[weakref.ref, weakref.ref, int, tuple[np.ndarray, np.ndarray]]] = []


def events_by_user(data: TrainingData) -> tuple[np.ndarray, np.ndarray]:
    """Event indices grouped by user and, within a user, oldest first (ties keep input order);
    with each user's offsets (``order[offsets[u]:offsets[u + 1]]``).

    A training asks this of the same data twice in a row (transitions, then the repeat model): the
    last answer is kept while the arrays it came from live (they are never changed in place)."""
    for users, stamps, n_users, answer in list(_LAST_BY_USER):
        if users() is data.user_index and stamps() is data.timestamps and n_users == data.n_users:
            return answer
    answer = _events_by_user(data)
    _remember(data, answer)
    return answer


def _remember(data: TrainingData, answer: tuple[np.ndarray, np.ndarray]) -> None:
    forget = lambda _: _LAST_BY_USER.clear()  # noqa: E731 (an array gone: so is the answer's use)
    users, stamps = weakref.ref(data.user_index, forget), weakref.ref(data.timestamps, forget)
    _LAST_BY_USER[:] = [(users, stamps, data.n_users, answer)]


def rows_by_user(data: TrainingData, keep: np.ndarray) -> TrainingData:
    """``data.rows(keep, bookkeeping=False)`` (``keep``: a mask) with its :func:`events_by_user`
    known: ``data``'s grouping without the dropped events, renumbered. The split's own sort took
    seconds at 25 million events, where this is one pass."""
    order, _ = events_by_user(data)
    split = data.rows(keep, bookkeeping=False)
    kept = order[keep[order]]
    position = np.cumsum(keep, dtype=np.int64) - 1  # data's index → the split's
    counts = np.bincount(split.user_index, minlength=split.n_users)
    _remember(split, (position[kept], np.concatenate([[0], np.cumsum(counts)])))
    return split


def _events_by_user(data: TrainingData) -> tuple[np.ndarray, np.ndarray]:
    if len(data) and np.all(data.timestamps[1:] >= data.timestamps[:-1]):
        # Already in time order (as the store hands them over): a stable sort by user suffices.
        order = stable_order(data.user_index)
    else:
        order = np.lexsort((np.arange(len(data)), data.timestamps, data.user_index))
    counts = np.bincount(data.user_index, minlength=data.n_users)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return order, offsets


def steps(items: np.ndarray) -> np.ndarray:
    """A user's items in order with repeats of the same item in a row collapsed (a view, an
    add-to-cart and a purchase of one product are one step of their journey)."""
    if len(items) == 0:
        return items
    keep = np.r_[True, items[1:] != items[:-1]]
    return items[keep]


def transition_matrix(
    data: TrainingData, *, window: int, decay: float, event_mask: np.ndarray | None = None
) -> sp.csr_matrix:
    """items × items: how often (and how soon) people who interacted with row X went on to
    interact with column Y, counting up to ``window`` steps ahead, weight ``decay**(gap - 1)``."""
    order, _ = events_by_user(data)
    if event_mask is not None:
        order = order[event_mask[order]]
    sequence = data.item_index[order]
    user = data.user_index[order]
    # Collapse runs of the same item within a user, vectorised over all users at once.
    keep = np.r_[True, (sequence[1:] != sequence[:-1]) | (user[1:] != user[:-1])]
    sequence, user = sequence[keep], user[keep]
    n = data.n_items
    matrix = sp.csr_matrix((n, n), dtype=np.float32)
    # Counted a gap and a stretch of events at a time, each part summed into the matrix: all the
    # pairs at once (window × events of them, 12 bytes each and as much again to sort them) took
    # gigabytes at 25 million events, where the matrix of distinct pairs is a fraction of that.
    for gap in range(1, window + 1):
        for lo in range(0, max(len(sequence) - gap, 0), TRANSITION_CHUNK):
            hi = min(lo + TRANSITION_CHUNK, len(sequence) - gap)
            same_user = user[lo + gap : hi + gap] == user[lo:hi]
            src, dst = sequence[lo:hi][same_user], sequence[lo + gap : hi + gap][same_user]
            differ = src != dst
            if not differ.any():
                continue
            vals = np.full(int(differ.sum()), decay ** (gap - 1), dtype=np.float32)
            part = sp.coo_matrix((vals, (src[differ], dst[differ])), shape=(n, n)).tocsr()
            part.sum_duplicates()
            matrix = part if matrix.nnz == 0 else matrix + part
    matrix.sum_duplicates()
    return matrix


def transitions_gained(
    data: TrainingData, events: np.ndarray, new: np.ndarray, *, window: int, decay: float
) -> sp.csr_matrix:
    """What the new events add to :func:`transition_matrix` over ``events`` (indices of whole
    histories: every event of the users concerned): their transitions minus those of their old
    events alone. An UPDATE adds it to the previous matrix, for a cost in those histories only.
    ``new`` is per event of ``events``."""
    n = data.n_items
    sub = data.rows(events)

    def counted(mask: np.ndarray) -> sp.csr_matrix:
        if not mask.any():
            return sp.csr_matrix((n, n), dtype=np.float32)
        return transition_matrix(sub, window=window, decay=decay, event_mask=mask)

    return (counted(np.ones(len(sub), dtype=bool)) - counted(~np.asarray(new, dtype=bool))).tocsr()


def recency_ranked(item_indices: list[int]) -> list[int]:
    """Distinct items, most recently interacted with first."""
    return list(dict.fromkeys(reversed(item_indices)))
