"""sims UPDATE: the previous version plus what the new events change, instead of a refit.

The training job marks which events the previous version did not see (``TrainingData.new_events``).
Only those change the model:

* cosine similarity: a cosine is a dot product over two norms, and only the users with new events
  (the affected users) change dot products and norms. Each stored similarity is rescaled to the
  new norms and the change of its dot product added (``after.T @ after - before.T @ before`` over
  the affected users' rows only: as sparse as their histories), and pairs that newly co-occur join;
  then each row keeps its best ``neighbours - 1`` again. Approximations against a full refit: a
  pair that neither item kept among its neighbours before starts from an old dot product of 0,
  and an item just outside a list is not brought back when another drops out of it;
* transitions: the previous matrix plus the transitions of the affected users' whole histories
  minus those of their old histories (entries the previous version had already cut stay cut);
* popularity: the previous counts plus the new events' weights.

The blend weight stays the previous version's. :func:`update` declines (and the recipe refits)
when the previous vocabulary is not part of the new one or the new events touch too much of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from engine.recipes.base import TrainingData
from engine.recipes.sequences import transition_matrix
from engine.recipes.weighting import user_item_matrix

if TYPE_CHECKING:
    from engine.recipes.sims import Sims

#: Above this share of the catalog touched by new events, a full refit is about as cheap (and
#: exact); catalogs under :data:`SMALL_CATALOG` items are updated whatever the share.
MAX_TOUCHED_SHARE = 0.3
SMALL_CATALOG = 1000


def update(model: Sims, previous: Sims, data: TrainingData) -> bool:
    """Fit ``model`` as ``previous`` updated with ``data.new_events``; False (``model`` untouched)
    when a full fit is needed instead."""
    from engine.recipes.sims import _keep_top

    hp = model.hyperparameters
    new = np.asarray(data.new_events, dtype=bool)
    if len(new) != len(data) or previous.similarity.shape[0] != len(previous.item_ids):
        return False
    old_to_new = _positions(data.item_ids, previous.item_ids)
    if old_to_new is None:
        return False
    n = data.n_items
    weights = model.event_weights(data)
    fresh = new & (weights > 0)
    is_new_item = np.ones(n, dtype=bool)
    is_new_item[old_to_new] = False
    touched = np.zeros(n, dtype=bool)
    touched[data.item_index[fresh]] = True
    touched |= is_new_item
    if n >= SMALL_CATALOG and touched.sum() > MAX_TOUCHED_SHARE * n:
        return False

    affected = np.zeros(data.n_users, dtype=bool)
    affected[data.user_index[fresh]] = True
    events = affected[data.user_index]
    counted = weights > 0
    after, before = _user_items(data, events & counted, events & counted & ~new, weights)

    k = max(hp["neighbours"] - 1, 0)  # the item itself was one of its ``neighbours`` (then dropped)
    norms = np.asarray(
        user_item_matrix(data.user_index, data.item_index, weights, data.n_users, n).power(2).sum(axis=0),
        dtype=np.float64,
    ).ravel()
    similarity = _updated_similarity(_aligned(previous.similarity, old_to_new, n), norms, after, before)
    model.similarity = _keep_top(similarity, k)

    window = hp["sequence_window"]
    change = (
        _transitions(data, events & counted, window) - _transitions(data, events & counted & ~new, window)
    ).tocsr()
    sequence = (_aligned(previous.sequence, old_to_new, n) + change + change.T).tocsr()
    sequence.data[sequence.data < 1e-6] = 0.0  # what the old histories contributed to a cut entry
    sequence.eliminate_zeros()
    model.sequence = _keep_top(sequence, hp["neighbours"])

    popularity = np.zeros(n)
    popularity[old_to_new] = previous.popularity
    model.popularity = popularity + np.bincount(data.item_index[fresh], weights=weights[fresh], minlength=n)
    model._set_items(data.item_ids)
    return True


def _positions(vocabulary: np.ndarray, ids: np.ndarray) -> np.ndarray | None:
    """Where each of ``ids`` sits in ``vocabulary``; None when one is missing."""
    if len(ids) == 0:
        return np.empty(0, dtype=np.int64)
    if len(vocabulary) == 0:
        return None
    order = np.argsort(vocabulary, kind="stable")
    at = np.minimum(np.searchsorted(vocabulary, ids, sorter=order), len(vocabulary) - 1)
    found = order[at]
    return found if np.array_equal(vocabulary[found], ids) else None


def _aligned(matrix: sp.spmatrix, old_to_new: np.ndarray, n: int) -> sp.csr_matrix:
    """A previous items × items matrix in the new vocabulary's numbering."""
    if np.all(np.diff(old_to_new) > 0):
        # Both vocabularies sorted (as TrainingData.from_columns makes them): rows and columns keep
        # their order, so the compressed arrays carry over without a sort.
        csr = matrix.tocsr()
        counts = np.zeros(n, dtype=np.int64)
        counts[old_to_new] = np.diff(csr.indptr)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return sp.csr_matrix((csr.data, old_to_new[csr.indices], indptr), shape=(n, n))
    coo = matrix.tocoo()
    return sp.csr_matrix((coo.data, (old_to_new[coo.row], old_to_new[coo.col])), shape=(n, n))


def _transitions(data: TrainingData, keep: np.ndarray, window: int) -> sp.csr_matrix:
    """:func:`transition_matrix` of these events only."""
    from engine.recipes.sims import TRANSITION_DECAY

    if not keep.any():
        return sp.csr_matrix((data.n_items, data.n_items), dtype=np.float32)
    return transition_matrix(_events(data, keep), window=window, decay=TRANSITION_DECAY)


def _events(data: TrainingData, keep: np.ndarray) -> TrainingData:
    """These events only, in the same vocabularies (no copy of the catalog)."""
    index = np.flatnonzero(keep)
    return TrainingData(
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        user_index=data.user_index[index],
        item_index=data.item_index[index],
        event_types=data.event_types[index],
        event_values=data.event_values[index],
        timestamps=data.timestamps[index],
    )


def _user_items(
    data: TrainingData, after: np.ndarray, before: np.ndarray, weights: np.ndarray
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The user × item matrices of the ``after`` and the ``before`` events (``before`` a subset),
    one row per user with an ``after`` event, in the same order in both."""
    users = np.unique(data.user_index[after])
    row = np.full(data.n_users, -1, dtype=np.int64)
    row[users] = np.arange(len(users))
    return tuple(
        user_item_matrix(row[data.user_index[keep]], data.item_index[keep], weights[keep], len(users), data.n_items)
        for keep in (after, before)
    )


def _updated_similarity(
    previous: sp.csr_matrix, norms_squared: np.ndarray, after: sp.csr_matrix, before: sp.csr_matrix
) -> sp.csr_matrix:
    """Cosine similarities after the affected users' rows of the user × item matrix went from
    ``before`` to ``after`` (matrices of those users' rows only, in the same order), from the
    ``previous`` ones, before each row is cut back to its best
    neighbours (``norms_squared``: each item's squared norm over the whole updated matrix).

    A cosine is a dot product over two norms. Only the affected users change dot products, by
    ``after.T @ after - before.T @ before`` = ``added.T @ after + before.T @ added`` with
    ``added = after - before`` (so the cost follows the new events times the histories they join,
    not the square of long histories), and only the norms
    of items they touched; so each stored similarity is rescaled to the new norms and the
    change of its dot product added. A pair that neither item kept among its neighbours before
    starts from an old dot product of 0 (both were outside each other's lists).
    """
    new_norm = np.sqrt(norms_squared)
    old_squared = norms_squared - _column_squares(after) + _column_squares(before)
    old_norm = np.sqrt(np.maximum(old_squared, 0.0))
    inverse = np.divide(1.0, new_norm, out=np.zeros_like(new_norm), where=new_norm > 0)
    ratio = old_norm * inverse

    added = (after - before).tocsr()
    added.eliminate_zeros()
    change = (added.T @ after + before.T @ added).tocsr()
    change.setdiag(0)
    change.eliminate_zeros()
    # Pairs kept only in the other item's row: their old similarity is known from there.
    pattern = change.copy()
    pattern.data[:] = 1.0
    mirrored = pattern.T.tocsr().multiply(previous).T.tocsr()
    here = pattern.multiply(previous)
    here.data[:] = 1.0
    mirrored = (mirrored - mirrored.multiply(here)).tocsr()
    mirrored.eliminate_zeros()

    rescaled = _scaled(previous, ratio)
    added = _scaled(mirrored, ratio) + _scaled(change, inverse)
    result = (rescaled + added).tocsr()
    result.data[result.data <= 1e-7] = 0.0
    result.eliminate_zeros()
    return result


def _column_squares(matrix: sp.csr_matrix) -> np.ndarray:
    return np.asarray(matrix.power(2).sum(axis=0), dtype=np.float64).ravel()


def _scaled(matrix: sp.spmatrix, factor: np.ndarray) -> sp.csr_matrix:
    """``diag(factor) @ matrix @ diag(factor)``, computed on the stored entries."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    factor = factor.astype(np.float32)
    matrix.data *= np.repeat(factor, np.diff(matrix.indptr))
    matrix.data *= factor[matrix.indices]
    return matrix
