"""Evaluation-only baselines: what a recipe has to beat, measured in the same run.

These are deliberately the textbook versions with their usual defaults, not recipes: plain
``implicit`` ALS, ``implicit``'s item-kNN (cosine), and EASE (Steck 2019, closed form). Every
event counts 1, as those libraries expect, and each leaves out what the user already has, as
each library does by default. Popularity-count, the baseline Personalize itself suggests, is the
recipe of that name.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from engine.recipes.base import Query, Ranked, TrainingData
from engine.recipes.ease import ease_weights
from engine.records import Interaction


class Baseline:
    """Shared plumbing: the item vocabulary, a user's row from their live events, exclusions."""

    name: ClassVar[str]
    recipe_type: ClassVar[str] = "USER_PERSONALIZATION"

    def __init__(self) -> None:
        self.item_ids = np.empty(0, dtype=str)
        self._lookup: dict[str, int] = {}
        self.popularity = np.empty(0)

    def _vocabulary(self, data: TrainingData) -> sp.csr_matrix:
        self.item_ids = data.item_ids
        self._lookup = {item: i for i, item in enumerate(data.item_ids.tolist())}
        counts = sp.coo_matrix(
            (np.ones(len(data), dtype=np.float32), (data.user_index, data.item_index)),
            shape=(data.n_users, data.n_items),
        ).tocsr()
        counts.sum_duplicates()
        self.popularity = np.asarray((counts > 0).sum(axis=0)).ravel().astype(np.float64)
        return counts

    def _row(self, history: Sequence[Interaction]) -> sp.csr_matrix:
        cols = [i for e in history if (i := self._lookup.get(e.item_id)) is not None]
        data = np.ones(len(cols), dtype=np.float32)
        row = sp.csr_matrix((data, (np.zeros(len(cols), dtype=np.int64), cols)), shape=(1, len(self.item_ids)))
        row.sum_duplicates()
        return row

    def _exclude(self, query: Query) -> np.ndarray:
        return np.array([i for x in query.exclude if (i := self._lookup.get(x)) is not None], dtype=np.int64)

    def default_exclusions(self, history: Sequence[Interaction]) -> frozenset[str]:
        return frozenset(e.item_id for e in history)

    def recommend(self, query: Query) -> Ranked:
        if query.item_id is not None and (i := self._lookup.get(query.item_id)) is not None:
            scores = self._item_scores(i)
        else:
            row = self._row(query.history)
            scores = self._user_scores(row) if row.nnz else None
        if scores is None:  # nothing known about the request: popular items
            scores = np.where(self.popularity > 0, self.popularity, -np.inf)
        return Ranked.from_scores(self.item_ids, scores, query.num_results, self._exclude(query))

    def _user_scores(self, row: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _item_scores(self, item: int) -> np.ndarray:
        raise NotImplementedError


class PlainALS(Baseline):
    """``implicit.als.AlternatingLeastSquares()`` with every default, users folded in by its own
    ``recalculate_user``."""

    name = "plain-als"

    def fit(self, data: TrainingData) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares

        counts = self._vocabulary(data)
        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(random_state=0)
            self.model.fit(counts, show_progress=False)
        return self

    def _user_scores(self, row: sp.csr_matrix) -> np.ndarray:
        with threadpool_limits(1, "blas"):
            vector = self.model.recalculate_user(0, row)
        return np.asarray(self.model.item_factors @ np.ravel(vector), dtype=np.float64)

    def _item_scores(self, item: int) -> np.ndarray:
        factors = self.model.item_factors
        norms = np.linalg.norm(factors, axis=1)
        scores = factors @ factors[item] / np.maximum(norms * norms[item], 1e-12)
        return np.asarray(scores, dtype=np.float64)


class ItemKNN(Baseline):
    """``implicit.nearest_neighbours.CosineRecommender()`` with its defaults (20 neighbours)."""

    name = "item-knn"
    recipe_type = "USER_PERSONALIZATION"

    def fit(self, data: TrainingData) -> Self:
        from implicit.nearest_neighbours import CosineRecommender

        counts = self._vocabulary(data)
        self.model = CosineRecommender()
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            self.model.fit(counts, show_progress=False)
        self.similarity = self.model.similarity.tocsr()
        return self

    def _user_scores(self, row: sp.csr_matrix) -> np.ndarray:
        return np.asarray((row @ self.similarity).todense(), dtype=np.float64).ravel()

    def _item_scores(self, item: int) -> np.ndarray:
        scores = np.asarray(self.similarity[item].todense(), dtype=np.float64).ravel()
        # Items that never co-occurred have no similarity at all: fill the list with popular ones.
        return np.where(scores > 0, scores, 1e-9 * self.popularity / max(self.popularity.max(), 1.0))


class EASE(Baseline):
    """Embarrassingly shallow autoencoder: B = I - P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹, with X
    binary. One dense item × item solve, so only items with interactions take part."""

    name = "ease"

    def __init__(self, regularization: float = 500.0) -> None:
        super().__init__()
        self.regularization = regularization

    def fit(self, data: TrainingData) -> Self:
        counts = self._vocabulary(data)
        binary = (counts > 0).astype(np.float64)
        self.active = np.flatnonzero(self.popularity > 0)
        x = binary[:, self.active]
        self.weights = ease_weights(x, self.regularization)
        return self

    def _user_scores(self, row: sp.csr_matrix) -> np.ndarray:
        x = (row[:, self.active] > 0).astype(np.float32)
        scores = np.zeros(len(self.item_ids))
        scores[self.active] = np.asarray(x @ self.weights).ravel()
        return scores

    def _item_scores(self, item: int) -> np.ndarray:
        scores = np.zeros(len(self.item_ids))
        position = np.searchsorted(self.active, item)
        if position < len(self.active) and self.active[position] == item:
            scores[self.active] = self.weights[position]
        return np.where(scores > 0, scores, 1e-9 * self.popularity / max(self.popularity.max(), 1.0))


#: Baseline name → class (popularity-count comes from the recipe registry).
BASELINES: dict[str, type[Baseline]] = {cls.name: cls for cls in (PlainALS, ItemKNN, EASE)}
