"""item-affinity: user segments, the shoppers most likely to interact with given items.

An implicit-feedback ALS model (``implicit``) over the weighted events, keeping the factors of
every shopper it was trained on: a segment is the users whose factors score highest against the
items' factors. The user factors are one exact ALS user step against the trained item factors,
solved in bulk (:func:`engine.recipes.als_batch.solve_users`).

Asked for items, it answers from the same factors: the shopper's events folded in by the same
user step. Its batch path solves and ranks a whole block of shoppers at once, and answers
exactly as one :meth:`recommend` call per shopper would (both run the same code).

An item the model cannot place (unknown, or in the catalogue but never interacted with, so its
factors carry no signal) gets the most active shoppers: the segment analogue of falling back to
popular items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Self

import numpy as np
import scipy.sparse as sp
from marshmallow import Schema, fields, validate

from engine.recipes.als_batch import solve_users, top_n
from engine.recipes.base import Query, Ranked, Recipe, TrainingData
from engine.recipes.batching import BatchQuery, UserEvents, event_item_index, full_query
from engine.recipes.implicit_backend import fit_als_with, float64_gram
from engine.recipes.search_space import FloatRange, IntRange, OneOf
from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS, configured_weights, event_weights, user_item_matrix


class ItemAffinityHyperparameters(Schema):
    #: Personalize's ``hidden_dimension`` (there 149 by default).
    factors = fields.Integer(load_default=64, validate=validate.Range(2, 1024))
    regularization = fields.Float(load_default=1.0, validate=validate.Range(0.0, 1000.0))
    #: Confidence per unit of event weight (implicit's ``alpha``).
    alpha = fields.Float(load_default=5.0, validate=validate.Range(0.0, 1000.0, min_inclusive=False))
    iterations = fields.Integer(load_default=15, validate=validate.Range(1, 200))
    event_weights = fields.Dict(
        keys=fields.String(),
        values=fields.Float(validate=validate.Range(0.0, 100.0)),
        load_default=lambda: dict(DEFAULT_EVENT_WEIGHTS),
    )
    #: Events with an EVENT_VALUE below this are ignored (Personalize's eventValueThreshold).
    event_value_threshold = fields.Float(load_default=None, allow_none=True)
    #: Older events count less: weight halves every this many days before a shopper's latest event.
    recency_half_life_days = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0.01, None))
    random_state = fields.Integer(load_default=42)


class ItemAffinity(Recipe):
    name = "item-affinity"
    recipe_type = "USER_SEGMENTATION"
    Hyperparameters = ItemAffinityHyperparameters
    #: What ``--hpo`` searches (scored by segment recall, Personalize's segment metrics).
    hpo_space = {
        "factors": IntRange(16, 256, log=True),
        "regularization": FloatRange(0.01, 100.0, log=True),
        "alpha": FloatRange(0.5, 50.0, log=True),
        "iterations": IntRange(5, 30),
        "recency_half_life_days": OneOf((None, 7.0, 30.0, 90.0, 365.0)),
    }

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        f = self.hyperparameters["factors"]
        self.item_factors = np.empty((0, f), dtype=np.float32)
        self.gram = np.empty((f, f), dtype=np.float64)
        self.popularity = np.empty(0, dtype=np.float64)
        self.user_ids = np.empty(0, dtype=str)
        self.user_factors = np.empty((0, f), dtype=np.float32)
        self.user_activity = np.empty(0, dtype=np.float64)

    # ----------------------------------------------------------------- training
    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        hp = self.hyperparameters
        weights = configured_weights(hp, data.event_types, data.event_values, data.timestamps)
        matrix = user_item_matrix(data.user_index, data.item_index, weights, data.n_users, data.n_items)
        initial = None
        if previous is not None and len(previous.item_factors) and previous.item_factors.shape[1] == hp["factors"]:
            # UPDATE: start from the last model's item factors (new items small and random), so a
            # third of the sweeps suffice.
            initial = previous._aligned_item_factors(data.item_ids)
        self._set_items(data.item_ids)
        self.item_factors, _ = fit_als_with(matrix, hp, initial)
        self.gram = float64_gram(self.item_factors)
        self.popularity = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
        self.user_ids = np.asarray(data.user_ids, dtype=str)
        self.user_factors = self._solve(hp["alpha"] * matrix).astype(np.float32)
        self.user_activity = np.asarray(matrix.sum(axis=1)).ravel().astype(np.float64)
        return self

    def _aligned_item_factors(self, item_ids: np.ndarray) -> np.ndarray:
        """This model's factors laid out for a new vocabulary; new items start small and random."""
        rng = np.random.default_rng(self.hyperparameters["random_state"])
        out = (rng.random((len(item_ids), self.item_factors.shape[1])) * 0.01).astype(np.float32)
        old = np.array([self._item_lookup.get(i, -1) for i in np.asarray(item_ids).tolist()], dtype=np.int64)
        out[old >= 0] = self.item_factors[old[old >= 0]]
        return out

    def _solve(self, confidence: sp.csr_matrix) -> np.ndarray:
        return solve_users(self.item_factors, self.gram, self.hyperparameters["regularization"], confidence)

    # ----------------------------------------------------------------- segments
    def recommend_users(self, item_ids: Sequence[str], num_results: int) -> Ranked:
        """The users whose factors score highest against the given items' (summed) factors."""
        known = self.indices(item_ids)
        placed = known[self.popularity[known] > 0] if len(known) else known
        if len(placed):
            scores = self.user_factors @ self.item_factors[placed].sum(axis=0)
        else:
            scores = np.where(self.user_activity > 0, self.user_activity, -np.inf)
        return Ranked.from_scores(self.user_ids, scores, num_results)

    # ----------------------------------------------------------------- items for a shopper
    def recommend(self, query: Query) -> Ranked:
        events = UserEvents.of(query.history)
        return self.recommend_batch(events, [BatchQuery(replace(query, history=()), 0)])[0]

    def recommend_batch(self, events: UserEvents, queries: Sequence[BatchQuery]) -> list[Ranked]:
        """Fold every shopper's events in with one stacked solve, then rank a block at a time."""
        index = event_item_index(self, events)
        confidence = self._confidence(events, index)
        warm = np.diff(confidence.indptr) > 0
        vectors = self._solve(confidence).astype(np.float32)
        results: list[Ranked | None] = [None] * len(queries)
        listed: list[int] = []
        for n, bq in enumerate(queries):
            if bq.events_row is None or not warm[bq.events_row]:
                results[n] = self._popular(full_query(self, events, bq))
            elif bq.query.candidates is not None:
                scores = np.zeros(len(self.item_ids), dtype=np.float32)
                known = self.indices(bq.query.candidates)
                scores[known] = self.item_factors[known] @ vectors[bq.events_row]
                results[n] = self.rank_candidates(bq.query.candidates, scores)
            else:
                listed.append(n)
        if listed:
            chosen = [queries[n] for n in listed]
            rows = np.array([bq.events_row for bq in chosen], dtype=np.int64)
            most = max(bq.query.num_results for bq in chosen)
            ids, scores = top_n(vectors[rows], self.item_factors, most, self._exclusions(events, index, chosen))
            names, values = self.item_ids[ids].tolist(), scores.astype(np.float64).tolist()
            for k, n in enumerate(listed):
                wanted = chosen[k].query.num_results
                keep = [i for i in range(min(wanted, len(values[k]))) if values[k][i] > -np.inf]
                results[n] = Ranked(tuple(names[k][i] for i in keep), tuple(values[k][i] for i in keep))
        return results  # type: ignore[return-value]

    def _popular(self, query: Query) -> Ranked:
        """Nothing known about this shopper yet: the best guess is what is popular."""
        share = np.where(self.popularity > 0, self.popularity / max(self.popularity.sum(), 1.0), -np.inf)
        if query.candidates is not None:
            return self.rank_candidates(query.candidates, share)
        return Ranked.from_scores(self.item_ids, share, query.num_results, self.indices(query.exclude))

    def _confidence(self, events: UserEvents, index: np.ndarray) -> sp.csr_matrix:
        """Rows × items: alpha × summed event weights of each row's known items (implicit's C)."""
        hp = self.hyperparameters
        known = index >= 0
        rows = events.row_of_event[known]
        weights = event_weights(
            np.asarray(events.event_types[known], dtype=str),
            events.event_values[known],
            events.timestamps[known],
            weights=hp["event_weights"],
            value_threshold=hp["event_value_threshold"],
        )
        if hp["recency_half_life_days"] and len(rows):
            stamps = events.timestamps[known]
            latest = np.full(len(events), -np.inf)
            np.maximum.at(latest, rows, stamps)
            weights = weights * np.power(0.5, (latest[rows] - stamps) / 86400.0 / hp["recency_half_life_days"])
        keep = weights > 0
        matrix = sp.coo_matrix(
            (hp["alpha"] * weights[keep], (rows[keep], index[known][keep])), shape=(len(events), len(self.item_ids))
        ).tocsr()
        matrix.sum_duplicates()
        return matrix

    def _exclusions(self, events: UserEvents, index: np.ndarray, chosen: list[BatchQuery]) -> sp.csr_matrix:
        """Rows × items: each query's own exclusions, plus the shopper's history when asked."""
        rows, items = [], []
        for k, bq in enumerate(chosen):
            dropped = self.indices(bq.query.exclude)
            if bq.exclude_seen:
                lo, hi = events.offsets[bq.events_row], events.offsets[bq.events_row + 1]
                seen = index[lo:hi]
                dropped = np.concatenate([dropped, seen[seen >= 0]])
            rows.append(np.full(len(dropped), k, dtype=np.int64))
            items.append(dropped)
        flat_rows, flat_items = np.concatenate(rows), np.concatenate(items)
        return sp.csr_matrix(
            (np.ones(len(flat_rows), dtype=np.float32), (flat_rows, flat_items)),
            shape=(len(chosen), len(self.item_ids)),
        )

    # ----------------------------------------------------------------- persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "item_factors": self.item_factors,
            "popularity": self.popularity,
            "user_ids": self.user_ids,
            "user_factors": self.user_factors,
            "user_activity": self.user_activity,
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_factors = np.asarray(arrays["item_factors"], dtype=np.float32)
        self.gram = float64_gram(self.item_factors)
        self.popularity = np.asarray(arrays["popularity"], dtype=np.float64)
        self.user_ids = np.asarray(arrays["user_ids"], dtype=str)
        self.user_factors = np.asarray(arrays["user_factors"], dtype=np.float32)
        self.user_activity = np.asarray(arrays["user_activity"], dtype=np.float64)
