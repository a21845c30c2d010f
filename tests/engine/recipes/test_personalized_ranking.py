import math

import pytest

from engine.errors import InvalidInput
from engine.recipes import Query, recipe_class
from engine.recipes.personalized_ranking import PersonalizedRanking
from engine.recipes.user_personalization import UserPersonalization
from tests.engine.recipes.contract import RecipeContract, clustered_data, history

FAST = {"factors": 8, "iterations": 10}


class TestPersonalizedRankingContract(RecipeContract):
    recipe_cls = PersonalizedRanking
    hyperparameters = FAST
    needs_candidates = True


@pytest.fixture(scope="module")
def model() -> PersonalizedRanking:
    return PersonalizedRanking(**FAST).fit(clustered_data())


def test_the_given_list_is_reordered_by_the_shoppers_taste(model):
    mixed = ("a1", "b1", "a2", "b2", "a3", "b3")
    likes_b = model.recommend(Query(user_id="new", history=history("b4", "b5", "b6"), candidates=mixed))
    likes_a = model.recommend(Query(user_id="new", history=history("a4", "a5", "a6"), candidates=mixed))
    assert likes_b.item_ids[0].startswith("b") and likes_a.item_ids[0].startswith("a")
    assert mean_position(likes_b.item_ids, "b") < mean_position(likes_b.item_ids, "a")
    assert mean_position(likes_a.item_ids, "a") < mean_position(likes_a.item_ids, "b")


def mean_position(item_ids, prefix):
    positions = [n for n, i in enumerate(item_ids) if i.startswith(prefix)]
    return sum(positions) / len(positions)


def test_scores_are_user_personalizations_on_the_same_model(model):
    query = Query(user_id="u0", history=history("a1", "b2"), candidates=("a3", "b4", "a5", "b6"))
    as_ranking = model.recommend(query)
    as_personalization = UserPersonalization.recommend(model, query)
    assert as_ranking == as_personalization


def test_unknown_items_go_last_unscored_excluded_ones_go_and_repeats_count_once(model):
    ranked = model.recommend(
        Query(
            user_id="u0",
            history=history("a1"),
            candidates=("new-item", "a2", "b1", "a2", "gone"),
            exclude=frozenset({"gone", "b1"}),
        )
    )
    assert ranked.item_ids == ("a2", "new-item")
    assert not math.isnan(ranked.scores[0]) and math.isnan(ranked.scores[1])


def test_a_shopper_with_no_events_gets_the_list_by_popularity(model):
    ranked = model.recommend(Query(user_id="stranger", candidates=("a1", "b1", "a2")))
    assert len(ranked) == 3
    assert list(ranked.scores) == sorted(ranked.scores, reverse=True)


def test_asked_for_recommendations_it_says_it_needs_the_list(model):
    with pytest.raises(InvalidInput, match="inputList"):
        model.recommend(Query(user_id="u0", history=history("a1")))


def test_registered_under_personalizes_name_and_arn():
    assert recipe_class("personalized-ranking") is PersonalizedRanking
    assert recipe_class("arn:aws:personalize:::recipe/aws-personalized-ranking") is PersonalizedRanking
    assert PersonalizedRanking.recipe_type == "PERSONALIZED_RANKING"
