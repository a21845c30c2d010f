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
    #: Ranking recipes (PERSONALIZED_RANKING) only re-rank a given list and refuse a query without
    #: one; the contract then asks them with the whole catalogue as the list.
    needs_candidates: ClassVar[bool] = False

    def ask(self, model: Recipe, **fields) -> Query:
        """The query the contract sends: as given, plus every known item as candidates for a
        recipe that needs a list."""
        if self.needs_candidates and fields.get("candidates") is None:
            fields["candidates"] = tuple(model.item_ids.tolist())
        return Query(**fields)

    @pytest.fixture(scope="class")
    def data(self) -> TrainingData:
        return clustered_data()

    @pytest.fixture(scope="class")
    def model(self, data) -> Recipe:
        return self.recipe_cls(**self.hyperparameters).fit(data)

    def test_recommends_known_items_best_first(self, model, data):
        ranked = model.recommend(
            self.ask(model, user_id="u0", history=history("a1", "a2"), item_id="a1", num_results=10)
        )
        assert 0 < len(ranked) <= 10
        assert set(ranked.item_ids) <= set(data.item_ids.tolist())
        scores = [s for s in ranked.scores if not math.isnan(s)]
        assert scores == sorted(scores, reverse=True)

    def test_unknown_user_and_item_take_the_cold_start_path(self, model):
        ranked = model.recommend(self.ask(model, user_id="nobody", item_id="no-such-item", num_results=5))
        assert len(ranked) == 5

    def test_num_results_is_respected(self, model):
        query = self.ask(model, user_id="u0", history=history("a1"), item_id="a1", num_results=3)
        assert len(model.recommend(query)) == 3
        assert len(model.recommend(self.ask(model, user_id="u0", num_results=0))) == 0

    def test_excluded_items_never_appear(self, model):
        first = model.recommend(self.ask(model, user_id="u0", history=history("a1"), item_id="a1", num_results=5))
        again = model.recommend(
            self.ask(
                model,
                user_id="u0",
                history=history("a1"),
                item_id="a1",
                num_results=5,
                exclude=frozenset(first.item_ids),
            )
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
        query = self.ask(model, user_id="u0", history=history("a1", "a3"), item_id="a1", num_results=8)
        assert loaded.recommend(query).item_ids == model.recommend(query).item_ids
        if model.recipe_type == "USER_SEGMENTATION":
            assert loaded.recommend_users(["a1"], 8) == model.recommend_users(["a1"], 8)

    def test_bad_hyperparameters_are_refused_at_creation(self):
        with pytest.raises(InvalidInput):
            self.recipe_cls(no_such_setting=1)

    def test_loading_another_recipes_artifact_is_refused(self, model, tmp_path):
        path = model.save(tmp_path / "model.npz")
        from engine.recipes import RECIPES

        other = next(cls for name, cls in RECIPES.items() if name != self.recipe_cls.name)
        with pytest.raises(InvalidInput):
            other.load(path)

    def test_a_query_without_candidates_is_refused_only_by_ranking_recipes(self, model):
        query = Query(user_id="u0", history=history("a1"), item_id="a1", num_results=3)
        if self.needs_candidates:
            with pytest.raises(InvalidInput):
                model.recommend(query)
        else:
            assert len(model.recommend(query)) == 3

    def test_only_segment_recipes_answer_segment_queries(self, model, data):
        if model.recipe_type != "USER_SEGMENTATION":
            with pytest.raises(InvalidInput):
                model.recommend_users(["a1"], 5)
            return
        segment = model.recommend_users(["a1", "a2"], 7)
        assert len(segment) == 7
        assert set(segment.item_ids) <= set(data.user_ids.tolist())
        assert list(segment.scores) == sorted(segment.scores, reverse=True)
        assert len(model.recommend_users(["a1"], 0)) == 0
        # An item the model cannot place takes the cold-start path, never an exception.
        assert len(model.recommend_users(["no-such-item"], 4)) == 4
