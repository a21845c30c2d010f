"""The protocol asks each model what its campaign would be asked, and the scores discriminate."""

from collections.abc import Sequence

import numpy as np
import pytest

from engine.evaluation import evaluate_recipe
from engine.evaluation.protocol import evaluate, evaluate_kinds
from engine.recipes import Query, Ranked, TrainingData
from engine.recipes.popularity import PopularityCount
from engine.records import Interaction
from tests.engine.recipes.contract import clustered_data


class Spy:
    """Answers with popular items and remembers what it was trained on and asked."""

    name = "spy"
    recipe_type = "USER_PERSONALIZATION"

    def __init__(self) -> None:
        self.queries: list[Query] = []

    def fit(self, data: TrainingData):
        self.trained_users = set(data.user_ids.tolist())
        self.inner = PopularityCount().fit(data)
        self.item_ids = self.inner.item_ids
        return self

    def default_exclusions(self, history: Sequence[Interaction]) -> frozenset[str]:
        return frozenset(e.item_id for e in history[-1:])  # a recognisable rule

    def recommend(self, query: Query) -> Ranked:
        self.queries.append(query)
        return self.inner.recommend(query)


def test_user_queries_carry_the_live_input_and_the_models_own_exclusions():
    data = clustered_data()
    spies: list[Spy] = []
    evaluate(data, lambda d: spies.append(Spy().fit(d)) or spies[-1], kind="user", folds=2)
    assert len(spies) == 2
    for spy in spies:
        asked = {q.user_id for q in spy.queries}
        assert len(asked) == 12 and not asked & spy.trained_users
        for q in spy.queries:
            assert len(q.history) == 10 and q.num_results == 25  # floor(0.9 x 12) events, oldest first
            assert q.exclude == frozenset([q.history[-1].item_id])
            assert [e.timestamp for e in q.history] == sorted(e.timestamp for e in q.history)


def test_related_items_queries_ask_about_the_latest_input_item_and_never_return_it():
    data = clustered_data()
    spies: list[Spy] = []
    evaluate(data, lambda d: spies.append(Spy().fit(d)) or spies[-1], kind="related")
    for q in spies[0].queries:
        assert q.user_id is None and q.history == ()
        assert q.item_id is not None and q.exclude == frozenset([q.item_id])


def test_one_training_per_fold_answers_every_kind_of_query():
    data = clustered_data()
    spies: list[Spy] = []
    results = evaluate_kinds(data, lambda d: spies.append(Spy().fit(d)) or spies[-1], kinds=("user", "related"))
    assert len(spies) == 1 and set(results) == {"user", "related"}


def test_a_personal_recipe_scores_above_popularity_and_metrics_have_personalizes_names():
    data = clustered_data()
    personal = evaluate_recipe(data, "user-personalization", {"factors": 8, "iterations": 8}, folds=2)
    popular = evaluate_recipe(data, "popularity-count", folds=2)
    assert set(personal.metrics) == {
        "coverage",
        "mean_reciprocal_rank_at_25",
        "normalized_discounted_cumulative_gain_at_5",
        "normalized_discounted_cumulative_gain_at_10",
        "normalized_discounted_cumulative_gain_at_25",
        "precision_at_5",
        "precision_at_10",
        "precision_at_25",
    }
    key = "normalized_discounted_cumulative_gain_at_10"
    assert personal.metrics[key] > 1.5 * popular.metrics[key]
    assert personal.metrics["coverage"] > popular.metrics["coverage"]


def test_ranking_and_segment_recipes_are_evaluated_their_own_way():
    data = clustered_data()
    ranking = evaluate_recipe(data, "personalized-ranking", {"factors": 8, "iterations": 5})
    assert ranking.kind == "ranking" and ranking.metrics["precision_at_10"] > 0
    segments = evaluate_recipe(data, "item-affinity", {"factors": 8, "iterations": 5})
    assert segments.kind == "segment"
    assert set(segments.metrics) == {"coverage", "hits_at_1_percent", "recall_at_1_percent"}
    assert segments.metrics["recall_at_1_percent"] > 0


def test_empty_data_is_refused_with_a_clear_error():
    from engine.errors import InvalidInput

    empty = TrainingData.from_columns([], [], [], np.array([], dtype=float))
    with pytest.raises(InvalidInput, match="no interactions"):
        evaluate_recipe(empty, "popularity-count")
