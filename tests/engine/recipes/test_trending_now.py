import math

import numpy as np
import pytest

from engine.errors import InvalidInput
from engine.recipes import Query, TrainingData, recipe_class
from engine.recipes.activity import ActivityRequest, RecentActivity
from engine.recipes.trending_now import TrendingNow
from tests.engine.recipes.contract import RecipeContract

HOUR = 3600.0
NOW = 1_700_000_000.0


class TestTrendingNowContract(RecipeContract):
    recipe_cls = TrendingNow


def events(counts_by_item: dict[str, list[int]], window: float = 3 * HOUR) -> TrainingData:
    """``counts_by_item[item][k]``: that item's interactions in the k-th window back from now
    (k = 0 is the latest, ending at NOW), spread evenly inside the window."""
    users, items, ts = [], [], []
    for item, counts in counts_by_item.items():
        for k, count in enumerate(counts):
            for n in range(count):
                users.append(f"u{len(users)}")
                items.append(item)
                ts.append(NOW - k * window - n * window / count)
    return TrainingData.from_columns(users, items, ["view"] * len(users), ts)


def test_the_item_rising_fastest_leads_and_flat_ones_only_fill():
    data = events(
        {
            "rising": [60, 10, 10, 10],
            "steady-bestseller": [100, 100, 100, 100],
            "slowly-up": [14, 10, 10, 10],
            "fading": [5, 40, 40, 40],
        }
    )
    ranked = TrendingNow().fit(data).recommend(Query(num_results=4))
    assert ranked.item_ids[:2] == ("rising", "slowly-up")
    assert ranked.scores[0] == pytest.approx(50.0)  # 60 now against 10 on average before
    # Not rising: ranked after the trending items, by recent activity, without a trend score.
    assert ranked.item_ids[2] == "steady-bestseller" and math.isnan(ranked.scores[2])


def test_the_trend_window_decides_what_counts_as_rising():
    # A burst in the last half hour; and an item that rose over the last day but not in the last hour.
    users, items, ts = [], [], []

    def add(item, when, n):
        for k in range(n):
            users.append(f"u{len(users)}")
            items.append(item)
            ts.append(when - k)

    add("burst", NOW, 30)
    for day_back, n in enumerate([200, 40, 40, 40]):
        add("daily-riser", NOW - 2 * HOUR - day_back * 24 * HOUR, n)
    add("burst", NOW - 3 * 24 * HOUR, 30)
    data = TrainingData.from_columns(users, items, ["view"] * len(users), ts)
    half_hour = TrendingNow(trend_discovery_frequency="30 minutes").fit(data)
    one_day = TrendingNow(trend_window="1d").fit(data)
    assert half_hour.recommend(Query(num_results=1)).item_ids == ("burst",)
    assert one_day.recommend(Query(num_results=1)).item_ids == ("daily-riser",)


def test_with_nothing_rising_it_returns_popular_items_unscored():
    ranked = TrendingNow().fit(events({"big": [5, 50, 50, 50], "small": [1, 5, 5, 5]})).recommend(Query(num_results=2))
    assert ranked.item_ids == ("big", "small") and all(math.isnan(s) for s in ranked.scores)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("30 min", "30 minutes"), ("1h", "1 hour"), ("3 hours", "3 hours"), ("1 DAY", "1 day"), ("1d", "1 day")],
)
def test_trend_windows_take_personalizes_spellings(given, canonical):
    assert TrendingNow(trend_discovery_frequency=given).hyperparameters["trend_discovery_frequency"] == canonical
    assert TrendingNow().hyperparameters["trend_discovery_frequency"] == "3 hours"


def test_other_windows_are_refused_when_the_solution_is_created():
    with pytest.raises(InvalidInput, match="30 minutes"):
        TrendingNow(trend_discovery_frequency="2 hours")
    with pytest.raises(InvalidInput):
        TrendingNow(trend_discovery_frequency="1 hour", trend_window="1h")


def test_registered_under_personalizes_name_and_arn():
    assert recipe_class("arn:aws:personalize:::recipe/aws-trending-now") is TrendingNow
    assert TrendingNow.recipe_type == "POPULAR_ITEMS"


def same(a, b) -> bool:
    return a.item_ids == b.item_ids and np.array_equal(a.scores, b.scores, equal_nan=True)


def live(now: float, counts_by_item: dict[str, list[int]], window: float = 3 * HOUR) -> RecentActivity:
    """What the serving layer hands over: per item, its counts in the latest window and before."""
    items = sorted(counts_by_item)
    return RecentActivity(now, window, np.array(items), np.array([counts_by_item[i] for i in items], dtype=float))


def test_live_counts_at_request_time_move_the_trend_without_retraining():
    model = TrendingNow().fit(events({"rising": [60, 10, 10, 10], "steady": [100, 100, 100, 100]}))
    later = NOW + 2 * 24 * HOUR
    # Since training, "steady" took off, and an item added after training is rising too.
    activity = live(later, {"steady": [400, 100, 100, 100], "new-arrival": [30, 0, 0, 0], "rising": [5, 5, 5, 5]})
    ranked = model.recommend(Query(num_results=3, activity=activity))
    assert ranked.item_ids == ("steady", "new-arrival", "rising")
    assert ranked.scores[:2] == (pytest.approx(300.0), pytest.approx(30.0)) and math.isnan(ranked.scores[2])
    # Filters and re-ranking see the live order too.
    assert model.recommend(Query(num_results=1, activity=activity, exclude=frozenset({"steady"}))).item_ids == (
        "new-arrival",
    )
    reranked = model.recommend(Query(candidates=("rising", "new-arrival", "unknown"), activity=activity))
    assert reranked.item_ids == ("new-arrival", "rising", "unknown")
    # Without live counts (offline evaluation, batch jobs) it answers as trained.
    assert model.recommend(Query(num_results=1)).item_ids == ("rising",)


def test_live_windows_without_any_event_keep_the_trained_answer():
    model = TrendingNow().fit(events({"rising": [60, 10, 10, 10], "steady": [100, 100, 100, 100]}))
    empty = RecentActivity.empty(NOW + 30 * 24 * HOUR, model.activity_request())
    assert same(model.recommend(Query(num_results=2, activity=empty)), model.recommend(Query(num_results=2)))


def test_it_asks_for_its_window_and_event_types_and_keeps_totals_when_saved(tmp_path):
    model = TrendingNow(trend_window="1h", baseline_windows=5, event_types=["Purchase"])
    assert model.activity_request() == ActivityRequest(HOUR, 6, ("purchase",))
    fitted = model.fit(events({"a": [1, 5, 5, 5], "b": [2, 2, 2, 2]}))
    loaded = TrendingNow.load(fitted.save(tmp_path / "trending.npz"))
    activity = live(NOW, {"a": [9, 1, 1, 1, 1, 1]}, window=HOUR)
    query = Query(num_results=2, activity=activity)
    assert same(loaded.recommend(query), fitted.recommend(query))
    assert loaded.recommend(query).item_ids[0] == "a"
