import math

import pytest

from engine.errors import InvalidInput
from engine.recipes import Query, TrainingData, recipe_class
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
