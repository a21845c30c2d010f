import numpy as np
import pytest

from engine.errors import InvalidInput
from engine.recipes import TrainingData, recipe_class
from engine.recipes.item_attribute_affinity import (
    Both,
    Either,
    Equals,
    ItemAttributeAffinity,
    parse_attribute_query,
)
from engine.records import Item
from tests.engine.recipes.contract import RecipeContract, clustered_data

FAST = {"factors": 8, "iterations": 10}


class TestItemAttributeAffinityContract(RecipeContract):
    recipe_cls = ItemAttributeAffinity
    hyperparameters = FAST


def catalogued() -> TrainingData:
    """clustered_data with metadata: a-items are shoes, b-items are hats; genres overlap."""
    base = clustered_data()
    items = {}
    for item in base.item_ids.tolist():
        n = int(item[1:])
        items[item] = Item(
            item,
            {
                "CATEGORY": "shoes" if item.startswith("a") else "hats",
                "GENRES": "Outdoor|Sport" if n % 2 else "Formal",
                "PRICE": float(n),
                "PRODUCT_DESCRIPTION": f"item number {n}",
            },
        )
    return TrainingData.from_columns(
        np.asarray(base.user_ids)[base.user_index],
        np.asarray(base.item_ids)[base.item_index],
        base.event_types,
        base.timestamps,
        items=items,
    )


@pytest.fixture(scope="module")
def model() -> ItemAttributeAffinity:
    return ItemAttributeAffinity(**FAST).fit(catalogued())


def even_share(user_ids) -> float:
    return sum(int(u[1:]) % 2 == 0 for u in user_ids) / len(user_ids)


def test_the_segment_for_an_attribute_is_the_users_who_like_such_items(model):
    assert even_share(model.segment_for_attributes('ITEMS.CATEGORY = "shoes"', 20).item_ids) >= 0.9
    assert even_share(model.segment_for_attributes('items.category = "hats"', 20).item_ids) <= 0.1


def test_queries_combine_with_and_or_and_multi_valued_fields_match_any_value(model):
    assert set(model.matching_items('ITEMS.CATEGORY = "shoes" AND ITEMS.GENRES = "Sport"')) == {
        f"a{n}" for n in range(1, 20, 2)
    }
    either = model.matching_items('ITEMS.PRICE = 3 OR ITEMS.PRICE = 4.0 AND ITEMS.CATEGORY = "hats"')
    assert set(either) == {"a3", "b3", "b4"}
    grouped = model.matching_items('(ITEMS.PRICE = 3 OR ITEMS.PRICE = 4) AND ITEMS.CATEGORY = "hats"')
    assert set(grouped) == {"b3", "b4"}


def test_values_are_case_sensitive_and_no_match_is_an_empty_segment(model):
    assert model.matching_items('ITEMS.CATEGORY = "Shoes"') == []
    assert len(model.segment_for_attributes('ITEMS.CATEGORY = "Shoes"', 10)) == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('ITEMS.PRODUCT_DESCRIPTION = "item"', "textual"),
        ('ITEMS.COLOUR = "red"', "no attribute COLOUR"),
        ('ITEMS.CATEGORY IN ("shoes")', "only = is supported"),
        ('CATEGORY = "shoes"', "ITEMS"),
        ('ITEMS.CATEGORY = "shoes" AND', "at the end"),
        ("", "empty"),
    ],
)
def test_bad_queries_are_refused_with_the_reason(model, query, message):
    with pytest.raises(InvalidInput, match=message):
        model.matching_items(query)


def test_the_parser_reads_escapes_and_precedence():
    assert parse_attribute_query(r'ITEMS.BRAND = "Joe\"s \\ Co"') == Equals("BRAND", 'Joe"s \\ Co')
    a, b, c = (Equals("A", "1"), Equals("B", "2"), Equals("C", 3.0))
    assert parse_attribute_query('ITEMS.a = "1" OR ITEMS.b = "2" AND ITEMS.c = 3') == Either((a, Both((b, c))))


def test_registered_under_personalizes_name_and_arn():
    assert recipe_class("arn:aws:personalize:::recipe/aws-item-attribute-affinity") is ItemAttributeAffinity
    assert ItemAttributeAffinity.recipe_type == "USER_SEGMENTATION"
