"""popularity-count: the most interacted-with items, optionally of chosen event types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np
from marshmallow import Schema, fields

from engine.recipes.base import Query, Ranked, Recipe, TrainingData


class PopularityHyperparameters(Schema):
    #: Count only these event types (Personalize's solution ``eventType``); empty = all events.
    event_types = fields.List(fields.String(), load_default=list)


class PopularityCount(Recipe):
    name = "popularity-count"
    recipe_type = "POPULAR_ITEMS"
    Hyperparameters = PopularityHyperparameters

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        self.counts = np.empty(0, dtype=np.float64)

    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        wanted = {t.lower() for t in self.hyperparameters["event_types"]}
        mask = np.ones(len(data), dtype=bool)
        if wanted:
            mask = data.event_types.mask(wanted)
        self._set_items(data.item_ids)
        self.counts = np.bincount(data.item_index[mask], minlength=data.n_items).astype(np.float64)
        return self

    def recommend(self, query: Query) -> Ranked:
        if query.candidates is not None:
            return self.rank_candidates(query.candidates, self.counts)
        exclude = self.indices(query.exclude)
        # Items nobody touched have no popularity to speak of: leave them out.
        scores = np.where(self.counts > 0, self.counts, -np.inf)
        return Ranked.from_scores(self.item_ids, scores, query.num_results, exclude)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.counts = np.asarray(arrays["counts"], dtype=np.float64)
