import numpy as np

from engine.recipes import Query, TrainingData, recipe_class
from engine.recipes.item_affinity import ItemAffinity
from engine.records import Interaction, Item
from tests.engine.recipes.contract import RecipeContract, clustered_data, history

FAST = {"factors": 8, "iterations": 10}


class TestItemAffinityContract(RecipeContract):
    recipe_cls = ItemAffinity
    hyperparameters = FAST


def even_share(user_ids) -> float:
    """Even users like the a-items in clustered_data."""
    return sum(int(u[1:]) % 2 == 0 for u in user_ids) / len(user_ids)


def test_the_segment_for_an_item_is_the_users_who_like_that_kind_of_item():
    model = ItemAffinity(**FAST).fit(clustered_data())
    assert even_share(model.recommend_users(["a3"], 20).item_ids) >= 0.9
    assert even_share(model.recommend_users(["b3"], 20).item_ids) <= 0.1
    assert even_share(model.recommend_users(["a1", "a2", "a5"], 30).item_ids) >= 0.9


def test_an_item_nobody_interacted_with_gets_the_most_active_users():
    base = clustered_data()
    users = [*np.asarray(base.user_ids)[base.user_index].tolist(), "busy", "busy", "busy"]
    items = [*np.asarray(base.item_ids)[base.item_index].tolist(), "a1", "b1", "a2"]
    data = TrainingData.from_columns(
        users,
        items,
        [*base.event_types.tolist(), "purchase", "purchase", "purchase"],
        [*base.timestamps.tolist(), 1.8e9, 1.8e9, 1.8e9],
        items={"brand-new": Item("brand-new", {"CATEGORY": "x"})},
    )
    model = ItemAffinity(**FAST).fit(data)
    assert "brand-new" in model.item_ids.tolist()
    segment = model.recommend_users(["brand-new"], 3)
    weights = model.user_activity
    assert model.user_ids[np.argmax(weights)] == segment.item_ids[0]


def test_stored_user_factors_are_the_fold_in_of_the_users_own_events():
    data = clustered_data()
    model = ItemAffinity(**FAST).fit(data)
    row = int(np.nonzero(data.user_ids == "u4")[0][0])
    mine = data.user_index == row
    events = tuple(
        Interaction("u4", item, kind, ts)
        for item, kind, ts in zip(
            np.asarray(data.item_ids)[data.item_index[mine]].tolist(),
            data.event_types[mine].tolist(),
            data.timestamps[mine].tolist(),
            strict=True,
        )
    )
    ranked = model.recommend(Query(user_id="u4", history=events, num_results=5))
    expected = model.item_factors[model.indices(ranked.item_ids)] @ model.user_factors[row]
    assert np.allclose(ranked.scores, expected, atol=1e-4)


def test_asked_for_items_it_answers_from_the_same_factors():
    model = ItemAffinity(**FAST).fit(clustered_data())
    ranked = model.recommend(Query(user_id="new", history=history("b1", "b2"), num_results=10))
    assert sum(i.startswith("b") for i in ranked.item_ids) >= 9


def test_registered_under_personalizes_name_and_arn():
    assert recipe_class("arn:aws:personalize:::recipe/aws-item-affinity") is ItemAffinity
    assert ItemAffinity.recipe_type == "USER_SEGMENTATION"
