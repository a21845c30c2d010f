"""The engine's input records: what every source (API, import, adapters) is translated into.

Ids are external strings everywhere; internal row numbers exist only inside a trained model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Event types the product knows by name. Any other string is accepted too (Personalize allows
#: custom event types); these are the ones adapters map platform actions onto.
VIEW = "view"
CLICK = "click"
ADD_TO_CART = "add-to-cart"
REMOVE_FROM_CART = "remove-from-cart"
PURCHASE = "purchase"
WISHLIST = "wishlist"
IMPRESSION = "impression"

MAX_ID_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Interaction:
    """One shopper action on one item (Personalize's Interactions dataset row)."""

    user_id: str
    item_id: str
    event_type: str
    timestamp: float
    event_value: float | None = None
    session_id: str | None = None
    event_id: str | None = None
    recommendation_id: str | None = None
    impression: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Item:
    """A catalog entry; ``properties`` holds schema fields by their upper-case names."""

    item_id: str
    properties: dict[str, Any] = field(default_factory=dict)
    creation_timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class User:
    """A shopper: ids and non-personal attributes only (no names, emails or addresses)."""

    user_id: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Erasure:
    """A privacy request: forget everything held about this user (or this item)."""

    user_id: str | None = None
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class Alias:
    """An anonymous shopper became known: their events so far now belong to ``user_id``.

    Sent when a visitor logs in or checks out (Segment's alias/identify, a storefront login), so
    what they did before counts for the known shopper, in training and in real time.
    """

    anonymous_id: str
    user_id: str


Record = Interaction | Item | User | Erasure | Alias
