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
from engine.recipes.sequences import transitions_gained
from engine.recipes.vocabulary import carry, carry_rows, vocabulary_map
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
    from engine.recipes.sims import TRANSITION_DECAY, _keep_top

    hp = model.hyperparameters
    new = np.asarray(data.new_events, dtype=bool)
    if len(new) != len(data) or previous.similarity.shape[0] != len(previous.item_ids):
        return False
    old_to_new = vocabulary_map(previous.item_ids, data.item_ids)
    if np.any(old_to_new < 0):  # an item the previous version knew is gone
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
    carried = carry_rows(previous.similarity, old_to_new, n, columns=True)
    similarity = _updated_similarity(carried, norms, after, before)
    model.similarity = _keep_top(similarity, k)

    mine = events & counted
    change = transitions_gained(
        data, np.flatnonzero(mine), new[mine], window=hp["sequence_window"], decay=TRANSITION_DECAY
    )
    sequence = (carry_rows(previous.sequence, old_to_new, n, columns=True) + change + change.T).tocsr()
    sequence.data[sequence.data < 1e-6] = 0.0  # what the old histories contributed to a cut entry
    sequence.eliminate_zeros()
    model.sequence = _keep_top(sequence, hp["neighbours"])

    gained = np.bincount(data.item_index[fresh], weights=weights[fresh], minlength=n)
    model.popularity = carry(previous.popularity, old_to_new, n) + gained
    model._set_items(data.item_ids)
    return True


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
