from engine.recipes import Query, TrainingData
from engine.recipes.sims import Sims
from tests.engine.recipes.contract import RecipeContract, history


class TestSimsContract(RecipeContract):
    recipe_cls = Sims


def basket_data() -> TrainingData:
    """boots and socks are bought together; tents and lamps are bought together."""
    users, items = [], []
    for u in range(30):
        pair = ("boots", "socks") if u % 2 else ("tent", "lamp")
        users += [f"u{u}", f"u{u}", f"u{u}"]
        items += [*pair, "gift-card" if u % 5 == 0 else pair[0]]
    return TrainingData.from_columns(users, items, ["purchase"] * len(users), range(len(users)))


def test_returns_what_is_bought_with_the_item_and_never_the_item_itself():
    model = Sims().fit(basket_data())
    ranked = model.recommend(Query(item_id="boots", num_results=2))
    assert ranked.item_ids[0] == "socks"
    assert "boots" not in ranked.item_ids


def test_without_an_item_the_users_recent_events_seed_the_neighbours():
    model = Sims().fit(basket_data())
    assert model.recommend(Query(user_id="x", history=history("tent"), num_results=1)).item_ids == ("lamp",)


def test_unknown_item_falls_back_to_popular_items():
    model = Sims().fit(basket_data())
    assert len(model.recommend(Query(item_id="never-seen", num_results=3))) == 3
