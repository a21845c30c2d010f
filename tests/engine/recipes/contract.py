"""The contract every recipe passes (implicit's RecommenderBase test, in spirit).

A recipe's own test module inherits :class:`RecipeContract` and sets ``recipe_cls``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest

from engine.errors import InvalidInput
from engine.recipes import Query, Recipe, TrainingData
from engine.records import Interaction


def clustered_data(seed: int = 0, n_users: int = 120, n_items: int = 40, per_user: int = 12) -> TrainingData:
    """Two taste clusters: even users like items a0.., odd users like items b0.."""
    rng = np.random.default_rng(seed)
    users, items, types, ts = [], [], [], []
    half = n_items // 2
    for u in range(n_users):
        prefix = "a" if u % 2 == 0 else "b"
        for k in range(per_user):
            users.append(f"u{u}")
            items.append(f"{prefix}{rng.integers(0, half)}")
            types.append("purchase" if k % 4 == 0 else "view")
            ts.append(1_700_000_000 + u * 1000 + k)
    return TrainingData.from_columns(users, items, types, ts)


def history(*item_ids: str, event_type: str = "view") -> tuple[Interaction, ...]:
    return tuple(Interaction("someone", i, event_type, 1_700_000_000 + n) for n, i in enumerate(item_ids))


class RecipeContract:
    recipe_cls: ClassVar[type[Recipe]]
    hyperparameters: ClassVar[dict] = {}

    @pytest.fixture(scope="class")
    def data(self) -> TrainingData:
        return clustered_data()

    @pytest.fixture(scope="class")
    def model(self, data) -> Recipe:
        return self.recipe_cls(**self.hyperparameters).fit(data)

    def test_recommends_known_items_best_first(self, model, data):
        ranked = model.recommend(Query(user_id="u0", history=history("a1", "a2"), item_id="a1", num_results=10))
        assert 0 < len(ranked) <= 10
        assert set(ranked.item_ids) <= set(data.item_ids.tolist())
        scores = [s for s in ranked.scores if not math.isnan(s)]
        assert scores == sorted(scores, reverse=True)

    def test_unknown_user_and_item_take_the_cold_start_path(self, model):
        ranked = model.recommend(Query(user_id="nobody", item_id="no-such-item", num_results=5))
        assert len(ranked) == 5

    def test_num_results_is_respected(self, model):
        assert len(model.recommend(Query(user_id="u0", history=history("a1"), item_id="a1", num_results=3))) == 3
        assert len(model.recommend(Query(user_id="u0", num_results=0))) == 0

    def test_excluded_items_never_appear(self, model):
        first = model.recommend(Query(user_id="u0", history=history("a1"), item_id="a1", num_results=5))
        again = model.recommend(
            Query(user_id="u0", history=history("a1"), item_id="a1", num_results=5, exclude=frozenset(first.item_ids))
        )
        assert not set(first.item_ids) & set(again.item_ids)

    def test_candidates_are_reranked_and_unknown_ones_go_last_unscored(self, model):
        ranked = model.recommend(Query(user_id="u0", history=history("a1"), candidates=("b3", "zzz", "a2", "a5")))
        assert set(ranked.item_ids) == {"b3", "zzz", "a2", "a5"}
        assert ranked.item_ids[-1] == "zzz" and math.isnan(ranked.scores[-1])

    def test_save_and_load_give_the_same_answers_without_pickle(self, model, tmp_path):
        path = model.save(tmp_path / "model.npz")
        with np.load(path, allow_pickle=False) as npz:  # raises if anything needed pickling
            assert "item_ids" in npz.files
        loaded = self.recipe_cls.load(path)
        query = Query(user_id="u0", history=history("a1", "a3"), item_id="a1", num_results=8)
        assert loaded.recommend(query).item_ids == model.recommend(query).item_ids

    def test_bad_hyperparameters_are_refused_at_creation(self):
        with pytest.raises(InvalidInput):
            self.recipe_cls(no_such_setting=1)

    def test_loading_another_recipes_artifact_is_refused(self, model, tmp_path):
        path = model.save(tmp_path / "model.npz")
        from engine.recipes import RECIPES

        other = next(cls for name, cls in RECIPES.items() if name != self.recipe_cls.name)
        with pytest.raises(InvalidInput):
            other.load(path)
