"""Turn raw events into training weights: event-type weights, a value threshold, recency."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from engine.recipes.coded import CodedStrings
from engine.records import ADD_TO_CART, CLICK, PURCHASE, VIEW, WISHLIST

#: A purchase says more than a view. Unknown event types weigh 1.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    VIEW: 1.0,
    CLICK: 1.0,
    WISHLIST: 2.0,
    ADD_TO_CART: 3.0,
    PURCHASE: 5.0,
}


def event_weights(
    event_types: np.ndarray | CodedStrings,
    event_values: np.ndarray,
    timestamps: np.ndarray,
    *,
    weights: Mapping[str, float],
    value_threshold: float | None = None,
    half_life_days: float | None = None,
    now: float | None = None,
) -> np.ndarray:
    """One weight per event; 0 drops it (below the value threshold, or a weight of 0)."""
    if isinstance(event_types, CodedStrings):  # a weight per name, spread over the codes
        uniq, inverse = event_types.names, event_types.codes
    else:
        uniq, inverse = string_codes(event_types)
    lookup = {k.lower(): float(v) for k, v in weights.items()}
    per_type = np.array([lookup.get(t.lower(), 1.0) for t in uniq.tolist()], dtype=np.float64)
    w = per_type[inverse] if len(inverse) else np.empty(0)
    if value_threshold is not None:
        values = np.asarray(event_values, dtype=np.float64)
        # Events without a value are kept: the threshold speaks only to events that carry one.
        w = np.where(np.isnan(values) | (values >= value_threshold), w, 0.0)
    if half_life_days and len(w):
        ts = np.asarray(timestamps, dtype=np.float64)
        reference = ts.max() if now is None else now
        age_days = np.maximum(reference - ts, 0.0) / 86400.0
        w = w * np.power(0.5, age_days / half_life_days)
    return w


#: Up to this many distinct values, :func:`string_codes` compares instead of sorting.
_FEW_VALUES = 16


def string_codes(values: np.ndarray | CodedStrings) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for a string column, the same answer, fast when
    it holds few distinct values (event types): sorting a million strings cost more than the rest
    of weighting them, where a few whole-column comparisons find the same codes (and a coded
    column has its answer without looking at a string)."""
    if isinstance(values, CodedStrings):
        return values.compact()
    values = np.asarray(values, dtype=str)
    codes = np.full(len(values), -1, dtype=np.intp)
    found: list[str] = []
    while len(found) < _FEW_VALUES:
        open_at = int(np.argmax(codes < 0)) if len(codes) else 0
        if len(codes) == 0 or codes[open_at] >= 0:
            uniq = np.array(found, dtype=values.dtype)
            order = np.argsort(uniq, kind="stable")
            rank = np.empty(len(order), dtype=np.intp)
            rank[order] = np.arange(len(order))
            return uniq[order], rank[codes] if len(codes) else codes
        codes[values == values[open_at]] = len(found)
        found.append(values[open_at])
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.reshape(-1)


def configured_weights(
    hyperparameters: Mapping[str, object],
    event_types: np.ndarray | CodedStrings,
    event_values: np.ndarray,
    timestamps: np.ndarray,
) -> np.ndarray:
    """:func:`event_weights` with a recipe's own settings (``event_weights``,
    ``event_value_threshold``, ``recency_half_life_days``), as every weighted recipe reads them."""
    return event_weights(
        event_types,
        event_values,
        timestamps,
        weights=hyperparameters["event_weights"],
        value_threshold=hyperparameters["event_value_threshold"],
        half_life_days=hyperparameters["recency_half_life_days"],
    )


def user_item_matrix(
    user_index: np.ndarray, item_index: np.ndarray, weights: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """Sum of weights per (user, item), as implicit expects (float32 CSR, users × items)."""
    keep = weights > 0
    matrix = sp.coo_matrix(
        (weights[keep].astype(np.float32), (user_index[keep], item_index[keep])), shape=(n_users, n_items)
    ).tocsr()
    matrix.sum_duplicates()
    return matrix
