"""Incremental UPDATE for user-personalization: fold in what is new, keep everything else.

An UPDATE used to refit the whole model (metadata features of the whole catalog, ALS warm-started
over every user, transitions over every event), about half the cost of a FULL training. Here it
touches only what the new events change (``TrainingData.new_events``, set by the training job):

* the settings, the rank calibration and the repeat model are the previous version's (as before);
* item factors: existing items keep theirs; items that got their first events (new items, or
  items that were cold) are solved with the ALS item step against the factors of the users who
  touched them. Those users' factors come from the ALS user step over their whole history (all
  of them stacked, :func:`engine.recipes.als_batch.solve_users`), and the item step needs XᵀX of
  every user's factors, kept on the model since the FULL training (``user_gram``) and corrected
  here for the users whose factors moved. Two alternating passes refine the pair;
* popularity, transitions: the previous ones plus what the new events add (transitions of the
  affected users' whole histories minus those of their old events alone);
* items with no events borrow from their metadata neighbours as before: rows of items still cold
  are kept, items that turned warm drop theirs, new cold items get rows from their metadata, in
  the feature space of the FULL training (kept on the model) so the catalog is not read again;
* EASE weights and the attribute lifts are kept for existing items (new items are not in them);
  new shoppers' metadata joins the attribute table.

Whatever is approximate here (existing items' factors not re-solved, the feature space and the
item-item weights not re-learned) is redone by the next FULL training. So is one gap: on large
data the FULL training's model never counted its held-out users' last events (engine.recipes.
up_selection, at most 500 users' newest 10%), and they are not new to an UPDATE either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from engine.recipes.als_batch import solve_users
from engine.recipes.attribute_popularity import _CONTEXT_PREFIX, AttributePopularity, _category
from engine.recipes.base import TrainingData
from engine.recipes.catalog import subset
from engine.recipes.feature_space import feature_space
from engine.recipes.implicit_backend import gram
from engine.recipes.item_metadata import neighbour_matrix
from engine.recipes.sequences import transitions_gained
from engine.recipes.vocabulary import carry, carry_rows, vocabulary_map
from engine.recipes.weighting import event_weights

if TYPE_CHECKING:
    from engine.recipes.user_personalization import UserPersonalization

#: Alternating passes (user step, then item step for the items that got their first events).
REFINEMENT_PASSES = 2
#: Transition entries that cancel out to within this are dropped.
_TINY = 1e-6


def applies(previous: UserPersonalization | None, data: TrainingData) -> bool:
    """Whether the incremental path can run: an UPDATE that knows which events are new, where the
    events the previous version trained on are all still there. When some were erased (a shopper's
    data deleted) or the count differs otherwise, everything is refitted, so nothing erased
    lingers in the counts or factors."""
    if previous is None or data.new_events is None or len(previous.item_factors) == 0:
        return False
    old = len(data) - int(np.count_nonzero(data.new_events))
    return previous.trained_events is None or old == previous.trained_events


def update(model: UserPersonalization, data: TrainingData, previous: UserPersonalization) -> UserPersonalization:
    """Fill ``model`` from ``previous`` and the new events of ``data`` (see the module docstring).

    BLAS runs single-threaded, as around the ALS fit: the solves are thousands of stacked 64 × 64
    systems, where OpenBLAS's threads cost more than they give (on a busy 2-core machine a 5M-event
    UPDATE's solves took 2.2 s with them; 0.25 s single-threaded in another run)."""
    with threadpool_limits(1, "blas"):
        return _update(model, data, previous)


def _update(model: UserPersonalization, data: TrainingData, previous: UserPersonalization) -> UserPersonalization:
    new = np.asarray(data.new_events, dtype=bool)
    if len(new) != len(data):
        raise ValueError(f"new_events has {len(new)} entries for {len(data)} events")
    n = data.n_items
    model.choice, model.calibration, model.repeats = previous.choice, previous.calibration, previous.repeats
    model._set_items(data.item_ids)
    old_to_new = vocabulary_map(previous.item_ids, data.item_ids)
    in_previous = np.zeros(n, dtype=bool)
    in_previous[old_to_new[old_to_new >= 0]] = True

    # The affected users (those with new events) and all their events, oldest first as given.
    affected = np.unique(data.user_index[new])
    local = np.full(data.n_users, -1, dtype=np.int64)
    local[affected] = np.arange(len(affected))
    events = np.flatnonzero(local[data.user_index] >= 0)
    weights = _weights(model, data, events)
    is_new = new[events]
    users, items = local[data.user_index[events]], data.item_index[events].astype(np.int64)

    was_warm = carry(previous.popularity, old_to_new, n) > 0
    model.popularity = carry(previous.popularity, old_to_new, n) + np.bincount(
        items[is_new], weights=weights[is_new], minlength=n
    )
    _update_factors(model, previous, old_to_new, users, items, weights, is_new, len(affected), was_warm, data)
    model.transitions = _update_transitions(model, previous, old_to_new, data, events, weights, is_new)
    _update_cold(model, previous, old_to_new, in_previous, data)
    ok = old_to_new[previous.ease_items] >= 0 if len(previous.ease_items) else np.zeros(0, dtype=bool)
    model.ease_items = old_to_new[previous.ease_items[ok]]
    model.ease_weights = previous.ease_weights[np.ix_(ok, ok)] if len(ok) else previous.ease_weights
    model.attributes = carry_attributes(previous.attributes, old_to_new, data)
    return model


def _weights(model: UserPersonalization, data: TrainingData, events: np.ndarray) -> np.ndarray:
    """The recipe's event weights for these events, as :meth:`UserPersonalization._weights` gives
    them over all of ``data`` (recency measured from the newest event of the whole group)."""
    hp = model.hyperparameters
    return event_weights(
        data.event_types[events],
        data.event_values[events],
        data.timestamps[events],
        weights=hp["event_weights"],
        value_threshold=hp["event_value_threshold"],
        half_life_days=hp["recency_half_life_days"],
        now=float(data.timestamps.max()) if len(data) else None,
    )


# --------------------------------------------------------------------- ALS
def _update_factors(
    model: UserPersonalization,
    previous: UserPersonalization,
    old_to_new: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    is_new: np.ndarray,
    n_affected: int,
    was_warm: np.ndarray,
    data: TrainingData,
) -> None:
    hp = model.hyperparameters
    n, reg, alpha = data.n_items, hp["regularization"], hp["alpha"]
    factors = carry(np.asarray(previous.item_factors, dtype=np.float32), old_to_new, n)
    f = factors.shape[1]
    # YᵀY is the previous one (carried rows are the same, new rows zero) unless items left.
    yty = previous.yty if previous.yty.shape == (f, f) and np.all(old_to_new >= 0) else gram(factors)
    positive = weights > 0
    # The user steps need only the items these users touched (YᵀY stands for all the others).
    touched, column = np.unique(items[positive], return_inverse=True)

    def confidence(mask: np.ndarray) -> sp.csr_matrix:
        out = sp.csr_matrix(
            (alpha * weights[positive][mask], (users[positive][mask], column[mask])),
            shape=(n_affected, len(touched)),
            dtype=np.float64,
        )
        out.sum_duplicates()
        return out

    base = previous.user_gram
    if base is None:
        # An artifact from before the Gram matrix was kept: every user's factors, once, from the
        # previous item factors and the events it saw.
        base = _users_gram(model, data, factors, yty)
    else:
        # The affected users' old factors leave the Gram matrix; their new ones join it below.
        old = solve_users(factors[touched], yty, reg, confidence(~is_new[positive]))
        base = np.asarray(base, dtype=np.float64) - old.T @ old
    fresh = np.flatnonzero(~was_warm[touched])  # items that got their first events (as columns)
    everything = confidence(np.ones(len(column), dtype=bool))
    of_fresh = everything[:, fresh].T.tocsr()
    user_gram = base
    for _ in range(REFINEMENT_PASSES if len(fresh) else 1):
        vectors = solve_users(factors[touched], yty, reg, everything)
        user_gram = base + vectors.T @ vectors
        if len(fresh):
            before = factors[touched[fresh]].astype(np.float64)
            solved = solve_users(vectors, user_gram, reg, of_fresh)
            factors[touched[fresh]] = solved.astype(np.float32)
            after = factors[touched[fresh]].astype(np.float64)
            yty = yty + after.T @ after - before.T @ before
    model.item_factors, model.yty, model.user_gram = factors, yty, user_gram


def _users_gram(model: UserPersonalization, data: TrainingData, factors: np.ndarray, yty: np.ndarray) -> np.ndarray:
    """XᵀX of every user's factors over the events the previous version saw."""
    hp = model.hyperparameters
    old = np.flatnonzero(~np.asarray(data.new_events, dtype=bool))
    w = _weights(model, data, old)
    keep = w > 0
    confidence = sp.csr_matrix(
        (hp["alpha"] * w[keep], (data.user_index[old][keep], data.item_index[old][keep])),
        shape=(data.n_users, data.n_items),
        dtype=np.float64,
    )
    confidence.sum_duplicates()
    vectors = solve_users(factors, yty, hp["regularization"], confidence)
    return vectors.T @ vectors


# --------------------------------------------------------------------- transitions
def _update_transitions(
    model: UserPersonalization,
    previous: UserPersonalization,
    old_to_new: np.ndarray,
    data: TrainingData,
    events: np.ndarray,
    weights: np.ndarray,
    is_new: np.ndarray,
) -> sp.csr_matrix:
    """Previous transitions + the affected users' (over their whole history) − theirs over their
    old events alone: what a FULL count over all events would give, for a cost in new events."""
    hp = model.hyperparameters
    n = data.n_items
    # copy=False: the carried matrix shares the previous (mapped) arrays; a copy of every
    # transition cost half a second at 5M events.
    carried = carry_rows(previous.transitions, old_to_new, n, columns=True).astype(np.float32, copy=False)
    if not is_new.any():
        return carried
    from engine.recipes.user_personalization import TRANSITION_DECAY

    positive = weights > 0
    delta = transitions_gained(
        data, events[positive], is_new[positive], window=hp["sequence_window"], decay=TRANSITION_DECAY
    )
    delta.data[np.abs(delta.data) < _TINY] = 0.0
    out = (carried + delta).tocsr()
    # The previous version may not have counted some of these users' old events (the FULL
    # training's held-out answers): never let a count go below zero.
    out.data[out.data < _TINY] = 0.0
    out.eliminate_zeros()
    return out.astype(np.float32, copy=False)


# --------------------------------------------------------------------- items with no events
def _update_cold(
    model: UserPersonalization,
    previous: UserPersonalization,
    old_to_new: np.ndarray,
    in_previous: np.ndarray,
    data: TrainingData,
) -> None:
    n = data.n_items
    hp = model.hyperparameters
    cold = model.popularity <= 0
    fresh_ids = np.flatnonzero(~in_previous)
    if previous.feature_space is None or previous.item_features is None:
        # An artifact from before the feature space was kept: the whole catalog, once.
        features, space = feature_space(data.item_ids, data.items)
    else:
        space = previous.feature_space
        features = carry_rows(previous.item_features, old_to_new, n, columns=False)
        if len(fresh_ids):
            placed = sp.csr_matrix(
                (np.ones(len(fresh_ids), dtype=np.float32), (fresh_ids, np.arange(len(fresh_ids)))),
                shape=(n, len(fresh_ids)),
            )
            # Only the new items' metadata is read (a Catalog reads just these; see engine.recipes.catalog).
            ids = data.item_ids[fresh_ids]
            features = (features + placed @ space.rows(ids, subset(data.items, ids.tolist()))).tocsr()
    model.item_features, model.feature_space = features.astype(np.float32), space
    # Rows of items still cold are kept; items that got events drop theirs; new cold items get one.
    carried = carry_rows(previous.cold_neighbours, old_to_new, n, columns=True)
    carried = (sp.diags(cold.astype(np.float32)) @ carried).tocsr()
    carried.eliminate_zeros()
    need = np.flatnonzero(cold & ~in_previous)
    added = neighbour_matrix(features, need, np.flatnonzero(~cold), n, neighbours=hp["metadata_neighbours"])
    model.cold_neighbours = (carried + added).tocsr().astype(np.float32)


# --------------------------------------------------------------------- attribute popularity
def carry_attributes(previous: AttributePopularity, old_to_new: np.ndarray, data: TrainingData) -> AttributePopularity:
    """The previous lifts on the new vocabulary; shoppers the previous version did not list get
    their metadata values (for the values it learned)."""
    out = AttributePopularity()
    if len(previous.keys) == 0:
        return out
    mapped = old_to_new[previous.items]
    ok = mapped >= 0
    order = np.argsort(mapped[ok], kind="stable")
    out.keys = previous.keys
    out.items = mapped[ok][order]
    out.log_lift = previous.log_lift[:, np.flatnonzero(ok)[order]]
    out.user_ids, out.user_values = previous.user_ids, previous.user_values
    if not data.users or previous.user_values.size == 0:
        return out
    listed = np.array(list(data.users), dtype=str)
    if len(previous.user_ids):
        at = np.minimum(np.searchsorted(previous.user_ids, listed), len(previous.user_ids) - 1)
        listed = listed[previous.user_ids[at] != listed]
    if len(listed) == 0:
        return out
    lookup = {key: k for k, key in enumerate(previous.keys.tolist()) if not key.startswith(_CONTEXT_PREFIX)}
    fields = sorted({key.split("=", 1)[0] for key in lookup})
    width = previous.user_values.shape[1]
    table = np.full((len(listed), width), -1, dtype=np.int32)
    for row, user_id in enumerate(listed.tolist()):
        props = {k.upper(): v for k, v in data.users[user_id].properties.items()}
        values = [(name, _category(props.get(name))) for name in fields]
        codes = [c for name, v in values if v is not None and (c := lookup.get(f"{name}={v}", -1)) >= 0][:width]
        table[row, : len(codes)] = codes
    ids = np.concatenate([previous.user_ids, listed])
    order = np.argsort(ids, kind="stable")
    out.user_ids = ids[order]
    out.user_values = np.vstack([previous.user_values, table])[order]
    return out
