"""user-personalization: implicit-feedback ALS (``implicit``) with real-time fold-in.

At request time the user's latest events are solved against the item factors (one small
least-squares system, the same one ALS solves for every user while training), so a click shows
in the very next answer, for brand-new users too, with no retraining and no shared state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np
from marshmallow import Schema, fields, validate

from engine.recipes.base import Query, Ranked, Recipe, TrainingData
from engine.recipes.implicit_backend import fit_als
from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS, event_weights, user_item_matrix


class UserPersonalizationHyperparameters(Schema):
    factors = fields.Integer(load_default=64, validate=validate.Range(2, 1024))
    regularization = fields.Float(load_default=1.0, validate=validate.Range(0.0, 1000.0))
    #: Confidence per unit of event weight (implicit's ``alpha``).
    alpha = fields.Float(load_default=5.0, validate=validate.Range(0.0, 1000.0, min_inclusive=False))
    iterations = fields.Integer(load_default=15, validate=validate.Range(1, 200))
    #: Weight per event type (view < add-to-cart < purchase by default); unknown types weigh 1.
    event_weights = fields.Dict(
        keys=fields.String(),
        values=fields.Float(validate=validate.Range(0.0, 100.0)),
        load_default=lambda: dict(DEFAULT_EVENT_WEIGHTS),
    )
    #: Events with an EVENT_VALUE below this are ignored (Personalize's eventValueThreshold).
    event_value_threshold = fields.Float(load_default=None, allow_none=True)
    #: Older events count less: weight halves every this many days (None: no decay).
    recency_half_life_days = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0.01, None))
    random_state = fields.Integer(load_default=42)


class UserPersonalization(Recipe):
    name = "user-personalization"
    recipe_type = "USER_PERSONALIZATION"
    Hyperparameters = UserPersonalizationHyperparameters

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        self.item_factors = np.empty((0, self.hyperparameters["factors"]), dtype=np.float32)
        self.yty = np.empty((0, 0), dtype=np.float64)
        self.popularity = np.empty(0, dtype=np.float64)

    # ----------------------------------------------------------------- training
    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        hp = self.hyperparameters
        weights = event_weights(
            data.event_types,
            data.event_values,
            data.timestamps,
            weights=hp["event_weights"],
            value_threshold=hp["event_value_threshold"],
            half_life_days=hp["recency_half_life_days"],
        )
        matrix = user_item_matrix(data.user_index, data.item_index, weights, data.n_users, data.n_items)
        initial = previous._aligned_item_factors(data.item_ids) if previous is not None else None
        self.item_factors = fit_als(
            matrix,
            factors=hp["factors"],
            regularization=hp["regularization"],
            alpha=hp["alpha"],
            iterations=hp["iterations"] if initial is None else max(2, hp["iterations"] // 3),
            random_state=hp["random_state"],
            initial_item_factors=initial,
        )
        self._set_items(data.item_ids)
        self.popularity = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
        self._cache_gram()
        return self

    def _aligned_item_factors(self, item_ids: np.ndarray) -> np.ndarray:
        """This model's factors laid out for a new vocabulary; new items start small and random."""
        rng = np.random.default_rng(self.hyperparameters["random_state"])
        out = (rng.random((len(item_ids), self.item_factors.shape[1])) * 0.01).astype(np.float32)
        for row, item in enumerate(np.asarray(item_ids).tolist()):
            old = self._item_lookup.get(item)
            if old is not None:
                out[row] = self.item_factors[old]
        return out

    def _cache_gram(self) -> None:
        y = self.item_factors.astype(np.float64)
        self.yty = y.T @ y

    # ----------------------------------------------------------------- serving
    def user_vector(self, history: tuple) -> np.ndarray | None:
        """Solve the ALS user step for these events; None when none of them is a known item."""
        if not history:
            return None
        hp = self.hyperparameters
        rows = [(self.item_index(e.item_id), e) for e in history]
        rows = [(i, e) for i, e in rows if i is not None]
        if not rows:
            return None
        idx = np.array([i for i, _ in rows], dtype=np.int64)
        w = event_weights(
            np.array([e.event_type for _, e in rows], dtype=str),
            np.array([np.nan if e.event_value is None else e.event_value for _, e in rows], dtype=np.float64),
            np.array([e.timestamp for _, e in rows], dtype=np.float64),
            weights=hp["event_weights"],
            value_threshold=hp["event_value_threshold"],
            half_life_days=hp["recency_half_life_days"],
        )
        keep = w > 0
        if not keep.any():
            return None
        uniq, inverse = np.unique(idx[keep], return_inverse=True)
        confidence = hp["alpha"] * np.bincount(inverse, weights=w[keep])
        y = self.item_factors[uniq].astype(np.float64)
        # Same system as implicit's user step: (YtY + λI + Yᵀ(C-I)Y) x = YᵀCp
        a = self.yty + hp["regularization"] * np.eye(y.shape[1]) + (y.T * (confidence - 1.0)) @ y
        b = y.T @ confidence
        return np.linalg.solve(a, b)

    def recommend(self, query: Query) -> Ranked:
        vector = self.user_vector(query.history)
        if vector is None:
            # Cold start: nothing known about this shopper yet, so the best guess is what is popular.
            scores = np.where(self.popularity > 0, self.popularity / max(self.popularity.sum(), 1.0), -np.inf)
        else:
            scores = self.item_factors @ vector.astype(np.float32)
        if query.candidates is not None:
            return self.rank_candidates(query.candidates, scores)
        return Ranked.from_scores(self.item_ids, scores, query.num_results, self.indices(query.exclude))

    # ----------------------------------------------------------------- persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors, "popularity": self.popularity}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_factors = np.asarray(arrays["item_factors"], dtype=np.float32)
        self.popularity = np.asarray(arrays["popularity"], dtype=np.float64)
        self._cache_gram()
