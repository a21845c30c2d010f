"""sims: "customers who interacted with X also interacted with Y", from co-occurrence in order.

Two views of "also", blended: cosine co-occurrence over who-touched-what (``implicit``'s
nearest-neighbour model), and co-occurrence in sequence, what people touched shortly before or
after X (:func:`engine.recipes.sequences.transition_matrix`, both directions). How much the
sequence counts is chosen at fit time by which blend best predicts, on held-out users, what
they touched after their latest item. Given only a user's recent events it aggregates the
neighbours of those items, recency-weighted, so it answers in real time too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np
import scipy.sparse as sp
from marshmallow import Schema, fields, validate

from engine.recipes.base import Query, Ranked, Recipe, TrainingData
from engine.recipes.implicit_backend import fit_cosine
from engine.recipes.search_space import FloatRange, IntRange
from engine.recipes.sequences import transition_matrix
from engine.recipes.sparse_io import sparse_arrays, sparse_from
from engine.recipes.validation import holdout, ndcg_at_10, validation_users
from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS, event_weights, user_item_matrix

SEQUENCE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
TRANSITION_DECAY = 0.7
MIN_VALIDATION_USERS = 10
MAX_VALIDATION_USERS = 500


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
        self.sequence_weight = 0.5

    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        hp = self.hyperparameters
        if hp["sequence_weight"] is not None:
            self.sequence_weight = hp["sequence_weight"]
        elif previous is not None:
            # UPDATE: keep the blend the last FULL training chose (choosing it costs a second fit).
            self.sequence_weight = previous.sequence_weight
        else:
            self.sequence_weight = self._choose_sequence_weight(data)
        self._fit_core(data)
        return self

    def _fit_core(self, data: TrainingData) -> None:
        hp = self.hyperparameters
        weights = event_weights(data.event_types, data.event_values, data.timestamps, weights=hp["event_weights"])
        if hp["event_types"]:
            wanted = [t.lower() for t in hp["event_types"]]
            weights = np.where(np.isin(np.char.lower(data.event_types.astype(str)), wanted), weights, 0.0)
        matrix = user_item_matrix(data.user_index, data.item_index, weights, data.n_users, data.n_items)
        self.similarity = fit_cosine(matrix, neighbours=hp["neighbours"]).astype(np.float32)
        forward = transition_matrix(data, window=hp["sequence_window"], decay=TRANSITION_DECAY, event_mask=weights > 0)
        self.sequence = _keep_top(forward + forward.T, hp["neighbours"])
        self.popularity = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
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
        # Ties go to the middle of the range rather than to either extreme.
        return max(SEQUENCE_WEIGHTS, key=lambda w: (round(totals[w], 9), -abs(w - 0.5)))

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
            **sparse_arrays("sim", self.similarity.tocsr()),
            **sparse_arrays("seq", self.sequence.tocsr()),
            "popularity": self.popularity,
            "sequence_weight": np.array([self.sequence_weight]),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.similarity = sparse_from("sim", arrays)
        self.sequence = sparse_from("seq", arrays)
        self.popularity = np.asarray(arrays["popularity"], dtype=np.float64)
        self.sequence_weight = float(arrays["sequence_weight"][0])


def _unit(scores: np.ndarray | float) -> np.ndarray | float:
    if np.isscalar(scores):
        return scores
    top = float(np.abs(scores).max()) if len(scores) else 0.0
    return scores / top if top > 0 else scores


def _keep_top(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's ``k`` largest entries (memory stays bounded on long tails), all rows at once."""
    matrix = matrix.tocsr()
    matrix.sum_duplicates()
    n = matrix.shape[0]
    rows = np.repeat(np.arange(n), np.diff(matrix.indptr))
    order = np.lexsort((-matrix.data, rows))
    starts = matrix.indptr[:-1][rows[order]]
    keep = order[np.arange(len(order)) - starts < k]
    return sp.csr_matrix(
        (matrix.data[keep].astype(np.float32), (rows[keep], matrix.indices[keep])), shape=matrix.shape
    )
