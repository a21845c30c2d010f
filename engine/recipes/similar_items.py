"""similar-items: related items from interactions *and* item metadata, so new items have neighbours.

Two item-item similarities are blended per item: co-occurrence (cosine over who touched what, as
in sims) and metadata (TF-IDF of the description plus the categorical fields). An item with
plenty of interactions leans on co-occurrence; the fewer interactions it has, the more it leans
on metadata, down to metadata alone for an item nobody has touched yet (Personalize calls an item
with fewer than 5 interactions cold). An unknown item, or one with no neighbour at all, gets
popular items, as Personalize does; those fill-ins carry no similarity score (NaN).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np
import scipy.sparse as sp
from marshmallow import Schema, fields, validate

from engine.recipes.base import Query, Ranked, Recipe, TrainingData
from engine.recipes.implicit_backend import fit_cosine
from engine.recipes.text_features import item_features, top_neighbours
from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS, event_weights, user_item_matrix


class SimilarItemsHyperparameters(Schema):
    #: Neighbours kept per item (of each similarity, and of the blend).
    neighbours = fields.Integer(load_default=100, validate=validate.Range(1, 5000))
    #: Share of metadata similarity for an item with enough interactions (0: co-occurrence only).
    metadata_weight = fields.Float(load_default=0.3, validate=validate.Range(0.0, 1.0))
    #: Below this many interactions an item leans on metadata more, linearly, down to metadata only.
    cold_item_interactions = fields.Integer(load_default=5, validate=validate.Range(0, 100_000))
    #: Within metadata: the share of the description's TF-IDF against the categorical fields.
    text_weight = fields.Float(load_default=0.5, validate=validate.Range(0.0, 1.0))
    #: Textual fields to read (default: every field ending in DESCRIPTION).
    text_fields = fields.List(fields.String(), load_default=list)
    #: Categorical fields to read (default: string fields whose values repeat across items).
    categorical_fields = fields.List(fields.String(), load_default=list)
    max_vocabulary = fields.Integer(load_default=20_000, validate=validate.Range(10, 1_000_000))
    event_weights = fields.Dict(
        keys=fields.String(),
        values=fields.Float(validate=validate.Range(0.0, 100.0)),
        load_default=lambda: dict(DEFAULT_EVENT_WEIGHTS),
    )
    #: How much less each older event of the user's history counts when no item is given.
    history_decay = fields.Float(load_default=0.8, validate=validate.Range(0.0, 1.0))


class SimilarItems(Recipe):
    name = "similar-items"
    recipe_type = "RELATED_ITEMS"
    Hyperparameters = SimilarItemsHyperparameters

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.popularity = np.empty(0, dtype=np.float64)

    # ----------------------------------------------------------------- training
    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        hp = self.hyperparameters
        weights = event_weights(data.event_types, data.event_values, data.timestamps, weights=hp["event_weights"])
        matrix = user_item_matrix(data.user_index, data.item_index, weights, data.n_users, data.n_items)
        together = fit_cosine(matrix, neighbours=hp["neighbours"]).astype(np.float32)

        properties = [data.items[i].properties if i in data.items else {} for i in data.item_ids.tolist()]
        features = item_features(
            properties,
            text_fields=hp["text_fields"],
            category_fields=hp["categorical_fields"],
            text_weight=hp["text_weight"],
            max_vocabulary=hp["max_vocabulary"],
        )
        alike = top_neighbours(features, hp["neighbours"])

        interactions = np.bincount(data.item_index[weights > 0], minlength=data.n_items).astype(np.float64)
        share = self._metadata_share(interactions, has_metadata=features.getnnz(axis=1) > 0)
        blended = sp.diags(1.0 - share) @ together + sp.diags(share) @ alike
        self.similarity = _keep_top(sp.csr_matrix(blended, dtype=np.float32), hp["neighbours"])
        self.popularity = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
        self._set_items(data.item_ids)
        return self

    def _metadata_share(self, interactions: np.ndarray, *, has_metadata: np.ndarray) -> np.ndarray:
        """Per item, how much its neighbours come from metadata rather than co-occurrence."""
        hp = self.hyperparameters
        base = hp["metadata_weight"]
        threshold = hp["cold_item_interactions"]
        coldness = np.clip(1.0 - interactions / threshold, 0.0, 1.0) if threshold else np.zeros_like(interactions)
        return np.where(has_metadata, base + (1.0 - base) * coldness, 0.0)

    # ----------------------------------------------------------------- serving
    def _seed_weights(self, query: Query) -> dict[int, float]:
        return self.seed_items(query, self.hyperparameters["history_decay"])

    def recommend(self, query: Query) -> Ranked:
        seeds = self._seed_weights(query)
        rows = np.fromiter(seeds, dtype=np.int64, count=len(seeds))
        similar = np.zeros(len(self.item_ids))
        if len(rows):
            vector = np.fromiter(seeds.values(), dtype=np.float64, count=len(seeds))
            similar = np.asarray(self.similarity[rows].T @ vector).ravel()
        share = self.popularity / max(self.popularity.sum(), 1.0)
        # Similar items first (shifted above every popularity share), then popular items as filler.
        order_key = np.where(similar > 0, 2.0 + similar, np.where(self.popularity > 0, share, -np.inf))
        shown = np.where(similar > 0, similar, np.nan)
        if query.candidates is not None:
            ranked = self.rank_candidates(query.candidates, order_key)
        else:
            exclude = np.concatenate([self.indices(query.exclude), rows])
            ranked = Ranked.from_scores(self.item_ids, order_key, query.num_results, exclude.tolist())
        return Ranked(ranked.item_ids, tuple(self._shown_score(i, shown) for i in ranked.item_ids))

    def _shown_score(self, item_id: str, shown: np.ndarray) -> float:
        i = self.item_index(item_id)
        return float("nan") if i is None else float(shown[i])

    # ----------------------------------------------------------------- persistence
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


def _keep_top(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's ``k`` largest entries (a blend of two top-k lists can hold up to 2k)."""
    matrix.eliminate_zeros()
    counts = np.diff(matrix.indptr)
    if counts.max(initial=0) <= k:
        return matrix
    data, indices, indptr = [], [], [0]
    for r in range(matrix.shape[0]):
        lo, hi = matrix.indptr[r], matrix.indptr[r + 1]
        vals, cols = matrix.data[lo:hi], matrix.indices[lo:hi]
        if hi - lo > k:
            top = np.argpartition(-vals, k - 1)[:k]
            vals, cols = vals[top], cols[top]
        data.append(vals)
        indices.append(cols)
        indptr.append(indptr[-1] + len(vals))
    return sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.array(indptr)), shape=matrix.shape)
