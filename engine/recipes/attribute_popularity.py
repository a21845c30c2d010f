"""What is popular among shoppers like this one, or in this context.

Each categorical value seen often enough in training, whether user metadata (Users dataset:
membership tier, age group) or interactions' contextual metadata (device, location), gets its own
smoothed item popularity, kept as a log-lift over the overall popularity. A shopper with no events
gets popular items lifted by their values and the request's context (naive-Bayes style, so a value
nobody trained on changes nothing); user-personalization also shifts a known shopper's scores by
the request's context, as much as held-out users show it helps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from engine.recipes.base import TrainingData

#: A value needs this many users before its own popularity is trusted.
MIN_USERS = 5
#: Pseudo-events of overall popularity mixed into each value's counts.
SMOOTHING = 50.0
#: Values are kept only for the most popular items (cold-start lists come from them anyway).
MAX_ITEMS = 2000
MAX_VALUES = 200
MAX_VALUE_LENGTH = 64
#: A context value needs this many events before its own popularity is trusted.
MIN_EVENTS = 20
_CONTEXT_PREFIX = "CONTEXT:"


class AttributePopularity:
    def __init__(self) -> None:
        self.keys = np.empty(0, dtype=str)  # "FIELD=value"
        self.items = np.empty(0, dtype=np.int64)  # columns the lifts cover
        self.log_lift = np.empty((0, 0), dtype=np.float32)  # values × items
        self.user_ids = np.empty(0, dtype=str)  # sorted, for lookup
        self.user_values = np.empty((0, 0), dtype=np.int32)  # users × fields, -1 = none

    def fit(self, data: TrainingData, item_weights: np.ndarray | Callable[[], np.ndarray]) -> AttributePopularity:
        """``item_weights``: the weight of each event (the recipe's event weighting), or what
        computes them, called only when some value is there to learn (most data sets have none,
        and weighting every event again cost a visible share of a large training)."""
        carriers: dict[str, np.ndarray] = {}  # "FIELD=value" -> events it applies to
        fields = _categorical_fields(data)
        table = np.empty((0, 0), dtype=np.int32)
        codes: dict[str, int] = {}
        if fields:
            self.user_ids = np.array(sorted(data.users), dtype=str)
            table = np.full((len(self.user_ids), len(fields)), -1, dtype=np.int32)
            for row, user_id in enumerate(self.user_ids.tolist()):
                props = {k.upper(): v for k, v in data.users[user_id].properties.items()}
                for f, name in enumerate(fields):
                    if (value := _category(props.get(name))) is not None:
                        table[row, f] = codes.setdefault(f"{name}={value}", len(codes))
            # Per event, the metadata row of its user (-1: a user the Users dataset does not list).
            position = np.searchsorted(self.user_ids, data.user_ids)
            position = np.minimum(position, max(len(self.user_ids) - 1, 0))
            listed = self.user_ids[position] == data.user_ids if len(self.user_ids) else np.zeros(data.n_users, bool)
            event_row = np.where(listed, position, -1)[data.user_index]
            for key, code in codes.items():
                users_with = (table == code).any(axis=1)
                if users_with.sum() >= MIN_USERS:
                    carriers[key] = (event_row >= 0) & users_with[np.maximum(event_row, 0)]
        for key, events in _context_carriers(data).items():
            carriers.setdefault(key, events)
        if not carriers:
            return self
        if callable(item_weights):
            item_weights = item_weights()
        total = np.bincount(data.item_index, weights=item_weights, minlength=data.n_items)
        self.items = np.sort(np.argsort(-total, kind="stable")[:MAX_ITEMS])
        column = np.full(data.n_items, -1, dtype=np.int64)
        column[self.items] = np.arange(len(self.items))
        overall = (total[self.items] + 1e-3) / (total[self.items].sum() + 1e-3 * len(self.items))
        keys, lifts = [], []
        for key in sorted(carriers, key=lambda k: -int(carriers[k].sum()))[:MAX_VALUES]:
            on = carriers[key] & (column[data.item_index] >= 0)
            counts = np.bincount(column[data.item_index[on]], weights=item_weights[on], minlength=len(self.items))
            smoothed = (counts + SMOOTHING * overall) / (counts.sum() + SMOOTHING)
            keys.append(key)
            lifts.append(np.log(smoothed / overall))
        self.keys = np.array(keys, dtype=str)
        self.log_lift = np.vstack(lifts).astype(np.float32)
        kept = {key: k for k, key in enumerate(keys)}
        remap = np.full(len(codes) + 1, -1, dtype=np.int32)  # the last slot maps "no value" (-1)
        for key, code in codes.items():
            remap[code] = kept.get(key, -1)
        self.user_values = remap[table] if table.size else np.empty((0, 0), dtype=np.int32)
        return self

    @property
    def has_context(self) -> bool:
        """Whether any value learned comes from interactions' context (as opposed to user metadata)."""
        return bool(np.char.startswith(self.keys, _CONTEXT_PREFIX).any()) if len(self.keys) else False

    def context_lift(self, context: Mapping[str, str]) -> np.ndarray | None:
        """Log-lift per item (over the covered items) for the request's context; None if none applies."""
        rows = self._rows(None, context)
        if not rows:
            return None
        return self.log_lift[rows].sum(axis=0)

    def scores(self, popularity: np.ndarray, user_id: str | None, context: Mapping[str, str]) -> np.ndarray:
        """Popularity, lifted by the user's known values and the request's context values."""
        rows = self._rows(user_id, context)
        if not rows:
            return popularity
        shaped = popularity.astype(np.float64).copy()
        lift = self.log_lift[rows].sum(axis=0)
        shaped[self.items] = shaped[self.items] * np.exp(lift)
        return shaped

    def _rows(self, user_id: str | None, context: Mapping[str, str]) -> list[int]:
        if len(self.keys) == 0:
            return []
        lookup = {key: k for k, key in enumerate(self.keys.tolist())}
        rows: set[int] = set()
        if user_id is not None and len(self.user_ids):
            at = int(np.searchsorted(self.user_ids, user_id))
            if at < len(self.user_ids) and self.user_ids[at] == user_id:
                rows.update(int(v) for v in self.user_values[at] if v >= 0)
        for name, value in context.items():
            category = _category(value)
            for key in (f"{name.upper()}={category}", f"{_CONTEXT_PREFIX}{name.upper()}={category}"):
                if (row := lookup.get(key)) is not None:
                    rows.add(row)
        return sorted(rows)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}keys": self.keys,
            f"{prefix}items": self.items,
            f"{prefix}log_lift": self.log_lift,
            f"{prefix}user_ids": self.user_ids,
            f"{prefix}user_values": self.user_values,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> AttributePopularity:
        out = cls()
        out.keys = np.asarray(arrays[f"{prefix}keys"], dtype=str)
        out.items = np.asarray(arrays[f"{prefix}items"], dtype=np.int64)
        out.log_lift = np.asarray(arrays[f"{prefix}log_lift"], dtype=np.float32)
        out.user_ids = np.asarray(arrays[f"{prefix}user_ids"], dtype=str)
        out.user_values = np.asarray(arrays[f"{prefix}user_values"], dtype=np.int32)
        return out


def _category(value: object) -> str | None:
    """A categorical value as a key part: short strings, integers and booleans; nothing else."""
    if isinstance(value, bool | int) or (isinstance(value, str) and 0 < len(value) <= MAX_VALUE_LENGTH):
        return str(value).lower()
    return None


def _context_carriers(data: TrainingData) -> dict[str, np.ndarray]:
    """The events carrying each context value (keyed CONTEXT:FIELD=value), for values on enough events."""
    if data.contexts is None:
        return {}
    members: dict[str, list[int]] = {}
    for event, context in enumerate(data.contexts.tolist()):
        for name, value in (context or {}).items():
            if (category := _category(value)) is not None:
                members.setdefault(f"{_CONTEXT_PREFIX}{str(name).upper()}={category}", []).append(event)
    out = {}
    for key, events in members.items():
        if len(events) >= MIN_EVENTS:
            mask = np.zeros(len(data), dtype=bool)
            mask[events] = True
            out[key] = mask
    return out


def _categorical_fields(data: TrainingData) -> list[str]:
    """Short string fields of the users dataset (ids and free text say nothing shared)."""
    values: dict[str, set[str]] = {}
    for user in data.users.values():
        for name, value in user.properties.items():
            if isinstance(value, str) and value and len(value) <= MAX_VALUE_LENGTH:
                values.setdefault(name.upper(), set()).add(value.lower())
    n = max(len(data.users), 1)
    return sorted(name for name, seen in values.items() if name != "USER_ID" and 1 < len(seen) <= max(2, 0.5 * n))
