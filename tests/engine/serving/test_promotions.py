"""Promotions: their share of the list, and where promoted items land."""

from __future__ import annotations

import pytest

from engine.errors import InvalidInput
from engine.serving.promotions import Promotion, check_promotions, place_promoted, promoted_count


@pytest.mark.parametrize(
    ("num_results", "percent", "expected"),
    [(10, 30, 3), (25, 10, 3), (25, 1, 1), (10, 100, 10), (0, 50, 0), (3, 50, 2), (7, 14, 1)],
)
def test_a_promotion_gets_its_percentage_of_the_list_rounded_up(num_results, percent, expected):
    assert promoted_count(num_results, percent) == expected


def test_promoted_items_land_at_seeded_random_slots_in_their_own_order():
    regular = [f"r{i}" for i in range(7)]
    promoted = ["p0", "p1", "p2"]
    merged = place_promoted(regular, promoted, "RID-1")
    assert merged == place_promoted(regular, promoted, "RID-1")  # the same id, the same answer
    assert [i for i in merged if i.startswith("p")] == promoted
    assert [i for i in merged if i.startswith("r")] == regular
    layouts = {tuple(place_promoted(regular, promoted, f"RID-{n}")) for n in range(20)}
    assert len(layouts) > 5  # different lists spread promoted items differently
    assert place_promoted(regular, [], "RID-1") == regular
    assert place_promoted([], promoted, "RID-1") == promoted


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "-x"}, "promotion name"),
        ({"percent_promoted_items": 0}, "from 1 to 100"),
        ({"percent_promoted_items": 101}, "from 1 to 100"),
        ({"percent_promoted_items": 2.5}, "whole number"),
        ({"filter_name": ""}, "needs a filter"),
    ],
)
def test_a_bad_promotion_is_refused(kwargs, message):
    args = {"name": "push", "percent_promoted_items": 20, "filter_name": "f", **kwargs}
    with pytest.raises(InvalidInput, match=message):
        Promotion(**args)


def test_at_most_one_promotion():
    p = Promotion("push", 20, "f")
    check_promotions([p])
    with pytest.raises(InvalidInput, match="at most 1 promotion"):
        check_promotions([p, p])
