import numpy as np

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


def trail_data() -> TrainingData:
    """Everyone walks the whole circular trail t0 → t9 → t0, from a random start: every pair of
    trail items co-occurs for every user, so only the order says which items are neighbours."""
    rng = np.random.default_rng(4)
    users, items, ts = [], [], []
    for u in range(120):
        start = int(rng.integers(0, 10))
        for step in range(10):
            users.append(f"u{u}")
            items.append(f"t{(start + step) % 10}")
            ts.append(1_700_000_000 + 100 * u + step)
    return TrainingData.from_columns(users, items, ["view"] * len(users), ts)


def test_items_touched_just_before_or_after_are_the_most_related():
    model = Sims().fit(trail_data())
    assert model.sequence_weight > 0  # chosen on held-out users: the order predicts what comes next
    assert set(model.recommend(Query(item_id="t4", num_results=2)).item_ids) == {"t3", "t5"}


def test_the_blend_can_be_fixed_and_survives_saving(tmp_path):
    model = Sims(sequence_weight=0.0).fit(trail_data())
    assert model.sequence_weight == 0.0
    loaded = Sims.load(model.save(tmp_path / "sims.npz"))
    assert loaded.sequence_weight == 0.0
    query = Query(item_id="t4", num_results=5)
    assert loaded.recommend(query) == model.recommend(query)
