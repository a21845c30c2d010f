"""sims: "customers who interacted with X also interacted with Y", from co-occurrence in order.

Two views of "also", blended: cosine co-occurrence over who-touched-what (``implicit``'s
nearest-neighbour model), and co-occurrence in sequence, what people touched shortly before or
after X (:func:`engine.recipes.sequences.transition_matrix`, both directions). How much the
sequence counts is chosen at fit time by which blend best predicts, on held-out users, what
they touched after their latest item. Given only a user's recent events it aggregates the
neighbours of those items, recency-weighted, so it answers in real time too.

Training cost: on small data (under :data:`SHARED_FIT_EVENTS` events) the blend is chosen on a
probe model fitted without the held-out users, then the model is fitted again on everything (exact,
and cheap there). On large data one fit on everything except the held-out users' answers (their
newest 10%; at most 500 users) is both the probe and the final model, and the held-out cases are
scored for every blend at once as sparse rows. An UPDATE with the new events marked
(``TrainingData.new_events``) recomputes only what they touch (:mod:`engine.recipes.sims_update`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np
import scipy.sparse as sp
from marshmallow import Schema, fields, validate

from engine.recipes.base import Query, Ranked, Recipe, TrainingData
from engine.recipes.coded import CodedStrings
from engine.recipes.implicit_backend import fit_cosine
from engine.recipes.search_space import FloatRange, IntRange
from engine.recipes.sequences import transition_matrix
from engine.recipes.sparse_io import sparse_arrays, sparse_from
from engine.recipes.up_selection import holdout_answers
from engine.recipes.validation import holdout, ndcg_at_10, validation_users
from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS, event_weights, user_item_matrix

SEQUENCE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
TRANSITION_DECAY = 0.7
MIN_VALIDATION_USERS = 10
MAX_VALIDATION_USERS = 500
#: From this many events on, one fit (without the held-out users' answers) is probe and final model.
SHARED_FIT_EVENTS = 200_000


class SimsHyperparameters(Schema):
    #: Neighbours kept per item.
    neighbours = fields.Integer(load_default=100, validate=validate.Range(1, 5000))
    #: Count co-occurrence only for these event types (e.g. ["purchase"]); empty = all.
    event_types = fields.List(fields.String(), load_default=list)
    event_weights = fields.Dict(
        keys=fields.String(),
        values=fields.Float(validate=validate.Range(0.0, 100.0)),
        load_default=lambda: dict(DEFAULT_EVENT_WEIGHTS),
    )
    #: How much less each older event of the user's history counts when aggregating.
    history_decay = fields.Float(load_default=0.8, validate=validate.Range(0.0, 1.0))
    #: Share of the similarity that comes from order (None: chosen on held-out users).
    sequence_weight = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0.0, 1.0))
    #: How many steps apart two interactions still count as "shortly before or after".
    sequence_window = fields.Integer(load_default=5, validate=validate.Range(1, 50))
    validation_share = fields.Float(load_default=0.2, validate=validate.Range(0.05, 0.5))
    random_state = fields.Integer(load_default=42)


class _LaidOutWhenRead:
    """A matrix attribute that may be set to a description with ``tocsr()`` (as an UPDATE leaves
    it) and is laid out as a CSR matrix, once, when read; the value as set stays at ``_<name>``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, obj: object, owner: type | None = None):
        if obj is None:
            return self
        value = getattr(obj, self.slot)
        if not isinstance(value, sp.spmatrix | sp.sparray):
            value = value.tocsr()
            setattr(obj, self.slot, value)
        return value

    def __set__(self, obj: object, value) -> None:
        setattr(obj, self.slot, value)


class Sims(Recipe):
    name = "sims"
    recipe_type = "RELATED_ITEMS"
    Hyperparameters = SimsHyperparameters
    #: What ``--hpo`` searches (the cosine/order blend is chosen on held-out users at every fit).
    hpo_space = {
        "neighbours": IntRange(10, 500, log=True),
        "history_decay": FloatRange(0.3, 1.0),
        "sequence_window": IntRange(1, 20),
    }

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.sequence = sp.csr_matrix((0, 0), dtype=np.float32)
        self.popularity = np.empty(0, dtype=np.float64)
        #: Each item's squared norm in the weighted user × item matrix the cosines were computed
        #: from (empty: not known, an artifact from before they were kept): an UPDATE rescales the
        #: stored cosines to the new norms from these and the affected shoppers' rows alone.
        self.norms = np.empty(0, dtype=np.float64)
        self.sequence_weight = 0.5

    # An UPDATE leaves each matrix described rather than laid out (sims_update._Spliced: mostly the
    # previous version's arrays): saving writes it straight into the artifact, and it is laid out in
    # memory only where something reads it.
    similarity = _LaidOutWhenRead()
    sequence = _LaidOutWhenRead()

    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        hp = self.hyperparameters
        if hp["sequence_weight"] is not None:
            self.sequence_weight = hp["sequence_weight"]
        elif previous is not None:
            # UPDATE: keep the blend the last FULL training chose (choosing it costs a second fit).
            self.sequence_weight = previous.sequence_weight
        if previous is not None and data.new_events is not None:
            from engine.recipes.sims_update import update

            if update(self, previous, data):
                return self
        if hp["sequence_weight"] is None and previous is None:
            if len(data) >= SHARED_FIT_EVENTS and self._choose_on_shared_fit(data):
                return self  # fitted as a side effect, without the held-out users' answers
            self.sequence_weight = self._choose_sequence_weight(data)
        self._fit_core(data)
        return self

    def event_weights(self, data: TrainingData, events: np.ndarray | None = None) -> np.ndarray:
        """Per event (or per one of ``events``, indices), how much it counts (0: left out, e.g.
        not one of ``event_types``). Each event's weight depends on that event alone."""
        hp = self.hyperparameters
        types, values, stamps = data.event_types, data.event_values, data.timestamps
        if events is not None:
            types, values, stamps = types[events], values[events], stamps[events]
        weights = event_weights(types, values, stamps, weights=hp["event_weights"])
        if hp["event_types"]:
            wanted = [t.lower() for t in hp["event_types"]]
            weights = np.where(CodedStrings.encode(types).mask(wanted), weights, 0.0)
        return weights

    def _fit_core(self, data: TrainingData) -> None:
        hp = self.hyperparameters
        weights = self.event_weights(data)
        matrix = user_item_matrix(data.user_index, data.item_index, weights, data.n_users, data.n_items)
        self.norms = squared_column_norms(matrix)  # before the neighbours exist: not beside them in memory
        self.similarity = fit_cosine(matrix, neighbours=hp["neighbours"]).astype(np.float32)
        self.popularity = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
        # The weights and the matrix are let go before the transitions are counted and summed both
        # ways: that was the FULL's peak at 25 million events.
        counted = weights > 0
        del weights, matrix
        forward = transition_matrix(data, window=hp["sequence_window"], decay=TRANSITION_DECAY, event_mask=counted)
        self.sequence = _symmetric_top(forward, hp["neighbours"])
        del forward
        self._set_items(data.item_ids)

    def _choose_sequence_weight(self, data: TrainingData) -> float:
        """The blend that best predicts, for held-out users, what followed their latest item."""
        hp = self.hyperparameters
        held_out = validation_users(
            data, share=hp["validation_share"], max_users=MAX_VALIDATION_USERS, seed=hp["random_state"]
        )
        if len(held_out) < MIN_VALIDATION_USERS:
            return 0.5
        train, cases = holdout(data, held_out)
        probe = type(self)(**hp)
        probe._fit_core(train)
        totals = dict.fromkeys(SEQUENCE_WEIGHTS, 0.0)
        for case in cases:
            latest = probe.item_index(case.history[-1].item_id) if case.history else None
            if latest is None:
                continue
            for weight in SEQUENCE_WEIGHTS:
                probe.sequence_weight = weight
                ranked = probe.recommend(Query(item_id=case.history[-1].item_id, num_results=10))
                totals[weight] += ndcg_at_10(ranked.item_ids, case.truth)
        return _best_weight(totals)

    def _choose_on_shared_fit(self, data: TrainingData) -> bool:
        """Large data: fit once without the held-out users' answers, choose the blend on that fit
        and keep it as the model. False (nothing fitted) when there are too few users to hold out."""
        hp = self.hyperparameters
        held_out = validation_users(
            data, share=hp["validation_share"], max_users=MAX_VALIDATION_USERS, seed=hp["random_state"]
        )
        if len(held_out) < MIN_VALIDATION_USERS:
            return False
        train, cases = holdout_answers(data, held_out, history_limit=1)
        self._fit_core(train)
        latest = np.array([self._item_lookup[c.history[-1].item_id] for c in cases], dtype=np.int64)
        truth = [self.indices(c.truth) for c in cases]
        self.sequence_weight = _best_weight(self.blend_ndcg(latest, truth))
        return True

    def blend_ndcg(self, latest: np.ndarray, truth: list[np.ndarray]) -> dict[float, float]:
        """Summed NDCG@10, per blend, of the lists :meth:`recommend` gives for each ``latest``
        item (``truth``: the items that user touched next), for all cases at once: only items
        with some co-occurrence are ever listed, so each case's candidates are the union of its
        two sparse rows (ties may order differently from ``recommend``'s partial sort)."""
        n_cases, n_items = len(latest), len(self.item_ids)
        cosine = _rows_unit(self.similarity[latest])
        ordered = _rows_unit(self.sequence[latest])
        popularity = self.popularity / max(self.popularity.sum(), 1.0)
        sizes = np.array([len(t) for t in truth], dtype=np.int64)
        truth_items = np.concatenate([np.asarray(t, dtype=np.int64) for t in truth] + [np.empty(0, np.int64)])
        truth_keys = np.repeat(np.arange(n_cases, dtype=np.int64), sizes) * n_items + truth_items
        ideal = np.array([_IDEAL_DCG[min(len(t), 10)] for t in truth])
        totals = {}
        for weight in SEQUENCE_WEIGHTS:
            blend = (cosine * (1.0 - weight) + ordered * weight).tocsr()
            blend.sum_duplicates()
            rows = np.repeat(np.arange(n_cases), np.diff(blend.indptr))
            cols, scores = blend.indices.astype(np.int64), blend.data
            keep = (scores > 0) & (cols != latest[rows])
            rows, cols, scores = rows[keep], cols[keep], scores[keep] + 1e-6 * popularity[cols[keep]]
            order = np.lexsort((-scores, rows))
            rows, cols = rows[order], cols[order]
            position = np.arange(len(rows)) - np.searchsorted(rows, rows)
            top = position < 10
            hit = top & np.isin(rows * n_items + cols, truth_keys)
            dcg = np.bincount(rows[hit], weights=1.0 / np.log2(position[hit] + 2.0), minlength=n_cases)
            totals[weight] = float(np.sum(np.divide(dcg, ideal, out=np.zeros(n_cases), where=ideal > 0)))
        return totals

    def _seed_weights(self, query: Query) -> dict[int, float]:
        return self.seed_items(query, self.hyperparameters["history_decay"])

    def related_scores(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Blended similarity of every item to the weighted seed items, each view scaled to a top of 1."""
        m = self.sequence_weight
        cosine = np.asarray(self.similarity[rows].T @ weights).ravel() if m < 1 else 0.0
        ordered = np.asarray(self.sequence[rows].T @ weights).ravel() if m > 0 else 0.0
        return (1.0 - m) * _unit(cosine) + m * _unit(ordered)

    def recommend(self, query: Query) -> Ranked:
        seeds = self._seed_weights(query)
        popularity = self.popularity / max(self.popularity.sum(), 1.0)
        if seeds:
            rows = np.fromiter(seeds, dtype=np.int64)
            vector = np.fromiter(seeds.values(), dtype=np.float64)
            scores = self.related_scores(rows, vector)
            # Popularity only breaks ties among items with no co-occurrence at all.
            scores = np.where(scores > 0, scores + 1e-6 * popularity, -np.inf)
        else:
            scores = np.where(popularity > 0, popularity, -np.inf)
            rows = np.empty(0, dtype=np.int64)
        if query.candidates is not None:
            return self.rank_candidates(query.candidates, scores)
        exclude = np.concatenate([self.indices(query.exclude), rows])
        return Ranked.from_scores(self.item_ids, scores, query.num_results, exclude.tolist())

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            **_matrix_arrays("sim", self._similarity),
            **_matrix_arrays("seq", self._sequence),
            "popularity": self.popularity,
            "norms": self.norms,
            "sequence_weight": np.array([self.sequence_weight]),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.similarity = sparse_from("sim", arrays)
        self.sequence = sparse_from("seq", arrays)
        self.popularity = np.asarray(arrays["popularity"], dtype=np.float64)
        norms = arrays.get("norms")
        self.norms = np.empty(0, dtype=np.float64) if norms is None else np.asarray(norms, dtype=np.float64)
        self.sequence_weight = float(arrays["sequence_weight"][0])


#: Entries squared and summed at a time by :func:`squared_column_norms` (bounds its temporaries).
NORM_BLOCK_ENTRIES = 1 << 18


def squared_column_norms(matrix: sp.csr_matrix) -> np.ndarray:
    """Each column's sum of squared entries, in float64 (exact for whole weights), a block of
    entries at a time: a squared copy of the whole matrix would add to a FULL's peak memory."""
    totals = np.zeros(matrix.shape[1], dtype=np.float64)
    for lo in range(0, matrix.nnz, NORM_BLOCK_ENTRIES):
        values = matrix.data[lo : lo + NORM_BLOCK_ENTRIES].astype(np.float64)
        columns = matrix.indices[lo : lo + NORM_BLOCK_ENTRIES]
        totals += np.bincount(columns, weights=values * values, minlength=len(totals))
    return totals


def _matrix_arrays(prefix: str, matrix) -> dict[str, np.ndarray]:
    """A matrix's arrays for the artifact: a described one (an UPDATE's) writes itself."""
    if isinstance(matrix, sp.spmatrix | sp.sparray):
        return sparse_arrays(prefix, matrix.tocsr())
    return matrix.arrays(prefix)


_IDEAL_DCG = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(10) + 2.0))])


def _best_weight(totals: dict[float, float]) -> float:
    # Ties go to the middle of the range rather than to either extreme.
    return max(SEQUENCE_WEIGHTS, key=lambda w: (round(totals[w], 9), -abs(w - 0.5)))


def _rows_unit(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its largest absolute entry (as :func:`_unit` does to a dense row)."""
    matrix = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    top = np.zeros(matrix.shape[0])
    nonempty = np.diff(matrix.indptr) > 0
    top[nonempty] = np.maximum.reduceat(np.abs(matrix.data), matrix.indptr[:-1][nonempty])
    scale = np.divide(1.0, top, out=np.ones_like(top), where=top > 0)
    matrix.data *= np.repeat(scale, np.diff(matrix.indptr))
    return matrix


def _unit(scores: np.ndarray | float) -> np.ndarray | float:
    if np.isscalar(scores):
        return scores
    top = float(np.abs(scores).max()) if len(scores) else 0.0
    return scores / top if top > 0 else scores


#: Entries of ``forward + forward.T`` summed and cut at a time by :func:`_symmetric_top`.
SYMMETRIC_BLOCK_ENTRIES = 8_000_000


def _symmetric_top(forward: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """``_keep_top(forward + forward.T, k)``, a block of rows at a time: the whole sum (twice the
    transitions) and its sort keys were the training's peak memory (gigabytes at 25 million
    events), where each block's rows are cut to ``k`` as soon as they are summed. Rows are cut
    one by one either way, so the result is the same."""
    forward = forward.tocsr()
    backward = forward.T.tocsr()
    n = forward.shape[0]
    if n == 0:
        return _keep_top(forward, k)
    # Entries up to and including each row; a block ends where its entries would pass the bound
    # (after at least one row).
    reach = np.cumsum(np.diff(forward.indptr) + np.diff(backward.indptr))
    parts, lo = [], 0
    while lo < n:
        before = int(reach[lo - 1]) if lo else 0
        hi = min(n, max(lo + 1, int(np.searchsorted(reach, before + SYMMETRIC_BLOCK_ENTRIES, side="right"))))
        parts.append(_keep_top(forward[lo:hi] + backward[lo:hi], k))
        lo = hi
    return parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")


#: Cells (8 bytes each) of the table one step of :func:`_keep_top` selects in (a megabyte: the
#: tables, and the keys beside them, are reused memory rather than new, and mostly in cache).
TOP_TABLE_CELLS = 1 << 17


def _keep_top(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's ``k`` largest entries (memory stays bounded on long tails), all rows at once.

    Only rows longer than ``k`` are cut, without sorting them: each entry's key packs (value
    descending, column) into 64 bits, so a row's keys order its entries by value with ties in
    column order, and a row keeps the entries up to its ``k``-th smallest key. Rows of similar
    length (up to the same power of two) are laid out as the rows of a table, padded with keys
    above any entry's, and one ``np.partition`` along the table's rows finds every row's ``k``-th
    key (a selection, not a sort). The cost follows the long rows, not every entry."""
    matrix = matrix.tocsr()
    matrix.sum_duplicates()
    counts = np.diff(matrix.indptr)
    long_rows = np.flatnonzero(counts > k)
    keep = np.ones(matrix.nnz, dtype=bool)
    if len(long_rows) and k == 0:
        keep[_ranges(matrix.indptr[long_rows], counts[long_rows])] = False
    elif len(long_rows):
        column_bits = np.uint64(max(int(matrix.shape[1] - 1).bit_length(), 1))
        widths = np.left_shift(1, np.frexp(counts[long_rows] - 1)[1].astype(np.int64))  # ≥ the row's length
        for width in np.unique(widths).tolist():
            group = long_rows[widths == width]
            step = max(1, TOP_TABLE_CELLS // width)
            for start in range(0, len(group), step):
                rows = group[start : start + step]
                sizes = counts[rows]
                at = _ranges(matrix.indptr[rows], sizes)
                key = _descending_bits(matrix.data[at]).astype(np.uint64)
                key <<= column_bits
                key |= matrix.indices[at].astype(np.uint64)
                table = np.full((len(rows), width), np.iinfo(np.uint64).max, dtype=np.uint64)
                # Each row's keys at the start of its table row (flat positions: one index array).
                table.reshape(-1)[_ranges(np.arange(len(rows), dtype=np.int64) * width, sizes)] = key
                table.partition(k - 1, axis=1)  # in place: a copy would be as large again
                kth = table[:, k - 1]
                keep[at] = key <= np.repeat(kth, sizes)
    indptr = np.concatenate([[0], np.cumsum(np.minimum(counts, k))])
    if len(long_rows) == 0:
        return sp.csr_matrix((matrix.data.astype(np.float32), matrix.indices.copy(), indptr), shape=matrix.shape)
    return sp.csr_matrix((matrix.data[keep].astype(np.float32), matrix.indices[keep], indptr), shape=matrix.shape)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + l) for s, l in zip(starts, lengths)])``, vectorised; int32
    where every position fits (half the new memory of int64 positions over millions of entries)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    reach = int((starts + lengths).max()) if len(starts) else 0
    kind = np.int32 if max(reach, total) < 2**31 else np.int64
    return np.repeat((starts - offsets).astype(kind), lengths) + np.arange(total, dtype=kind)


def _descending_bits(values: np.ndarray) -> np.ndarray:
    """float32 values as non-negative integers below 2**32 (uint32 or int64) whose ascending order is
    the values' descending order (the IEEE bit pattern, made monotone over the sign, then inverted)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    bits = values.view(np.uint32)
    if len(values) and values.min() >= 0:  # the usual case (similarities, counts): one pass
        return ~bits  # 0xFFFFFFFF - bits, in 32 bits (widened by the caller)
    ascending = np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))
    return (np.uint32(0xFFFFFFFF) - ascending).astype(np.int64)
