"""trending-now: the items whose interaction rate is rising fastest right now.

Time is cut into windows of the trend discovery frequency (30 minutes, 1 hour, 3 hours or 1 day,
Personalize's choices), counted back from "now". An item's trend is its count in the latest window
minus its average count over the preceding windows (the average smooths one noisy window), so an
item that went from 100 to 150 views outranks one that went from 1000 to 1020 and one that stayed
flat. Items that are not rising fill the rest of the list by recent popularity, without a trend
score (NaN); with no rising item at all the list is simply the popular items, as Personalize does
when the last windows are empty. The list is the same for every shopper (a user id matters only
to filters).

"Now" is the request time when the serving layer hands the recipe live counts
(:meth:`TrendingNow.activity_request`, ``Query.activity``): trends then follow new events without
retraining, including items added since, as Personalize's trending-now does. Without live counts
(offline evaluation, batch jobs, or no events at all in the live windows, e.g. a store whose
events stopped) it answers as of the latest interaction it was trained on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from marshmallow import Schema, ValidationError, fields, pre_load, validate

from engine.recipes.activity import ActivityRequest, RecentActivity
from engine.recipes.base import Query, Ranked, Recipe, TrainingData

#: Items, order key, trend score, item id → position.
_Ranking = tuple[np.ndarray, np.ndarray, np.ndarray, Mapping[str, int]]
#: Personalize's trend discovery frequencies (``trend_discovery_frequency``), in seconds.
FREQUENCIES: dict[str, float] = {"30 minutes": 1800.0, "1 hour": 3600.0, "3 hours": 10800.0, "1 day": 86400.0}
_SPELLINGS = {
    "30m": "30 minutes",
    "30min": "30 minutes",
    "30mins": "30 minutes",
    "30minutes": "30 minutes",
    "1h": "1 hour",
    "1hour": "1 hour",
    "3h": "3 hours",
    "3hour": "3 hours",
    "3hours": "3 hours",
    "1d": "1 day",
    "1day": "1 day",
}


def frequency_name(value: Any) -> str:
    """Canonical name of a trend window: "30m", "30 min", "1h", "1 day"... → Personalize's spelling."""
    key = re.sub(r"\s+", "", str(value).strip().lower())
    name = _SPELLINGS.get(key)
    if name is None:
        raise ValidationError(f"must be one of {', '.join(FREQUENCIES)} (or 30m, 1h, 3h, 1d); got {value!r}")
    return name


class TrendFrequency(fields.String):
    def _deserialize(self, value, attr, data, **kwargs) -> str:
        return frequency_name(super()._deserialize(value, attr, data, **kwargs))


class TrendingNowHyperparameters(Schema):
    #: Personalize's name for the trend window; ``trend_window`` is accepted as an alias.
    trend_discovery_frequency = TrendFrequency(load_default="3 hours")
    #: The latest window is compared with the average of this many windows before it.
    baseline_windows = fields.Integer(load_default=3, validate=validate.Range(1, 336))
    #: Count only these event types (Personalize's solution ``eventType``); empty = all events.
    event_types = fields.List(fields.String(), load_default=list)

    @pre_load
    def _alias(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        if "trend_window" in data:
            data = dict(data)
            if "trend_discovery_frequency" in data:
                raise ValidationError("give trend_discovery_frequency or trend_window, not both", "trend_window")
            data["trend_discovery_frequency"] = data.pop("trend_window")
        return data


class TrendingNow(Recipe):
    name = "trending-now"
    recipe_type = "POPULAR_ITEMS"
    Hyperparameters = TrendingNowHyperparameters

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        #: Higher ranks first; -inf for items nobody interacted with.
        self.order_key = np.empty(0, dtype=np.float64)
        #: The trend score shown for rising items; NaN for the popular fill.
        self.trend = np.empty(0, dtype=np.float64)
        #: Per item, its interactions in the training data (the last tie-breaker at request time).
        self.total = np.empty(0, dtype=np.float64)
        #: "Now" for this model: the latest interaction it was trained on (epoch seconds).
        self.now = float("nan")
        self._live_cache: tuple[RecentActivity, _Ranking] | None = None

    @property
    def window_seconds(self) -> float:
        return FREQUENCIES[self.hyperparameters["trend_discovery_frequency"]]

    def activity_request(self) -> ActivityRequest:
        """The latest window and the baseline windows before it, of the counted event types."""
        hp = self.hyperparameters
        return ActivityRequest(
            self.window_seconds, 1 + hp["baseline_windows"], tuple(t.lower() for t in hp["event_types"])
        )

    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        hp = self.hyperparameters
        mask = np.ones(len(data), dtype=bool)
        if hp["event_types"]:
            wanted = [t.lower() for t in hp["event_types"]]
            mask = data.event_types.mask(wanted)
        items, timestamps = data.item_index[mask], data.timestamps[mask]
        n = data.n_items
        self._set_items(data.item_ids)
        self.now = float(timestamps.max()) if len(timestamps) else float("nan")
        self.total = np.bincount(items, minlength=n).astype(np.float64)
        if not len(timestamps):
            self.order_key = np.full(n, -np.inf)
            self.trend = np.full(n, np.nan)
            return self
        window = np.floor((self.now - timestamps) / self.window_seconds).astype(np.int64)
        k = hp["baseline_windows"]
        latest = np.bincount(items[window == 0], minlength=n).astype(np.float64)
        before = (window >= 1) & (window <= k)
        baseline = np.bincount(items[before], minlength=n).astype(np.float64) / k
        recent = np.bincount(items[window <= k], minlength=n).astype(np.float64)
        self.order_key, self.trend = trend_order(latest, baseline, recent, self.total)
        return self

    def recommend(self, query: Query) -> Ranked:
        item_ids, order_key, trend, lookup = self._live(query.activity)
        if query.candidates is not None:
            ranked = _rank_candidates(query.candidates, order_key, lookup)
        else:
            exclude = [i for x in query.exclude if (i := lookup.get(x)) is not None]
            ranked = Ranked.from_scores(item_ids, order_key, query.num_results, exclude)
        return Ranked(ranked.item_ids, tuple(_at(trend, lookup.get(i)) for i in ranked.item_ids))

    def _live(self, activity: RecentActivity | None) -> _Ranking:
        """(items, order key, trend, item lookup) from the live counts when there are any, else as
        trained. Items first seen after training join the ranking with the live counts alone.
        The serving layer shares one counts object for a while, so the ranking made from it is
        kept for as long as the same object comes back (not remade per request)."""
        if activity is None or len(activity.item_ids) == 0 or not activity.counts.any():
            return self.item_ids, self.order_key, self.trend, self._item_lookup
        cached = self._live_cache
        if cached is not None and cached[0] is activity:
            return cached[1]
        ranking = self._rank_live(activity)
        self._live_cache = (activity, ranking)
        return ranking

    def _rank_live(self, activity: RecentActivity) -> _Ranking:
        live_ids = np.asarray(activity.item_ids, dtype=str)
        new = np.array([i for i in live_ids.tolist() if i not in self._item_lookup], dtype=str)
        item_ids = np.concatenate([self.item_ids, new]) if len(new) else self.item_ids
        lookup = self._item_lookup if not len(new) else {i: n for n, i in enumerate(item_ids.tolist())}
        k = self.hyperparameters["baseline_windows"]
        rows = np.array([lookup[i] for i in live_ids.tolist()], dtype=np.int64)
        live = np.asarray(activity.counts, dtype=np.float64)[:, : k + 1]
        latest, baseline, recent = (np.zeros(len(item_ids)) for _ in range(3))
        latest[rows] = live[:, 0]
        baseline[rows] = live[:, 1:].sum(axis=1) / k
        recent[rows] = live.sum(axis=1)
        total = np.concatenate([self.total, np.zeros(len(new))]) + recent
        order_key, trend = trend_order(latest, baseline, recent, total)
        return item_ids, order_key, trend, lookup

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"order_key": self.order_key, "trend": self.trend, "total": self.total, "now": np.array([self.now])}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.order_key = np.asarray(arrays["order_key"], dtype=np.float64)
        self.trend = np.asarray(arrays["trend"], dtype=np.float64)
        # Artifacts saved before live trends lack the totals: the trained order stands in for them.
        fallback = np.where(np.isfinite(self.order_key), self.order_key, 0.0)
        self.total = np.asarray(arrays.get("total", fallback), dtype=np.float64)
        self.now = float(arrays["now"][0])


def trend_order(
    latest: np.ndarray, baseline: np.ndarray, recent: np.ndarray, total: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per item: its count in the latest window, its average over the baseline windows, its count
    over all of them and overall. Returns the order key (higher first, -inf for items nobody
    touched) and the trend (NaN unless rising)."""
    n = len(total)
    growth = latest - baseline
    rising = growth > 0
    # Rising items by trend (ties: the busier one), then the rest by recent then overall count.
    order = np.lexsort((-total, -recent, -latest, -np.where(rising, growth, 0.0), ~rising))
    key = np.empty(n, dtype=np.float64)
    key[order] = np.arange(n, 0, -1, dtype=np.float64)
    return np.where((total > 0) | (recent > 0), key, -np.inf), np.where(rising, growth, np.nan)


def _rank_candidates(candidates: Sequence[str], order_key: np.ndarray, lookup: Mapping[str, int]) -> Ranked:
    """Re-rank a given list; items never seen go last, unscored (as :meth:`Recipe.rank_candidates`)."""
    known = sorted(
        ((c, float(order_key[i])) for c in candidates if (i := lookup.get(c)) is not None), key=lambda p: -p[1]
    )
    unknown = [c for c in candidates if c not in lookup]
    return Ranked(tuple([c for c, _ in known] + unknown), tuple([s for _, s in known] + [float("nan")] * len(unknown)))


def _at(values: np.ndarray, index: int | None) -> float:
    return float("nan") if index is None else float(values[index])
