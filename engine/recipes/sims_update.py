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

Norms: a model keeps each item's squared norm (``Sims.norms``); the new norms are those plus what
the affected users' rows changed (``after`` squared minus ``before`` squared, per column), so only
their events are read. A previous version without them (an older artifact) has the norms of the
items concerned read from all the events on those items instead.

Cost: only the rows the change reaches (the items the affected users touched) are recomputed and
cut back; every other row is the previous one carried over (its entries rescaled where a row's or a
column's norm changed). The result is not laid out in memory: each matrix is described
(:class:`_Spliced`: the previous matrix, usually a mapping of its artifact, and the recomputed
rows) and written straight into the new artifact a block of rows at a time, the runs of old entries
between recomputed rows renumbered and rescaled as they go (a whole new copy in memory, then
another in the file, was most of an UPDATE's time: each megabyte a training process touches for
the first time costs about as much as computing it). So the work follows the affected users'
histories plus a few linear passes over the stored entries, not the catalogue's rows. Event weights
are read for the events that need them, not for every event. The result is the same, entry for
entry and bit for bit, as applying the update to the whole matrices at once
(``tests/engine/recipes/test_sims_update_rows.py`` keeps that whole-matrix form as the reference).

The blend weight stays the previous version's. :func:`update` declines (and the recipe refits)
when the previous vocabulary is not part of the new one or the update's estimated work comes near a
refit's (:func:`_worth_updating`).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from engine.recipes.array_file import Streamed
from engine.recipes.base import TrainingData
from engine.recipes.sequences import transitions_gained
from engine.recipes.sims import TRANSITION_DECAY, Sims, _keep_top, _ranges
from engine.recipes.vocabulary import carry, carry_rows, vocabulary_map
from engine.recipes.weighting import user_item_matrix

#: An UPDATE whose estimated work (:func:`_worth_updating`) passes this share of a refit's refits
#: instead (about as cheap then, and exact); catalogs under :data:`SMALL_CATALOG` items are
#: updated whatever the estimate.
REFIT_SHARE = 0.25
SMALL_CATALOG = 1000
#: Entries at or under these are dropped (what old histories left of a cut or vanished pair).
SIMILARITY_FLOOR = 1e-7
SEQUENCE_FLOOR = 1e-6


def update(model: Sims, previous: Sims, data: TrainingData) -> bool:
    """Fit ``model`` as ``previous`` updated with ``data.new_events``; False (``model`` untouched)
    when a full fit is needed instead."""
    hp = model.hyperparameters
    new = np.asarray(data.new_events, dtype=bool)
    if len(new) != len(data) or previous.similarity.shape[0] != len(previous.item_ids):
        return False
    old_to_new = vocabulary_map(previous.item_ids, data.item_ids)
    if np.any(old_to_new < 0):  # an item the previous version knew is gone
        return False
    n = data.n_items
    new_at = np.flatnonzero(new)
    new_weights = model.event_weights(data, new_at)
    fresh_at = new_at[new_weights > 0]
    is_new_item = np.ones(n, dtype=bool)
    is_new_item[old_to_new] = False
    touched = np.zeros(n, dtype=bool)
    touched[data.item_index[fresh_at]] = True
    touched |= is_new_item
    if n >= SMALL_CATALOG and not _worth_updating(data, previous, old_to_new, fresh_at, touched):
        return False

    # The affected users' events (whole histories) that count, in event order.
    affected = np.zeros(data.n_users, dtype=bool)
    affected[data.user_index[fresh_at]] = True
    mine = np.flatnonzero(affected[data.user_index])
    weights = model.event_weights(data, mine)
    mine, weights = mine[weights > 0], weights[weights > 0]
    after, before = _user_items(data, mine, ~new[mine], weights)

    k = max(hp["neighbours"] - 1, 0)  # the item itself was one of its ``neighbours`` (then dropped)
    if len(previous.norms) == len(previous.item_ids):
        # The previous norms plus what the affected shoppers' rows changed: only their events read.
        norms = carry(previous.norms, old_to_new, n) + _column_squares(after) - _column_squares(before)
        model.norms = np.maximum(norms, 0.0)
    else:  # an artifact without them: the norms of the items concerned, from their events
        norms = _squared_norms(model, data, np.unique(after.indices))

    def sequence() -> _Spliced:
        change = transitions_gained(data, mine, new[mine], window=hp["sequence_window"], decay=TRANSITION_DECAY)
        return _updated_sequence(previous.sequence, old_to_new, change, hp["neighbours"])

    # The transitions are updated in a thread while the cosines are (both mostly numpy and scipy
    # work without the interpreter lock; neither reads what the other makes).
    with ThreadPoolExecutor(1, thread_name_prefix="sims-sequence") as side:
        updating = side.submit(sequence)
        model.similarity = _updated_similarity(previous.similarity, old_to_new, norms, after, before, k)
        model.sequence = updating.result()

    gained = np.bincount(data.item_index[fresh_at], weights=new_weights[new_weights > 0], minlength=n)
    model.popularity = carry(previous.popularity, old_to_new, n) + gained
    model._set_items(data.item_ids)
    return True


def _worth_updating(
    data: TrainingData, previous: Sims, old_to_new: np.ndarray, fresh_at: np.ndarray, touched: np.ndarray
) -> bool:
    """Whether the update's work is estimated under :data:`REFIT_SHARE` of a refit's.

    What grows with the data on each side, counted in events and pairs: a refit forms every
    shopper's pairs of events (the cosine's products, the transitions), about the sum of the
    squared history lengths; the update forms the affected shoppers' pairs, recomputes the stored
    entries of the rows they touch (the rest are carried in a few linear passes, as a refit's own
    reading of the events is) and, without the previous norms, reads the events on the items whose
    norm changes. A share
    of the catalogue touched says little: a few new shoppers touch many popular items (more than
    30% of a 200,000-item catalogue at 25 million events with 1% new shoppers), yet their work
    stays a small part of a refit's."""
    per_user = _counts(data.user_index, data.n_users)
    affected = np.zeros(data.n_users, dtype=bool)
    affected[data.user_index[fresh_at]] = True
    stored = np.zeros(data.n_items, dtype=np.float64)
    for matrix in (previous.similarity, previous.sequence):
        if matrix.shape[0] == len(old_to_new):
            stored[old_to_new] += np.diff(matrix.indptr)
    update = float(np.sum(per_user[affected] ** 2) + stored[touched].sum())
    if len(previous.norms) != len(previous.item_ids):  # the norms are read from the events on those items
        update += float(_counts(data.item_index, data.n_items)[touched].sum())
    refit = float(np.sum(per_user**2))
    return update <= REFIT_SHARE * refit


def _counts(codes: np.ndarray, n: int, block: int = 1 << 22) -> np.ndarray:
    """``np.bincount(codes, minlength=n)`` as float64, a block at a time (a whole-column bincount
    first copies the codes to pointer-sized integers: new memory, hundreds of megabytes at 25
    million events)."""
    totals = np.zeros(n, dtype=np.float64)
    for lo in range(0, len(codes), block):
        totals += np.bincount(codes[lo : lo + block], minlength=n)
    return totals


def _user_items(
    data: TrainingData, events: np.ndarray, old: np.ndarray, weights: np.ndarray
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The user × item matrices of ``events`` (indices, with their ``weights``) and of the ``old``
    ones among them, one row per user with an event, in the same order in both."""
    users = np.unique(data.user_index[events])
    row = np.full(data.n_users, -1, dtype=np.int64)
    row[users] = np.arange(len(users))
    rows, items = row[data.user_index[events]], data.item_index[events]
    return tuple(
        user_item_matrix(rows[keep], items[keep], weights[keep], len(users), data.n_items)
        for keep in (np.ones(len(events), dtype=bool), old)
    )


def _squared_norms(model: Sims, data: TrainingData, items: np.ndarray) -> np.ndarray:
    """Each of ``items``' squared norm over the whole user × item matrix (every other item: 0),
    the same float32 values as that matrix's column sums.

    A column sum adds its users' (user, item) sums in user order whatever else the matrix holds,
    so only the events on ``items`` are read, as long as those sums come out the same: they do when
    float32 adds the weights exactly in any order (:func:`_adds_exactly`, e.g. the default whole
    weights); otherwise each (user, item) sum's order follows its user's whole row, and the whole
    histories of the users concerned are read instead."""
    n = data.n_items
    wanted = np.zeros(n, dtype=bool)
    wanted[items] = True
    at = np.flatnonzero(wanted[data.item_index])
    weights = model.event_weights(data, at)
    if not _adds_exactly(weights):
        users = np.zeros(data.n_users, dtype=bool)
        users[data.user_index[at]] = True
        at = np.flatnonzero(users[data.user_index])
        weights = model.event_weights(data, at)
    matrix = user_item_matrix(data.user_index[at], data.item_index[at], weights, data.n_users, n)
    squares = np.asarray(matrix.power(2).sum(axis=0), dtype=np.float64).ravel()
    return np.where(wanted, squares, 0.0)


def _adds_exactly(weights: np.ndarray) -> bool:
    """Whether float32 adds up any of these weights exactly, in any order: they are all (as
    float32) multiples of one power of two ``q`` and their total is at most ``2**24 q``, so every
    partial sum is a float32."""
    counted = weights[weights > 0].astype(np.float32).astype(np.float64)
    if len(counted) == 0:
        return True
    values = np.unique(counted)
    total = float(counted.sum())
    for bits in range(25):
        scaled = values * 2.0**bits
        if np.all(scaled == np.floor(scaled)):
            return total * 2.0**bits <= 2.0**24
    return False


def _updated_similarity(
    previous: sp.csr_matrix,
    old_to_new: np.ndarray,
    norms_squared: np.ndarray,
    after: sp.csr_matrix,
    before: sp.csr_matrix,
    k: int,
) -> _Spliced:
    """Cosine similarities after the affected users' rows of the user × item matrix went from
    ``before`` to ``after`` (matrices of those users' rows only, in the same order), from the
    ``previous`` ones (rows and columns indexed by old items, ``old_to_new`` placing them), each
    row cut back to its best ``k`` (``norms_squared``: the squared norm, over the whole updated
    matrix, of each item ``after`` holds).

    A cosine is a dot product over two norms. Only the affected users change dot products, by
    ``after.T @ after - before.T @ before`` = ``added.T @ after + before.T @ added`` with
    ``added = after - before`` (so the cost follows the new events times the histories they join,
    not the square of long histories), and only the norms of items they touched; so each stored
    similarity is rescaled to the new norms and the change of its dot product added. A pair that
    neither item kept among its neighbours before starts from an old dot product of 0 (both were
    outside each other's lists). Items outside ``after`` keep their norm: a factor of exactly 1.
    """
    n = len(norms_squared)
    in_after = np.zeros(n, dtype=bool)
    in_after[after.indices] = True
    new_norm = np.sqrt(norms_squared)
    old_squared = norms_squared - _column_squares(after) + _column_squares(before)
    old_norm = np.sqrt(np.maximum(old_squared, 0.0))
    inverse = np.divide(1.0, new_norm, out=np.zeros_like(new_norm), where=new_norm > 0)
    ratio = np.where(in_after, old_norm * inverse, 1.0)

    added = (after - before).tocsr()
    added.eliminate_zeros()
    change = (added.T @ after + before.T @ added).tocsr()
    change.data[np.repeat(np.arange(n), np.diff(change.indptr)) == change.indices] = 0  # no pair with itself
    change.eliminate_zeros()
    change.sort_indices()  # the same entries, in order: the products below take the fast path

    old = _Carried(previous, old_to_new, n)
    counts = old.counts
    changed = np.diff(change.indptr)
    rows = np.flatnonzero((changed > 0) | (counts > k))
    factor = ratio.astype(np.float32)

    # The rows the change reaches, exactly as the whole-matrix form computes them: it reads the
    # previous matrix only in those rows and, for the mirrored pairs, in the change's columns.
    pattern = change.copy()
    pattern.data[:] = 1.0
    flipped = pattern.T.tocsr()
    previous_rows = old.only_rows(rows)
    reached = np.flatnonzero(np.diff(flipped.indptr))
    # Usually the same rows (the change is symmetric, and no row is longer than kept): read once.
    mirrored_rows = previous_rows if np.array_equal(reached, rows) else old.only_rows(reached)
    mirrored = flipped.multiply(mirrored_rows).T.tocsr()
    # Each intermediate is let go as soon as it is used: they are as large as the recomputed rows,
    # and all of them held at once were most of the UPDATE's peak memory (new memory costs time).
    del flipped, mirrored_rows
    here = pattern.multiply(previous_rows)
    del pattern
    here.data[:] = 1.0
    mirrored = (mirrored - mirrored.multiply(here)).tocsr()
    del here
    mirrored.eliminate_zeros()
    rescaled = _scaled(previous_rows, factor)
    del previous_rows
    added = _scaled(mirrored, factor)
    del mirrored
    added = added + _scaled(change, inverse)
    del change
    recomputed = (rescaled + added).tocsr()
    del rescaled, added
    recomputed.data[recomputed.data <= SIMILARITY_FLOOR] = 0.0
    recomputed.eliminate_zeros()
    recomputed = _keep_top(_rows(recomputed, rows), k)

    # Every other row: the previous one, rescaled where its item's or a column's norm changed.
    return _Spliced(old, rows, recomputed, factor=factor, floor=SIMILARITY_FLOOR, inclusive=True)


def _updated_sequence(previous: sp.csr_matrix, old_to_new: np.ndarray, change: sp.csr_matrix, keep: int) -> _Spliced:
    """The transition matrix (both directions) plus ``change`` and its transpose, each row cut
    back to its best ``keep``: the previous rows where the change does not reach."""
    n = change.shape[0]
    old = _Carried(previous, old_to_new, n)
    transposed = change.T.tocsr()
    changed = np.diff(change.indptr) + np.diff(transposed.indptr)
    rows = np.flatnonzero((changed > 0) | (old.counts > keep))
    recomputed = (_rows(old.only_rows(rows), rows) + _rows(change, rows) + _rows(transposed, rows)).tocsr()
    recomputed.data[recomputed.data < SEQUENCE_FLOOR] = 0.0  # what the old histories contributed to a cut entry
    recomputed.eliminate_zeros()
    recomputed = _keep_top(recomputed, keep)
    return _Spliced(old, rows, recomputed, floor=SEQUENCE_FLOOR, inclusive=False)


def _in_order(matrix: sp.csr_matrix, old_to_new: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """``matrix`` with its rows sorted and no duplicates, and ``old_to_new``, with the old items
    laid out in the new order first where that order is not theirs (a vocabulary only grows, so
    it normally is)."""
    matrix = sp.csr_matrix(matrix)
    if len(old_to_new) and not np.all(np.diff(old_to_new) > 0):
        n = int(old_to_new.max()) + 1
        matrix = carry_rows(matrix, old_to_new, n, columns=True)
        old_to_new = np.arange(n)
    if not matrix.has_canonical_format:
        matrix = matrix.copy()
        matrix.sum_duplicates()
    return matrix, old_to_new


class _Carried:
    """An items × items matrix of the old vocabulary (``matrix``, from :func:`_in_order`) as seen
    from the new one (``old_to_new``, increasing, places its rows and columns among ``n`` items),
    read where needed rather than laid out anew: ``counts`` (entries per new row) and ``starts``
    (where each new row's entries start in ``matrix``)."""

    def __init__(self, matrix: sp.csr_matrix, old_to_new: np.ndarray, n: int) -> None:
        self.matrix, self.old_to_new = _in_order(matrix, old_to_new)
        # Checked once: the gathers through its column numbers then need no check of their own
        # (np.take's checking mode copies each piece it gathers into). Each row's columns ascend
        # (_in_order), so its first and last are its smallest and largest.
        indptr, columns = self.matrix.indptr, self.matrix.indices
        filled = np.flatnonzero(np.diff(indptr))
        if len(filled) and (
            int(columns[indptr[filled]].min()) < 0 or int(columns[indptr[filled + 1] - 1].max()) >= self.matrix.shape[1]
        ):
            raise ValueError("the previous matrix has column numbers out of range")
        self.n = n
        self.counts = np.zeros(n, dtype=np.int64)
        self.counts[self.old_to_new] = np.diff(self.matrix.indptr)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64) if n else self.counts

    def _index_dtype(self, nnz: int) -> type:
        return np.int32 if nnz < 2**31 and self.n < 2**31 else np.int64

    def _new_columns(self, indices: np.ndarray, index: type) -> np.ndarray:
        """Old column numbers as new ones."""
        if len(self.old_to_new) == self.n:  # no new item: the same vocabulary
            return indices.astype(index, copy=False)
        out = np.empty(len(indices), dtype=index)
        _gather(self.old_to_new.astype(index), indices, out)
        return out

    def only_rows(self, rows: np.ndarray) -> sp.csr_matrix:
        """The matrix laid out for the new vocabulary with every row but ``rows`` (ascending) empty."""
        sizes = self.counts[rows]
        at = _ranges(self.starts[rows], sizes)
        counts = np.zeros(self.n, dtype=np.int64)
        counts[rows] = sizes
        index = self._index_dtype(len(at))
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(index)
        columns = self._new_columns(self.matrix.indices[at], index)
        return sp.csr_matrix((self.matrix.data[at], columns, indptr), shape=(self.n, self.n), copy=False)


#: Entries of a spliced matrix laid out at a time (as it is written to the artifact, or checked).
SPLICE_BLOCK = 1 << 18
#: Carried entries in rows and columns whose factor is at least this are checked against the floor
#: by their stored value alone: only a value under ``floor / SURE_FACTOR**2`` can fall under it.
SURE_FACTOR = 0.5


#: Entries gathered at a time while a block is laid out (their temporaries stay in the processor's cache).
GATHER_CHUNK = 1 << 16


class _Room:
    """Buffers a spliced matrix's blocks are laid out in, one after another (grown when a block
    needs more): new memory for every block costs more than the work on it (first touch)."""

    def __init__(self) -> None:
        self._scratch: dict[np.dtype, np.ndarray] = {}
        self._out: dict[np.dtype, np.ndarray] = {}

    @staticmethod
    def _get(buffers: dict, kind, size: int) -> np.ndarray:
        kind = np.dtype(kind)
        buffer = buffers.get(kind)
        if buffer is None or len(buffer) < size:
            buffer = buffers[kind] = np.empty(size, dtype=kind)
        return buffer[:size]

    def scratch(self, kind, size: int) -> np.ndarray:
        return self._get(self._scratch, kind, size)

    def out(self, kind, size: int) -> np.ndarray:
        return self._get(self._out, kind, size)


class _Spliced:
    """The matrix ``old`` (a :class:`_Carried`) laid out for the new vocabulary, rows ``rows``
    (ascending) taken from ``replacement`` (one row each, new columns) instead, every other entry
    multiplied by its row's and then its column's ``factor`` (when given), float32, and the entries
    at or under ``floor`` (under it, where not ``inclusive``) left out.

    Described, not laid out: :meth:`arrays` gives the artifact's arrays for it, written a block of
    rows at a time (:class:`~engine.recipes.array_file.Streamed`), and :meth:`tocsr` lays it out in
    memory where something reads the matrix. Each block reads the old arrays where they lie
    (usually the previous artifact's mapping): the runs between replaced rows, their columns
    renumbered where new items joined. Which entries fall under the floor (usually none) is known
    before anything is written: only carried entries with a small stored value, or in a row or
    column whose factor is small, need their new value computed to tell."""

    def __init__(
        self,
        old: _Carried,
        rows: np.ndarray,
        replacement: sp.csr_matrix,
        *,
        factor: np.ndarray | None = None,
        floor: float,
        inclusive: bool,
    ) -> None:
        n = old.n
        self.old, self.rows, self.n, self.shape = old, rows, n, (n, n)
        self.replacement = replacement
        self.replaced_data = replacement.data.astype(np.float32, copy=False)
        self.carried = np.ones(n, dtype=bool)
        self.carried[rows] = False
        self.counts = old.counts.copy()  # entries per row, before the floor
        self.counts[rows] = np.diff(replacement.indptr)
        self.firsts = np.cumsum(self.counts) - self.counts
        self.index = old._index_dtype(int(self.counts.sum()))
        data = old.matrix.data
        self.old_data = data if data.dtype == np.float32 else data.astype(np.float32)
        # Old column numbers as new ones (None: the same vocabulary).
        self.table = None if len(old.old_to_new) == n else old.old_to_new.astype(self.index)
        self.factor = None if factor is None else np.asarray(factor, dtype=np.float32)
        # Each old column's factor, by its old number.
        self.old_column_factor = None if factor is None else self.factor[old.old_to_new]
        # Carried rows whose own factor is not 1 (their values are multiplied by it).
        self.row_scaled = None if factor is None else self.carried & (self.factor != 1)
        self.floor, self.inclusive = floor, inclusive
        self.blocks = self._row_blocks()
        self.dropped = self._dropped()
        kept = self.counts.copy()
        if len(self.dropped):
            kept -= np.bincount(np.searchsorted(self.firsts, self.dropped, side="right") - 1, minlength=n)
        self.indptr = np.concatenate([[0], np.cumsum(kept)]).astype(self.index)
        self.nnz = int(self.indptr[-1])

    def _row_blocks(self) -> list[tuple[int, int]]:
        """Consecutive row ranges of about :data:`SPLICE_BLOCK` entries each (at least one row)."""
        ends = np.cumsum(self.counts)
        blocks, lo = [], 0
        while lo < self.n:
            before = int(ends[lo - 1]) if lo else 0
            hi = min(self.n, max(lo + 1, int(np.searchsorted(ends, before + SPLICE_BLOCK, side="right"))))
            blocks.append((lo, hi))
            lo = hi
        return blocks

    def _under(self, values: np.ndarray) -> np.ndarray:
        return values <= self.floor if self.inclusive else values < self.floor

    def _old_span(self, lo: int, hi: int) -> tuple[int, int]:
        """Where rows ``lo``..``hi`` (exclusive) lie in the old arrays."""
        old = self.old
        return int(old.starts[lo]), int(old.starts[hi - 1] + old.counts[hi - 1])

    def _dropped(self) -> np.ndarray:
        """The positions (in the layout before the floor) of the entries the floor leaves out."""
        old, factor = self.old, self.factor
        found = []
        if factor is not None:
            # Only carried rows matter (the replaced ones are checked below), usually all sure.
            unsure_row = self.carried & (factor < SURE_FACTOR)
            unsure_column = (factor if self.table is None else factor[old.old_to_new]) < SURE_FACTOR
            threshold = self.floor / SURE_FACTOR**2 * (1 + 1e-4)
            flags = np.empty(GATHER_CHUNK, dtype=bool)
        for lo, hi in self.blocks:
            start, stop = self._old_span(lo, hi)
            stored = self.old_data[start:stop]
            if factor is None:
                maybe = np.flatnonzero(self._under(stored))
            else:
                doubt = stored <= threshold
                if unsure_column.any():  # gathered a cache-sized piece at a time
                    columns = old.matrix.indices[start:stop]
                    for s in range(0, len(doubt), GATHER_CHUNK):
                        e = min(s + GATHER_CHUNK, len(doubt))
                        np.take(unsure_column, columns[s:e], out=flags[: e - s], mode="clip")
                        doubt[s:e] |= flags[: e - s]
                if unsure_row[lo:hi].any():
                    doubt |= np.repeat(unsure_row[lo:hi], old.counts[lo:hi])
                maybe = np.flatnonzero(doubt)
            if not len(maybe):
                continue
            at = maybe + start
            row = np.searchsorted(old.starts, at, side="right") - 1
            keep = self.carried[row]
            at, row = at[keep], row[keep]
            value = self.old_data[at]
            if factor is not None:
                columns = old.matrix.indices[at]
                value = value * factor[row] * factor[columns if self.table is None else self.table[columns]]
            under = self._under(value)
            found.append(self.firsts[row[under]] + (at[under] - old.starts[row[under]]))
        replaced = np.flatnonzero(self._under(self.replaced_data))
        if len(replaced):
            i = np.searchsorted(self.replacement.indptr, replaced, side="right") - 1
            found.append(self.firsts[self.rows[i]] + (replaced - self.replacement.indptr[i]))
        return np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)

    def _block(self, lo: int, hi: int, values: bool, room: _Room | None = None) -> np.ndarray:
        """Rows ``lo``..``hi`` (exclusive): their columns, or (``values``) their values, the floor
        applied. The old entries of those rows are renumbered (or rescaled) in one pass, then the
        runs between the replaced rows and the replaced rows are joined. With ``room`` the block
        is laid out in its buffers (the one before it is overwritten), else in new memory."""
        old = self.old
        start, stop = self._old_span(lo, hi)
        if values:
            part = self.old_data[start:stop]
            if self.factor is not None:  # row factor first, then column factor, as float32
                part = self._rescaled(part, lo, hi, start, stop, room)
            replaced = self.replaced_data
        else:
            part = old.matrix.indices[start:stop]
            if self.table is not None:
                renumbered = room.scratch(self.index, len(part)) if room else np.empty(len(part), self.index)
                _gather(self.table, part, renumbered, GATHER_CHUNK)
                part = renumbered
            replaced = self.replacement.indices
        a, b = np.searchsorted(self.rows, [lo, hi]).tolist()
        if a == b:
            out = part
        else:
            rows = self.rows[a:b]
            cut_from = (old.starts[rows] - start).tolist()
            cut_to = (old.starts[rows] + old.counts[rows] - start).tolist()
            at = self.replacement.indptr[a : b + 1].tolist()
            pieces = [part[: cut_from[0]]]
            for i in range(b - a):
                following = cut_from[i + 1] if i + 1 < b - a else len(part)
                pieces += (replaced[at[i] : at[i + 1]], part[cut_to[i] : following])
            kind = np.float32 if values else self.index
            size = int(self.firsts[hi - 1] + self.counts[hi - 1] - self.firsts[lo])
            out = np.concatenate(pieces, out=room.out(kind, size) if room else np.empty(size, kind))
        out = out.astype(np.float32 if values else self.index, copy=False)
        if len(self.dropped):
            base = int(self.firsts[lo])
            i, j = np.searchsorted(self.dropped, [base, base + len(out)])
            if i < j:
                out = np.delete(out, self.dropped[i:j] - base)
        return out

    def _rescaled(self, part: np.ndarray, lo: int, hi: int, start: int, stop: int, room: _Room | None) -> np.ndarray:
        """The old values of rows ``lo``..``hi`` (``part``, at ``start``..``stop`` in the old
        arrays) times their row's factor, then their column's. The row factor is skipped where
        every carried row of the block has a factor of exactly 1 (the usual case: the rows whose
        norm changed are recomputed), which leaves every value as it was (x * 1 is x in float32)."""
        old = self.old
        scaled = room.scratch(np.float32, len(part)) if room else np.empty(len(part), np.float32)
        if self.row_scaled[lo:hi].any():
            np.multiply(part, np.repeat(self.factor[lo:hi], old.counts[lo:hi]), out=scaled)
            part = scaled
        columns = old.matrix.indices[start:stop]
        factors = np.empty(min(GATHER_CHUNK, len(part)), dtype=np.float32)
        for s in range(0, len(part), GATHER_CHUNK):
            e = min(s + GATHER_CHUNK, len(part))
            np.take(self.old_column_factor, columns[s:e], out=factors[: e - s], mode="clip")
            np.multiply(part[s:e], factors[: e - s], out=scaled[s:e])
        return scaled

    def _all(self, values: bool, reuse: bool = False) -> Iterator[np.ndarray]:
        """Every block in order; ``reuse``: each laid out in the same buffers (a consumer that is
        done with a block before it asks for the next: writing the artifact)."""
        room = _Room() if reuse else None
        for lo, hi in self.blocks:
            yield self._block(lo, hi, values, room)

    def arrays(self, prefix: str) -> dict[str, np.ndarray | Streamed]:
        """The artifact's arrays for this matrix (as :func:`~engine.recipes.sparse_io.sparse_arrays`
        names them), its entries written a block at a time."""
        return {
            f"{prefix}_data": Streamed(np.dtype(np.float32), self.nnz, lambda: self._all(True, reuse=True)),
            f"{prefix}_indices": Streamed(np.dtype(self.index), self.nnz, lambda: self._all(False, reuse=True)),
            f"{prefix}_indptr": self.indptr,
            f"{prefix}_shape": np.array(self.shape, dtype=np.int64),
        }

    def tocsr(self) -> sp.csr_matrix:
        """The matrix laid out in memory."""
        data = np.concatenate([np.empty(0, np.float32), *self._all(True)])
        indices = np.concatenate([np.empty(0, self.index), *self._all(False)])
        return sp.csr_matrix((data, indices, self.indptr), shape=self.shape, copy=False)


def _gather(table: np.ndarray, at: np.ndarray, out: np.ndarray, block: int = 1 << 20) -> None:
    """``out[:] = table[at]`` a block at a time: ``np.take`` turns its indices into a temporary
    of pointer-sized integers, which for a whole matrix is a fresh allocation whose first touch
    (page faults) cost more than the gather in a training process. ``at`` lies in ``table``
    (:class:`_Carried` checks the column numbers it is used on)."""
    for start in range(0, len(at), block):
        np.take(table, at[start : start + block], out=out[start : start + block], mode="clip")


def _rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``matrix[rows]`` (``rows`` ascending) as a CSR of ``len(rows)`` rows (its own arrays, with
    a new ``indptr``, where every other row is empty: then nothing is copied)."""
    every = np.diff(matrix.indptr)
    if len(rows) and int(every[rows].sum()) == matrix.nnz:
        indptr = np.append(matrix.indptr[rows], matrix.indptr[-1])
        return sp.csr_matrix((matrix.data, matrix.indices, indptr), shape=(len(rows), matrix.shape[1]), copy=False)
    counts = every[rows]
    at = _ranges(matrix.indptr[rows], counts)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((matrix.data[at], matrix.indices[at], indptr), shape=(len(rows), matrix.shape[1]))


def _column_squares(matrix: sp.csr_matrix) -> np.ndarray:
    return np.asarray(matrix.power(2).sum(axis=0), dtype=np.float64).ravel()


def _scaled(matrix: sp.spmatrix, factor: np.ndarray) -> sp.csr_matrix:
    """``diag(factor) @ matrix @ diag(factor)``, computed on the stored entries."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    factor = factor.astype(np.float32)
    matrix.data *= np.repeat(factor, np.diff(matrix.indptr))
    matrix.data *= factor[matrix.indices]
    return matrix
