"""sims: "customers who interacted with X also interacted with Y", from item co-occurrence.

Built on ``implicit``'s cosine nearest-neighbour model over who-touched-what. Given an item it
returns that item's neighbours; given only a user's recent events it aggregates the neighbours
of those items, recency-weighted, so it answers in real time too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np
import scipy.sparse as sp
from marshmallow import Schema, fields, validate

from engine.recipes.base import Query, Ranked, Recipe, TrainingData
from engine.recipes.implicit_backend import fit_cosine
from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS, event_weights, user_item_matrix


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


class Sims(Recipe):
    name = "sims"
    recipe_type = "RELATED_ITEMS"
    Hyperparameters = SimsHyperparameters

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.popularity = np.empty(0, dtype=np.float64)

    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        hp = self.hyperparameters
        weights = event_weights(data.event_types, data.event_values, data.timestamps, weights=hp["event_weights"])
        if hp["event_types"]:
            wanted = [t.lower() for t in hp["event_types"]]
            weights = np.where(np.isin(np.char.lower(data.event_types.astype(str)), wanted), weights, 0.0)
        matrix = user_item_matrix(data.user_index, data.item_index, weights, data.n_users, data.n_items)
        self.similarity = fit_cosine(matrix, neighbours=hp["neighbours"]).astype(np.float32)
        self.popularity = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
        self._set_items(data.item_ids)
        return self

    def _seed_weights(self, query: Query) -> dict[int, float]:
        seeds: dict[int, float] = {}
        if (i := self.item_index(query.item_id)) is not None:
            seeds[i] = 1.0
            return seeds
        decay = self.hyperparameters["history_decay"]
        weight = 1.0
        for event in reversed(query.history):  # newest first
            i = self.item_index(event.item_id)
            if i is not None and i not in seeds:
                seeds[i] = weight
                weight *= decay
            if weight < 1e-3:
                break
        return seeds

    def recommend(self, query: Query) -> Ranked:
        seeds = self._seed_weights(query)
        popularity = self.popularity / max(self.popularity.sum(), 1.0)
        if seeds:
            rows = np.fromiter(seeds, dtype=np.int64)
            vector = np.fromiter(seeds.values(), dtype=np.float64)
            scores = np.asarray(self.similarity[rows].T @ vector).ravel()
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
        s = self.similarity.tocsr()
        return {
            "sim_data": s.data,
            "sim_indices": s.indices,
            "sim_indptr": s.indptr,
            "sim_shape": np.array(s.shape, dtype=np.int64),
            "popularity": self.popularity,
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        shape = tuple(int(x) for x in arrays["sim_shape"])
        self.similarity = sp.csr_matrix((arrays["sim_data"], arrays["sim_indices"], arrays["sim_indptr"]), shape=shape)
        self.popularity = np.asarray(arrays["popularity"], dtype=np.float64)
