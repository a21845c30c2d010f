import numpy as np

from engine.recipes import Query, TrainingData
from engine.recipes.user_personalization import UserPersonalization
from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS
from tests.engine.recipes.contract import RecipeContract, clustered_data, history

FAST = {"factors": 8, "iterations": 10}


class TestUserPersonalizationContract(RecipeContract):
    recipe_cls = UserPersonalization
    hyperparameters = FAST


def cluster_share(item_ids, prefix):
    return sum(i.startswith(prefix) for i in item_ids) / max(len(item_ids), 1)


def test_a_brand_new_user_is_personalised_from_the_first_events():
    model = UserPersonalization(**FAST).fit(clustered_data())
    likes_b = model.recommend(Query(user_id="new", history=history("b1", "b2"), num_results=10))
    likes_a = model.recommend(Query(user_id="new", history=history("a1", "a2"), num_results=10))
    assert cluster_share(likes_b.item_ids, "b") >= 0.9
    assert cluster_share(likes_a.item_ids, "a") >= 0.9


def test_a_user_with_no_events_gets_popular_items():
    data = clustered_data()
    model = UserPersonalization(**FAST).fit(data)
    weights = np.array([DEFAULT_EVENT_WEIGHTS[t] for t in data.event_types])
    counts = np.bincount(data.item_index, weights=weights, minlength=data.n_items)
    most_popular = data.item_ids[np.argmax(counts)]
    assert model.recommend(Query(user_id="stranger", num_results=3)).item_ids[0] == most_popular


def test_a_new_event_changes_the_next_answer_without_retraining():
    model = UserPersonalization(**FAST).fit(clustered_data())
    before = model.recommend(Query(user_id="u0", history=history("a1", "a2", "a3"), num_results=10))
    after = model.recommend(
        Query(user_id="u0", history=history("a1", "a2", "a3", "b1", "b2", "b3", "b4", "b5"), num_results=10)
    )
    assert cluster_share(after.item_ids, "b") > cluster_share(before.item_ids, "b")


def test_purchases_weigh_more_than_views():
    data = clustered_data()
    model = UserPersonalization(**FAST).fit(data)
    viewed_b_bought_a = history("b1", "b2") + history("a1", "a2", event_type="purchase")
    ranked = model.recommend(Query(user_id="x", history=viewed_b_bought_a, num_results=10))
    assert cluster_share(ranked.item_ids, "a") > 0.5
    equal = UserPersonalization(**FAST, event_weights={"purchase": 1, "view": 1}).fit(data)
    weights = equal.hyperparameters["event_weights"]
    assert weights["purchase"] == weights["view"] == 1


def test_update_mode_starts_from_the_previous_model_and_adds_new_items():
    data = clustered_data()
    first = UserPersonalization(**FAST).fit(data)
    more = TrainingData.from_columns(
        [*list(np.asarray(data.user_ids)[data.user_index]), "u0", "u2", "u4"],
        [*list(np.asarray(data.item_ids)[data.item_index]), "a-new", "a-new", "a-new"],
        list(data.event_types) + ["purchase"] * 3,
        list(data.timestamps) + [1.8e9] * 3,
    )
    updated = UserPersonalization(**FAST).fit(more, previous=first)
    assert "a-new" in updated.item_ids.tolist()
    ranked = updated.recommend(Query(user_id="u0", history=history("a1", "a2"), num_results=5))
    assert cluster_share(ranked.item_ids, "a") >= 0.8


def test_hyperparameters_are_validated():
    import pytest

    from engine.errors import InvalidInput

    with pytest.raises(InvalidInput):
        UserPersonalization(factors=0)
    with pytest.raises(InvalidInput):
        UserPersonalization(event_weights={"view": -1})
