from engine.recipes import Query, TrainingData
from engine.recipes.popularity import PopularityCount
from tests.engine.recipes.contract import RecipeContract


class TestPopularityContract(RecipeContract):
    recipe_cls = PopularityCount


def test_counts_only_the_chosen_event_types():
    data = TrainingData.from_columns(
        ["u1", "u2", "u3", "u1", "u2"],
        ["x", "x", "x", "y", "y"],
        ["view", "view", "view", "purchase", "purchase"],
        [1, 2, 3, 4, 5],
    )
    assert PopularityCount().fit(data).recommend(Query(num_results=2)).item_ids == ("x", "y")
    by_purchase = PopularityCount(event_types=["purchase"]).fit(data)
    assert by_purchase.recommend(Query(num_results=2)).item_ids == ("y",)
