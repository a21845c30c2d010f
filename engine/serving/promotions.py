"""Promotions: a share of a recommendation list drawn from a promotion filter (GetRecommendations'
``promotions``, reference §5.2).

Promoted items are "positioned randomly relative to other recommended items, but in sorted order
relative to other promoted items". The positions come from a generator seeded with the list's
recommendationId, so one answer can be reproduced (and a test can pin it) while different answers
spread promoted items differently.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from engine.errors import InvalidInput

MAX_PROMOTIONS = 1  # botocore: promotions is a list of at most one
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,62}$")

T = TypeVar("T")


@dataclass(frozen=True)
class Promotion:
    name: str
    percent_promoted_items: int
    filter_name: str
    filter_values: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InvalidInput(
                f"promotion name {self.name!r}: 1-63 letters, digits, '-' or '_', starting with a letter or digit"
            )
        if isinstance(self.percent_promoted_items, bool) or not isinstance(self.percent_promoted_items, int):
            raise InvalidInput("percentPromotedItems must be a whole number from 1 to 100")
        if not 1 <= self.percent_promoted_items <= 100:
            raise InvalidInput(f"percentPromotedItems must be from 1 to 100, not {self.percent_promoted_items}")
        if not self.filter_name:
            raise InvalidInput(f"promotion {self.name!r} needs a filter (filter or filterArn) to draw its items from")


def check_promotions(promotions: Sequence[Promotion]) -> None:
    if len(promotions) > MAX_PROMOTIONS:
        raise InvalidInput(f"at most {MAX_PROMOTIONS} promotion per request, not {len(promotions)}")


def promoted_count(num_results: int, percent: int) -> int:
    """How many of ``num_results`` slots a promotion gets: the percentage, rounded up, so any
    promotion on a non-empty list shows at least one item (integer arithmetic: 30% of 10 is 3)."""
    return min(num_results, (num_results * percent + 99) // 100)


def place_promoted(regular: Sequence[T], promoted: Sequence[T], seed: str) -> list[T]:
    """Interleave: promoted items at random slots, in their own order; the rest in theirs."""
    total = len(regular) + len(promoted)
    slots = set(random.Random(seed).sample(range(total), len(promoted)))
    promoted_iter, regular_iter = iter(promoted), iter(regular)
    return [next(promoted_iter) if slot in slots else next(regular_iter) for slot in range(total)]
