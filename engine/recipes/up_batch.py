"""user-personalization for a block of shoppers at once: the lists ``recommend`` gives, as matrices.

Answering shoppers one at a time spends most of the time on per-call overhead and on passes over
the whole catalogue per shopper; a batch job of a hundred thousand shoppers then ran at a
fiftieth of ``implicit``'s batched rate. Here a block's events are parsed as columns, the ALS
user steps are solved stacked (float64, Woodbury's identity for short histories, as
:func:`engine.recipes.als_batch.solve_users`), taste is one float32 matrix product per block of
rows, and transitions one sparse-times-dense product (the densest transition rows are kept dense).

An item's score is ``(1 − m)·t/max|t| + m·q/max|q|`` (taste t, transitions q). Every item's score
is computed in float32 only to find each row's best n + 9; those, and the items with no
interactions (placed through their metadata neighbours), are then scored in float64 with the
arithmetic of :meth:`UserPersonalization._blend`, ranked, and merged with the seen items the
repeat model ranks, as ``recommend`` merges them.

Where this could differ from ``recommend`` it does not try: a query with an ``itemList``, a
request context the model weighs, a shopper the model knows nothing about (cold start), a model
class that answers differently, and a row whose top holds scores closer than float32 products
can tell apart (``_NEAR``: ties, whose order is whatever ``recommend``'s own arithmetic and
partial sort leave) are answered by ``recommend`` itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from engine.recipes import user_personalization as up
from engine.recipes.als_batch import grouped_top, length_blocks, padded_rows, sorted_top, stable_inverse
from engine.recipes.base import Ranked
from engine.recipes.batching import BatchQuery, UserEvents, event_item_index, full_query
from engine.recipes.repeats import MAX_SEEN, rank_within
from engine.recipes.up_batch_taste import taste_layout

if TYPE_CHECKING:
    from engine.recipes.user_personalization import UserPersonalization

#: Taste-matrix elements (float32) per block of rows: about 16 MB, so a block stays in cache-sized pieces.
_BLOCK_ELEMENTS = 4_000_000
#: Items are dealt into groups of this many for the top-n narrowing (als_batch.grouped_top): 16 gathers
#: half the items of 32 after the groups are picked, for about the same pass (5 µs a shopper less).
_GROUP = 16
#: Extra items taken from the float32 pass beyond the n + 1 needed, so that a row's list is
#: settled in float64 without asking again.
_MARGIN = 8
#: At most this far apart are an item's float32 score and its float64 one (scores are at most 1
#: in magnitude; float32 keeps 24 bits).
_FLOAT32_ERROR = 1e-6
#: Scores this close are a tie as far as this module can tell: its float32 matrix-matrix products
#: (taste, and transitions) differ from ``recommend``'s matrix-vector ones by up to about 2e-7
#: (measured on the batch benchmark's model), so two items closer than this may come in either
#: order, and the row is left to ``recommend`` (under one row in a hundred).
_NEAR = 1e-6
#: Transition rows with at least this share of the catalog are kept dense for the batch (at most
#: _DENSE_BYTES of them, the densest first).
_DENSE_SHARE = 0.05
_DENSE_BYTES = 64_000_000
#: Threads scoring blocks of rows at once (at most one per core); a batch job's worker processes,
#: one per core already, set it to 1.
THREADS = 4
#: Working memory of the stacked user solves per block, in float64 elements (about 64 MB).
_SOLVE_ELEMENTS = 8_000_000


def recommend_batch(model: UserPersonalization, events: UserEvents, queries: Sequence[BatchQuery]) -> list[Ranked]:
    """One :class:`Ranked` per query, in order: the list and scores ``model.recommend`` gives."""
    answers: list[Ranked | None] = [None] * len(queries)
    fast = [k for k, bq in enumerate(queries) if _vectorisable(model, bq)]
    # Small stacked solves and cache-sized products: BLAS threads would only add hand-offs, and a
    # batch job's reader thread has the other core (DESIGN.md, pitfalls). The rows left to
    # ``recommend`` too: its one catalog-sized matrix-vector product took 3× as long with BLAS
    # threads fighting the batch's own threads (the answers are the same: each item's dot
    # product is computed alike whatever the threads).
    with threadpool_limits(1, "blas"):
        if fast:
            block = _Block(model, events, [queries[k] for k in fast]).answers()
            for k, ranked in zip(fast, block, strict=True):
                answers[k] = ranked
        return [
            ranked if ranked is not None else model.recommend(full_query(model, events, bq))
            for ranked, bq in zip(answers, queries, strict=True)
        ]


def _vectorisable(model: UserPersonalization, bq: BatchQuery) -> bool:
    q = bq.query
    return (
        bq.events_row is not None
        and q.candidates is None
        and q.num_results > 0
        and not (model.choice.context_weight and q.context)
    )


class _Block:
    """The queries of one batch block, their events as columns, and the matrices that answer them."""

    def __init__(self, model: UserPersonalization, events: UserEvents, queries: Sequence[BatchQuery]) -> None:
        self.model = model
        self.queries = queries
        self.n_items = n_items = len(model.item_ids)
        self.calibrated = len(model.calibration.hit_rates) > 0
        rows = np.array([bq.events_row for bq in queries], dtype=np.int64)
        starts, ends = events.offsets[rows], events.offsets[rows + 1]
        lengths = ends - starts
        n_rows = len(queries)
        before = np.cumsum(lengths) - lengths
        total = int(lengths.sum())
        # Per event of every query (a shopper asked twice has their events twice): its row, its
        # position in the row's history (oldest first) and its place in ``events``.
        self.event_row = np.repeat(np.arange(n_rows), lengths)
        position = np.arange(total) - np.repeat(before, lengths)
        taken = np.repeat(starts, lengths) + position
        item_of_event = event_item_index(model, events)
        type_codes, type_names = _factorised(events.event_types)
        self.item = item_of_event[taken]
        self.type = type_codes[taken]
        self.type_names = type_names
        self.timestamps = events.timestamps[taken]
        self.position = position
        self._unknown_names = events.item_ids[taken[self.item < 0]]
        self.has_events = lengths > 0
        weights = self._event_weights(events.event_values[taken])
        known = self.item >= 0
        self.known_rows = np.zeros(n_rows, dtype=bool)
        self.known_rows[self.event_row[known]] = True
        # Each row's known items (sorted by row, then item), with their summed weights and the
        # position of their latest event: what _history_weights computes per shopper.
        key = self.event_row[known] * n_items + self.item[known]
        self.item_keys, inverse = np.unique(key, return_inverse=True)
        summed = np.bincount(inverse, weights=weights[known], minlength=len(self.item_keys))
        latest = np.full(len(self.item_keys), -1, dtype=np.int64)
        np.maximum.at(latest, inverse, position[known])
        key_row = self.item_keys // n_items
        newest_first = np.lexsort((-latest, key_row))
        kept = newest_first[summed[newest_first] > 0]
        self.h_row = key_row[kept]
        self.h_item = self.item_keys[kept] % n_items
        self.h_weight = summed[kept]
        self.h_rank = rank_within(self.h_row)
        # A shopper whose known events all weigh nothing scores every item 0: ties everywhere.
        self.usable = self.known_rows & (np.bincount(self.h_row, minlength=n_rows) > 0)

    # ----------------------------------------------------------------- events
    def _event_weights(self, values: np.ndarray) -> np.ndarray:
        """engine.recipes.weighting.event_weights, with recency measured from each shopper's own
        latest known event (as ``recommend`` measures it on one shopper's history)."""
        hp = self.model.hyperparameters
        lookup = {k.lower(): float(v) for k, v in hp["event_weights"].items()}
        per_type = np.array([lookup.get(t.lower(), 1.0) for t in self.type_names], dtype=np.float64)
        w = per_type[self.type] if len(self.type) else np.empty(0)
        if hp["event_value_threshold"] is not None:
            w = np.where(np.isnan(values) | (values >= hp["event_value_threshold"]), w, 0.0)
        if hp["recency_half_life_days"] and len(w):
            known = self.item >= 0
            reference = np.full(len(self.has_events), -np.inf)
            np.maximum.at(reference, self.event_row[known], self.timestamps[known])
            age_days = np.maximum(reference[self.event_row] - self.timestamps, 0.0) / 86400.0
            w = w * np.power(0.5, age_days / hp["recency_half_life_days"])
        return w

    def _inputs(self, values: np.ndarray, keep: np.ndarray) -> sp.csr_matrix:
        """Rows × items weights of the kept history entries, folded like ``_input_vector``: a
        shopper's weight on an item with no interactions goes to its metadata neighbours."""
        model = self.model
        rows, items, values = self.h_row[keep], self.h_item[keep], values
        shape = (len(self.queries), self.n_items)
        if model.cold_neighbours.nnz:
            on_cold = model.popularity[items] <= 0
            if on_cold.any():
                folded_rows = np.unique(rows[on_cold])
                plain = ~np.isin(rows, folded_rows)
                parts = [(rows[plain], items[plain], values[plain])]
                for r in folded_rows.tolist():
                    mine = rows == r
                    x = model._input_vector(items[mine], values[mine])
                    nz = np.flatnonzero(x)
                    parts.append((np.full(len(nz), r), nz, x[nz]))
                rows, items, values = (np.concatenate(p) for p in zip(*parts, strict=True))
        out = sp.csr_matrix((values, (rows, items)), shape=shape)
        out.sum_duplicates()
        return out

    def _taste_inputs(self) -> sp.csr_matrix:
        h = self.model.choice.half_life
        weights = self.h_weight
        if h is not None:
            weights = weights * np.power(0.5, self.h_rank / h)
        return self._inputs(weights, np.ones(len(self.h_row), dtype=bool))

    def _seeds(self) -> sp.csr_matrix | None:
        """Rows × items seed weights of "what comes next" (``_sequence_scores``): each shopper's
        latest items, older ones weighing less; None when transitions count for nothing."""
        model = self.model
        if model.transitions.nnz == 0 or model.choice.sequence_weight == 0:
            return None
        window = model.hyperparameters["sequence_window"]
        keep = self.h_rank < window
        seeds = self._inputs(np.power(up.SEED_DECAY, self.h_rank[keep]), keep)
        seeds.eliminate_zeros()
        return seeds

    def _sequence_block(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo:hi's transition scores, dense (float32). Items many people go on from have
        dense rows in :class:`_Transitions` (a product per block); the rest are added pair by pair."""
        seeds = self.seeds[lo:hi]
        table = _transitions(self.model)
        heavy = table.heavy_position[seeds.indices] >= 0
        rows = np.repeat(np.arange(hi - lo), np.diff(seeds.indptr))
        part = sp.csr_matrix(
            (seeds.data[heavy].astype(np.float32), (rows[heavy], table.heavy_position[seeds.indices[heavy]])),
            shape=(hi - lo, len(table.heavy)),
        )
        out = np.asarray(part @ table.dense) if part.nnz else np.zeros((hi - lo, self.n_items), dtype=np.float32)
        light_rows, light_items, light_values = rows[~heavy], seeds.indices[~heavy], seeds.data[~heavy]
        t = table.sparse
        lengths = t.indptr[light_items + 1] - t.indptr[light_items]
        if lengths.sum():
            before = np.cumsum(lengths) - lengths
            at = np.arange(int(lengths.sum())) - np.repeat(before - t.indptr[light_items], lengths)
            flat = np.repeat(light_rows * self.n_items, lengths) + t.indices[at]
            values = (t.data[at] * np.repeat(light_values, lengths)).astype(np.float32)
            np.add.at(out.reshape(-1), flat, values)
        return out

    def _seen(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row, the known items already interacted with, in ``_seen``'s order (the repeat
        model's newest-first items, then the rest by column), with the chance of each coming back."""
        model = self.model
        n_items = self.n_items
        # Items the model does not know still take a place among the newest distinct items.
        code = self.item.copy()
        unknown = code < 0
        if unknown.any():
            _, local = np.unique(np.asarray(self._unknown_names, dtype=str), return_inverse=True)
            code[unknown] = n_items + local
        width = n_items + int(unknown.sum()) + 1
        key = self.event_row * width + code
        uniq, first, inverse, count = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
        last = np.full(len(uniq), -1, dtype=np.int64)
        np.maximum.at(last, inverse, np.arange(len(key)))
        row = uniq // width
        last_ts = self.timestamps[last]
        order = np.lexsort((first, -last_ts, row))
        rank = rank_within(row[order])
        recent = order[rank < MAX_SEEN]
        recent_rank = rank[rank < MAX_SEEN]
        is_known = code[first[recent]] < n_items
        ranked, ranked_rank = recent[is_known], recent_rank[is_known]
        ranked_row = row[ranked]
        n_rows = len(self.queries)
        if model.repeats.enabled and len(ranked):
            now = np.full(n_rows, -np.inf)
            np.maximum.at(now, self.event_row, self.timestamps)
            distinct = np.bincount(ranked_row, minlength=n_rows)
            features = np.zeros((len(ranked), model.repeats.n_features))
            features[:, 0] = 1.0
            features[:, 1] = np.log1p(ranked_rank.astype(np.float64))
            features[:, 2] = ranked_rank == 0
            features[:, 3] = np.log1p(count[ranked].astype(np.float64))
            features[:, 4] = np.log1p(np.maximum(now[ranked_row] - last_ts[ranked], 0.0) / 3600.0)
            features[:, 5] = np.log1p(distinct[ranked_row].astype(np.float64))
            column = {t: 6 + k for k, t in enumerate(model.repeats.event_types)}
            type_column = np.array([column.get(t.lower(), -1) for t in self.type_names], dtype=np.int64)
            typed = type_column[self.type[last[ranked]]]
            has = typed >= 0
            features[np.flatnonzero(has), typed[has]] = 1.0
            chance = 1.0 / (1.0 + np.exp(-np.clip(features @ model.repeats.coef, -30, 30)))
        else:
            chance = np.zeros(len(ranked))
        ranked_items = code[first[ranked]]
        # The rest: every other known item of the history, by column.
        known_keys = self.item_keys  # sorted, and holding every ranked key
        rest = np.ones(len(known_keys), dtype=bool)
        rest[np.searchsorted(known_keys, ranked_row * n_items + ranked_items)] = False
        rest_keys = known_keys[rest]
        rows = np.concatenate([ranked_row, rest_keys // n_items])
        items = np.concatenate([ranked_items, rest_keys % n_items])
        chances = np.concatenate([chance, np.zeros(len(rest_keys))])
        order = np.argsort(rows, kind="stable")
        return rows[order], items[order], chances[order]

    # ----------------------------------------------------------------- exclusions
    def _exclusions(self, seen_rows: np.ndarray, seen_items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, item) pairs each query leaves out: its own ``exclude`` plus, as the batch job
        asks, the campaign's default exclusions or the whole history."""
        model = self.model
        cache: dict[frozenset, np.ndarray] = {}
        rows, items = [], []
        default_drops_history = not (model.repeats.enabled and self.calibrated)
        history_rows = np.zeros(len(self.queries), dtype=bool)
        for r, bq in enumerate(self.queries):
            if bq.query.exclude:
                found = cache.get(bq.query.exclude)
                if found is None:
                    found = cache[bq.query.exclude] = model.indices(bq.query.exclude)
                rows.append(np.full(len(found), r))
                items.append(found)
            if self.has_events[r] and (bq.exclude_history or (bq.exclude_seen and default_drops_history)):
                history_rows[r] = True
        # All of a history's known items (``_seen`` holds them all).
        drop = history_rows[seen_rows]
        rows.append(seen_rows[drop])
        items.append(seen_items[drop])
        return np.concatenate(rows).astype(np.int64), np.concatenate(items).astype(np.int64)

    # ----------------------------------------------------------------- answering
    def answers(self) -> list[Ranked | None]:
        """Per query its list, or None where ``recommend`` must answer (see the module docstring)."""
        model = self.model
        n_rows, n_items = len(self.queries), self.n_items
        out: list[Ranked | None] = [None] * n_rows
        if n_items == 0 or not self.usable.any():
            return out
        self._prepare_taste()
        self._prepare_cold()
        self.seeds = self._seeds()
        seen_rows, seen_items, seen_chance = self._seen()
        excl_rows, excl_items = self._exclusions(seen_rows, seen_items)
        self.n_wanted = np.array([bq.query.num_results for bq in self.queries], dtype=np.int64)
        # What _top_new leaves out: what the shopper has (when calibrated) and what is excluded.
        mask_rows = np.concatenate([seen_rows, excl_rows]) if self.calibrated else excl_rows
        mask_items = np.concatenate([seen_items, excl_items]) if self.calibrated else excl_items
        order = np.argsort(mask_rows, kind="stable")
        mask_rows, mask_items = mask_rows[order], mask_items[order]
        width = -(-n_items // _GROUP) * _GROUP
        per_block = max(1, min(n_rows, _BLOCK_ELEMENTS // width))
        spare: SimpleQueue[tuple[np.ndarray | None, np.ndarray]] = SimpleQueue()
        starts = range(0, n_rows, per_block)
        threads = max(1, min(THREADS, os.cpu_count() or 1, len(starts)))
        for _ in range(threads):
            # A taste matrix for EASE only: ALS's taste goes straight into the approximation.
            taste = np.empty((per_block, n_items), dtype=np.float32) if self.layout is None else None
            spare.put((taste, np.empty((per_block, width), dtype=np.float32)))

        def rows_from(lo: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            hi = min(n_rows, lo + per_block)
            m_lo, m_hi = np.searchsorted(mask_rows, [lo, hi])
            buffers = spare.get()
            try:
                return self._new_items(lo, hi, buffers, mask_rows[m_lo:m_hi] - lo, mask_items[m_lo:m_hi])
            finally:
                spare.put(buffers)

        # The blocks' numpy work runs without the interpreter lock: blocks go to a few threads.
        with ThreadPoolExecutor(threads, thread_name_prefix="up-batch") as pool:
            done = list(pool.map(rows_from, starts))
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        fallback = np.zeros(n_rows, dtype=bool)
        for lo, (rows, items, scores, tied) in zip(starts, done, strict=True):
            parts.append((lo + rows, items, scores))
            fallback[lo + tied] = True
        new_rows, new_items, new_scores = (np.concatenate(p) for p in zip(*parts, strict=True))
        if self.calibrated:
            allowed = ~np.isin(seen_rows * n_items + seen_items, excl_rows * n_items + excl_items)
            lists = self._merged(new_rows, new_items, seen_rows[allowed], seen_items[allowed], seen_chance[allowed])
        else:
            lists = (new_rows, new_items, new_scores)
        l_rows, l_items, l_scores = lists
        bounds = np.searchsorted(l_rows, np.arange(n_rows + 1))
        names = model.item_ids[l_items].tolist()
        scores = l_scores.tolist()
        for r in np.flatnonzero(self.usable & ~fallback).tolist():
            a, b = bounds[r], bounds[r + 1]
            out[r] = Ranked(tuple(names[a:b]), tuple(scores[a:b]))
        return out

    def _prepare_taste(self) -> None:
        """The shoppers' ALS user vectors (stacked solves), or their EASE inputs."""
        model = self.model
        x = self._taste_inputs()
        if model.choice.family == "als":
            x = x.multiply(x > 0).tocsr()
            self.vectors = _user_vectors(model, x).astype(np.float32)
            self.layout = taste_layout(model, -(-self.n_items // _GROUP) * _GROUP)
        else:
            self.layout = None
            column = np.full(self.n_items, -1, dtype=np.int64)
            column[model.ease_items] = np.arange(len(model.ease_items))
            x = x.tocoo()
            on = (column[x.col] >= 0) & (x.data != 0)
            self.active = sp.csr_matrix(
                (np.log1p(x.data[on]).astype(np.float32), (x.row[on], column[x.col[on]])),
                shape=(len(self.queries), len(model.ease_items)),
            )

    def _prepare_cold(self) -> None:
        """Items with no interactions, and (when they borrow) their metadata neighbours."""
        model = self.model
        self.cold = np.flatnonzero(model.popularity <= 0)
        self.borrow = (
            bool(model.cold_neighbours.nnz) and model.hyperparameters["cold_item_weight"] > 0 and len(self.cold) > 0
        )
        if self.borrow:
            of_cold = model.cold_neighbours[self.cold].tocsr()
            self.neighbours = np.unique(of_cold.indices)
            local = np.full(self.n_items, -1, dtype=np.int64)
            local[self.neighbours] = np.arange(len(self.neighbours))
            # Same stored order as the rows of cold_neighbours, so the sums run in the same order.
            self.neighbours_of_cold = sp.csr_matrix(
                (of_cold.data, local[of_cold.indices], of_cold.indptr), shape=(len(self.cold), len(self.neighbours))
            )

    def _ease_taste(self, lo: int, hi: int, taste: np.ndarray) -> None:
        taste[:] = 0.0
        taste[:, self.model.ease_items] = self.active[lo:hi] @ self.model.ease_weights

    def _new_items(
        self,
        lo: int,
        hi: int,
        buffers: tuple[np.ndarray | None, np.ndarray],
        mask_rows: np.ndarray,
        mask_items: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rows lo:hi's best new items as ``_top_new`` picks them: (row, item, score) sorted by
        row then best first; and the rows to leave to ``recommend`` (exact ties in the top, or a
        top too crowded to settle from the float32 pass)."""
        model, n_items, layout = self.model, self.n_items, self.layout
        mix, cold = model.choice.sequence_weight, self.cold
        count = hi - lo
        if layout is not None:  # ALS: no taste matrix (engine/recipes/up_batch_taste.py)
            taste, vectors = None, self.vectors[lo:hi]
            top_t = layout.largest(vectors)
        else:
            taste = buffers[0][:count, :n_items]
            self._ease_taste(lo, hi, taste)
            top_t = np.maximum(taste.max(axis=1), -taste.min(axis=1)).astype(np.float64)
        if self.seeds is not None:
            sequence = self._sequence_block(lo, hi)
            top_q = sequence.max(axis=1).astype(np.float64)
            if not _transitions(model).nonnegative:
                top_q = np.maximum(top_q, -sequence.min(axis=1))
        else:
            sequence, top_q = None, np.zeros(count)
        units = (np.where(top_t > 0, top_t, 1.0), np.where(top_q > 0, top_q, 1.0))

        def exact(rows: np.ndarray, items: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
            """Scores as _blend computes them; ``t``: the taste of (rows, items) when already known."""
            q = sequence[rows, items] if sequence is not None else np.zeros(np.shape(rows))
            if t is None:
                t = taste[rows, items] if taste is not None else layout.at(vectors, rows, items)
            return _blend(t, q, rows, mix, units)

        def whole_columns(items: np.ndarray) -> np.ndarray:
            return taste[:, items] if taste is not None else layout.columns(vectors, items)

        # Every item's score in float32 (times a positive number per row, which keeps each row's
        # order), to find each row's best few; those are then scored in float64 exactly as
        # _blend scores them.
        if sequence is not None:
            scale = mix / units[1]  # approx × scale ≈ the score
            factor = ((1.0 - mix) / units[0] / scale).astype(np.float32)
        else:
            scale = (1.0 - mix) / units[0] if mix < 1.0 else np.ones(count)
            factor = np.ones(count, dtype=np.float32)
        approx = buffers[1][:count]
        if taste is None:
            if sequence is not None:
                approx[:, :n_items] = sequence
            else:
                approx[:, :n_items] = 0.0
            approx[:, n_items:] = 0.0
            layout.accumulate(approx, vectors * factor[:, None])
        elif sequence is not None:
            np.multiply(taste, factor[:, None], out=approx[:, :n_items])
            approx[:, :n_items] += sequence
        else:
            approx[:, :n_items] = taste
        approx[:, n_items:] = -np.inf
        every = np.repeat(np.arange(count)[:, None], len(cold), axis=1)
        # Items with no interactions: borrowed from their neighbours (before anything is masked).
        if self.borrow:
            near = np.repeat(np.arange(count)[:, None], len(self.neighbours), axis=1)
            near_items = np.broadcast_to(self.neighbours, near.shape)
            near_scores = exact(near, near_items, whole_columns(self.neighbours))
            borrowed = (self.neighbours_of_cold @ near_scores.T).T
            cold_scores = model.hyperparameters["cold_item_weight"] * borrowed
        else:
            cold_scores = exact(every, np.broadcast_to(cold, every.shape), whole_columns(cold))
        approx[mask_rows, mask_items] = -np.inf
        pieces = []
        if len(cold):
            # _top_new drops an item with no interactions that scores 0 or less.
            c_rows, c_at = np.nonzero(np.isfinite(approx[:, cold]) & (cold_scores > 0))
            pieces.append((c_rows, cold[c_at], cold_scores[c_rows, c_at]))
            approx[:, cold] = -np.inf
        k = min(int(self.n_wanted[lo:hi].max()) + 1 + _MARGIN, n_items)
        groups = approx.shape[1] // _GROUP
        p_items, p_approx = (
            sorted_top(approx[:, :n_items], k) if k >= groups else grouped_top(approx, k, _GROUP, groups)
        )
        p_rows = np.repeat(np.arange(count)[:, None], k, axis=1)
        finite = np.isfinite(p_approx)
        pieces.append((p_rows[finite], p_items[finite], exact(p_rows[finite], p_items[finite])))
        rows, items, scores = (np.concatenate(p) for p in zip(*pieces, strict=True))
        order = np.lexsort((-scores, rows))
        rows, items, scores = rows[order], items[order], scores[order]
        rank = rank_within(rows)
        wanted = self.n_wanted[lo:hi][rows]
        # (Nearly) tied scores within the top n + 1: recommend's own arithmetic (and, for exact
        # ties, its partial sort) decides their order.
        tied = (rows[1:] == rows[:-1]) & (scores[:-1] - scores[1:] <= _NEAR) & (rank[:-1] < wanted[:-1])
        # An item left out of the float32 top could still come near the n-th: it scores at most
        # the k-th float32 score plus float32's error.
        last = rank == wanted - 1
        nth = np.full(count, np.inf)
        nth[rows[last]] = scores[last]
        crowded = finite.all(axis=1) & (p_approx[:, -1] * scale + _FLOAT32_ERROR + _NEAR >= nth)
        take = rank < wanted
        unsure = np.union1d(rows[1:][tied], np.flatnonzero(crowded))
        return rows[take], items[take], scores[take], unsure

    def _merged(
        self,
        new_rows: np.ndarray,
        new_items: np.ndarray,
        seen_rows: np.ndarray,
        seen_items: np.ndarray,
        seen_chance: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """repeats.merge for every row: new suggestions at their rank's calibrated chance and the
        allowed seen items at theirs, by chance; new items first on ties, then each list's order."""
        new_rank = rank_within(new_rows)
        seen_rank = rank_within(seen_rows)
        rows = np.concatenate([new_rows, seen_rows])
        items = np.concatenate([new_items, seen_items])
        scores = np.concatenate([self.model.calibration(new_rank), seen_chance])
        n_new = np.bincount(new_rows, minlength=len(self.queries))
        tiebreak = np.concatenate([new_rank, n_new[seen_rows] + seen_rank])
        order = np.lexsort((tiebreak, -scores, rows))
        rows, items, scores = rows[order], items[order], scores[order]
        take = rank_within(rows) < self.n_wanted[rows]
        return rows[take], items[take], scores[take]


def _blend(
    taste: np.ndarray, sequence: np.ndarray, rows: np.ndarray, mix: float, units: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """``UserPersonalization._blend``'s arithmetic, element by element: (1 − m)·taste/max|taste| +
    m·sequence/max|sequence|, with each element's row's maxima (``units``)."""
    return (1.0 - mix) * (taste.astype(np.float64) / units[0][rows]) + mix * (sequence / units[1][rows])


class _Transitions:
    """The transition matrix laid out for batches: its densest rows as a dense float32 block."""

    def __init__(self, transitions: sp.csr_matrix) -> None:
        self.sparse = transitions.tocsr()
        n = self.sparse.shape[1]
        lengths = np.diff(self.sparse.indptr)
        most = max(0, _DENSE_BYTES // max(4 * n, 1))
        densest = np.argsort(-lengths, kind="stable")[:most]
        self.heavy = np.sort(densest[lengths[densest] >= max(1, _DENSE_SHARE * n)])
        self.heavy_position = np.full(self.sparse.shape[0], -1, dtype=np.int64)
        self.heavy_position[self.heavy] = np.arange(len(self.heavy))
        self.dense = self.sparse[self.heavy].toarray().astype(np.float32)
        self.nonnegative = bool((self.sparse.data >= 0).all())


def _transitions(model: UserPersonalization) -> _Transitions:
    """The model's batch layout of its transitions, built once per trained or loaded model."""
    cached = getattr(model, "_batch_transitions", None)
    if cached is None or cached[0] is not model.transitions:
        cached = (model.transitions, _Transitions(model.transitions))
        model._batch_transitions = cached
    return cached[1]


def _user_vectors(model: UserPersonalization, weights: sp.csr_matrix) -> np.ndarray:
    """``_als_scores``'s user step for every row of ``weights``, in float64 (float32's error would
    reorder items whose scores differ by a few millionths): (M + Yᵤᵀ D Yᵤ) u = Yᵤᵀ (1 + d) with
    M = YᵀY + λI and d = α·weight. Rows are solved in blocks of similar length; a row with
    fewer items than factors through Woodbury's identity (one L×L system instead of f×f), as
    :func:`engine.recipes.als_batch.solve_users` does."""
    hp = model.hyperparameters
    y, base, projected = _solve_layout(model)
    f = y.shape[1]
    out = np.zeros((weights.shape[0], f))
    lengths = np.diff(weights.indptr)
    for block, small in length_blocks(lengths, f, woodbury=projected is not None, budget=_SOLVE_ELEMENTS):
        index, d, valid = padded_rows(weights, block)
        d = hp["alpha"] * d
        rhs = np.where(valid, 1.0 + d, 0.0)
        yu = np.take(y, index, axis=0)
        if small:
            pu = np.take(projected, index, axis=0)
            z = np.matmul(rhs[:, None, :], pu)[:, 0, :]
            # I + D·Yᵤ M⁻¹ Yᵤᵀ, built in place (the same values as np.eye + d·S, without two temporaries).
            system = np.matmul(yu, pu.transpose(0, 2, 1))
            system *= d[:, :, None]
            system.reshape(len(block), -1)[:, :: index.shape[1] + 1] += 1.0
            w = np.linalg.solve(system, (d * np.matmul(yu, z[:, :, None])[:, :, 0])[:, :, None])[:, :, 0]
            out[block] = z - np.matmul(w[:, None, :], pu)[:, 0, :]
        else:
            a = base[None] + np.matmul(yu.transpose(0, 2, 1) * d[:, None, :], yu)
            out[block] = np.linalg.solve(a, np.matmul(rhs[:, None, :], yu)[:, 0, :][:, :, None])[:, :, 0]
    return out


def _solve_layout(model: UserPersonalization) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(Y in float64, M = YᵀY + λI, Y M⁻¹ or None where M is too ill-conditioned for Woodbury's
    identity): the same for every block, so built once per loaded model (about 10 ms a block at
    20,000 items)."""
    cached = getattr(model, "_batch_solve_layout", None)
    key = (model.item_factors, model.yty, model.hyperparameters["regularization"])
    if cached is None or any(a is not b for a, b in zip(cached[0][:2], key[:2], strict=True)) or cached[0][2] != key[2]:
        y = model.item_factors.astype(np.float64)
        base = model.yty + key[2] * np.eye(y.shape[1])
        inverse = stable_inverse(base)
        cached = (key, (y, base, y @ inverse if inverse is not None else None))
        model._batch_solve_layout = cached
    return cached[1]


def _factorised(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Small integer codes for a column of a few distinct strings (event types), and the strings."""
    names = list(dict.fromkeys(values.tolist()))
    code = {name: k for k, name in enumerate(names)}
    return np.fromiter(map(code.__getitem__, values.tolist()), dtype=np.int64, count=len(values)), names
