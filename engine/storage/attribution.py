"""Metric attribution: what recommendations were seen, clicked, and what they earned.

Credit rules (documented in the README):

* An event that carries a ``recommendationId`` belongs to the list that id names.
* An add-to-cart or purchase without one is credited by **last click**: to the most recent click the
  same shopper made on the same item from a recommendation list within ``window_seconds`` before it
  (default 24 h). Platform webhooks (orders, carts) never know the recommendationId, so without this
  rule a merchant would see clicks but no revenue.
* An event whose properties name a widget (``properties.widget``, stored as ``context.WIDGET``) is
  credited to that widget even without a recommendationId: that is the "configured source".

Which campaign, recommender or widget a recommendationId came from is read from the events of that
list themselves: the widget puts ``properties`` ``{"widget", "campaign" | "recommender",
"placement"}`` on every impression and click, so no log of served lists is written on the hot
recommendation path (it would cost a write per request for lists nobody looks at). Lists served to
API callers that send no such properties are grouped under ``"(unknown)"``.

The query reads only the window (plus the look-back for last-click) with its columns, and does the
grouping in Python: attribution is a reporting query, run on demand, not per request.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from engine.errors import InvalidInput
from engine.storage import tables as t

GROUP_BY = ("campaign", "recommender", "widget")
UNKNOWN = "(unknown)"
DEFAULT_WINDOW_SECONDS = 24 * 3600
#: Event types, compared without case, "-", "_" or spaces (add-to-cart = AddToCart = add_to_cart).
CART_TYPES = frozenset({"addtocart", "cartadd", "addedtocart"})
PURCHASE_TYPES = frozenset({"purchase", "order", "checkout", "buy"})
_CONTEXT_KEY = {"campaign": "CAMPAIGN", "recommender": "RECOMMENDER", "widget": "WIDGET"}


def _normalised(column):
    """SQL twin of :func:`normal_type`, so views never leave the database."""
    for ch in "-_ ":
        column = func.replace(column, ch, "")
    return func.lower(column)


def normal_type(event_type: str) -> str:
    return event_type.lower().replace("-", "").replace("_", "").replace(" ", "")


@dataclass
class Totals:
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    purchases: int = 0
    revenue: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "impressions": self.impressions,
            "clicks": self.clicks,
            "clickThroughRate": round(self.clicks / self.impressions, 4) if self.impressions else None,
            "addToCarts": self.add_to_carts,
            "purchases": self.purchases,
            "revenue": round(self.revenue, 2),
        }


@dataclass
class Report:
    dataset_group: str
    group_by: str
    start: float
    end: float
    window_seconds: float
    groups: dict[str, Totals] = field(default_factory=dict)
    #: day (YYYY-MM-DD, UTC) → totals over every group, for the dashboard's charts
    days: dict[str, Totals] = field(default_factory=dict)

    def total(self) -> Totals:
        out = Totals()
        for g in self.groups.values():
            out.impressions += g.impressions
            out.clicks += g.clicks
            out.add_to_carts += g.add_to_carts
            out.purchases += g.purchases
            out.revenue += g.revenue
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "datasetGroup": self.dataset_group,
            "groupBy": self.group_by,
            "from": iso(self.start),
            "to": iso(self.end),
            "attributionWindowSeconds": self.window_seconds,
            "total": self.total().as_dict(),
            "groups": [{"name": name, **totals.as_dict()} for name, totals in sorted(self.groups.items())],
            "series": [{"day": day, **totals.as_dict()} for day, totals in sorted(self.days.items())],
        }


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str | float | None, default: float) -> float:
    """Epoch seconds or an ISO 8601 date/time (UTC unless it says otherwise)."""
    if value is None or value == "":
        return default
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"not a time: {value!r} (use ISO 8601, e.g. 2026-11-01T00:00:00Z, or epoch seconds)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def attribution_report(
    store: Any,
    dataset_group: str,
    *,
    start: float,
    end: float,
    group_by: str = "campaign",
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
) -> Report:
    """Impressions, clicks, add-to-carts, purchases and revenue credited to recommendations in
    ``[start, end)``, per campaign, recommender or widget."""
    if group_by not in GROUP_BY:
        raise InvalidInput(f"groupBy must be one of {', '.join(GROUP_BY)}, not {group_by!r}")
    if end <= start:
        raise InvalidInput("the time window is empty: 'from' must be before 'to'")
    if window_seconds < 0:
        raise InvalidInput("the attribution window cannot be negative")
    group_id = store.get_dataset_group(dataset_group).id
    key = _CONTEXT_KEY[group_by]
    i = t.InteractionRow
    with store.session() as s:
        rows = s.execute(
            select(i.user_id, i.item_id, i.event_type, i.event_value, i.timestamp, i.recommendation_id, i.context)
            .where(
                i.dataset_group_id == group_id,
                i.timestamp >= start - window_seconds,
                i.timestamp < end,
                i.recommendation_id.is_not(None),
            )
            .order_by(i.timestamp, i.id)
        ).all()
        # Carts and purchases without a recommendationId: by their widget property, else by last click.
        conversions = s.execute(
            select(i.user_id, i.item_id, i.event_type, i.event_value, i.timestamp, i.context)
            .where(
                i.dataset_group_id == group_id,
                i.timestamp >= start,
                i.timestamp < end,
                i.recommendation_id.is_(None),
                _normalised(i.event_type).in_(sorted(CART_TYPES | PURCHASE_TYPES)),
            )
            .order_by(i.timestamp, i.id)
        ).all()
        prices = {
            r.item_id: (r.properties or {}).get("PRICE")
            for r in s.execute(
                select(t.ItemRow.item_id, t.ItemRow.properties).where(t.ItemRow.dataset_group_id == group_id)
            )
        }

    # Which list each recommendationId belongs to: any of its events that names one.
    names: dict[str, str] = {}
    for r in rows:
        if r.recommendation_id and r.context and r.context.get(key) and r.recommendation_id not in names:
            names[r.recommendation_id] = str(r.context[key])

    def name_of(rid: str | None, context: dict | None) -> str:
        if context and context.get(key):
            return str(context[key])
        return names.get(rid or "", UNKNOWN)

    report = Report(dataset_group, group_by, start, end, window_seconds)

    def credit(name: str, ts: float) -> tuple[Totals, Totals]:
        day = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
        return report.groups.setdefault(name, Totals()), report.days.setdefault(day, Totals())

    def revenue(item_id: str, value: float | None) -> float:
        if value is not None:
            return float(value)
        try:
            return float(prices.get(item_id) or 0.0)
        except (TypeError, ValueError):
            return 0.0

    #: (user, item) → [(time, list name)] of recommendation clicks, for last-click credit
    clicks: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for r in rows:
        kind = normal_type(r.event_type)
        name = name_of(r.recommendation_id, r.context)
        if kind == "click":
            clicks[(r.user_id, r.item_id)].append((r.timestamp, name))
        if r.timestamp < start:
            continue
        for totals in credit(name, r.timestamp):
            if kind == "impression":
                totals.impressions += 1
            elif kind == "click":
                totals.clicks += 1
            elif kind in CART_TYPES:
                totals.add_to_carts += 1
            elif kind in PURCHASE_TYPES:
                totals.purchases += 1
                totals.revenue += revenue(r.item_id, r.event_value)

    for r in conversions:
        kind = normal_type(r.event_type)
        if kind not in CART_TYPES and kind not in PURCHASE_TYPES:
            continue
        if r.context and any(r.context.get(k) for k in _CONTEXT_KEY.values()):
            name = str(r.context.get(key) or UNKNOWN)  # the configured source: the event names its widget
        else:
            earlier = [
                c for c in clicks.get((r.user_id, r.item_id), ()) if r.timestamp - window_seconds <= c[0] <= r.timestamp
            ]
            if not earlier:
                continue
            name = earlier[-1][1]
        for totals in credit(name, r.timestamp):
            if kind in CART_TYPES:
                totals.add_to_carts += 1
            else:
                totals.purchases += 1
                totals.revenue += revenue(r.item_id, r.event_value)
    return report
