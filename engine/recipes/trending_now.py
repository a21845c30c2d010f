"""trending-now: the items whose interaction rate is rising fastest right now.

Time is cut into windows of the trend discovery frequency (30 minutes, 1 hour, 3 hours or 1 day,
Personalize's choices), counted back from "now", the latest interaction in the training data.
An item's trend is its count in the latest window minus its average count over the preceding
windows (the average smooths one noisy window), so an item that went from 100 to 150 views
outranks one that went from 1000 to 1020 and one that stayed flat. Items that are not rising fill
the rest of the list by recent popularity, without a trend score (NaN); with no rising item at
all the list is simply the popular items, as Personalize does when the last windows are empty.
The list is the same for every shopper (a user id matters only to filters), so retraining on a
schedule at the discovery frequency keeps it current.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
from marshmallow import Schema, ValidationError, fields, pre_load, validate

from engine.recipes.base import Query, Ranked, Recipe, TrainingData

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
        #: "Now" for this model: the latest interaction it was trained on (epoch seconds).
        self.now = float("nan")

    @property
    def window_seconds(self) -> float:
        return FREQUENCIES[self.hyperparameters["trend_discovery_frequency"]]

    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        hp = self.hyperparameters
        mask = np.ones(len(data), dtype=bool)
        if hp["event_types"]:
            wanted = [t.lower() for t in hp["event_types"]]
            mask = np.isin(np.char.lower(data.event_types.astype(str)), wanted)
        items, timestamps = data.item_index[mask], data.timestamps[mask]
        n = data.n_items
        self._set_items(data.item_ids)
        self.now = float(timestamps.max()) if len(timestamps) else float("nan")
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
        total = np.bincount(items, minlength=n).astype(np.float64)
        growth = latest - baseline

        rising = growth > 0
        # Rising items by trend (ties: the busier one), then the rest by recent then overall count.
        order = np.lexsort((-total, -recent, -latest, -np.where(rising, growth, 0.0), ~rising))
        key = np.empty(n, dtype=np.float64)
        key[order] = np.arange(n, 0, -1, dtype=np.float64)
        self.order_key = np.where(total > 0, key, -np.inf)
        self.trend = np.where(rising, growth, np.nan)
        return self

    def recommend(self, query: Query) -> Ranked:
        if query.candidates is not None:
            ranked = self.rank_candidates(query.candidates, self.order_key)
        else:
            ranked = Ranked.from_scores(self.item_ids, self.order_key, query.num_results, self.indices(query.exclude))
        return Ranked(ranked.item_ids, tuple(self._trend_of(i) for i in ranked.item_ids))

    def _trend_of(self, item_id: str) -> float:
        i = self.item_index(item_id)
        return float("nan") if i is None else float(self.trend[i])

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"order_key": self.order_key, "trend": self.trend, "now": np.array([self.now])}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.order_key = np.asarray(arrays["order_key"], dtype=np.float64)
        self.trend = np.asarray(arrays["trend"], dtype=np.float64)
        self.now = float(arrays["now"][0])
