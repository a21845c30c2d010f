import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from engine.recipes import Query, TrainingData, recipe_class
from engine.recipes.similar_items import SimilarItems
from engine.records import Item
from tests.engine.recipes.contract import RecipeContract

CATALOG = Path("/work/shared/data/retail-demo-store-catalog/products.yaml")


class TestSimilarItemsContract(RecipeContract):
    recipe_cls = SimilarItems


def retail_slice(per_style: int = 6) -> dict[str, Item]:
    """A few styles of the retail demo catalogue (real product text and categories), read in place."""
    if not CATALOG.exists():
        pytest.skip(f"{CATALOG} is not available")
    wanted = {("accessories", "backpack"), ("footwear", "formal"), ("housewares", "kitchen"), ("books", "cooking")}
    with CATALOG.open() as f:
        products = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    taken: dict[tuple[str, str], int] = {}
    items = {}
    for p in products:
        key = (p["category"], p["style"])
        if key in wanted and taken.get(key, 0) < per_style:
            taken[key] = taken.get(key, 0) + 1
            props = {k.upper(): v for k, v in p.items() if k not in ("id", "image", "name")}
            items[f"{p['style']}-{taken[key]}"] = Item(p["id"], props)
    return items


def shop(items: dict[str, Item], untouched: set[str]) -> TrainingData:
    """Shoppers browse within one style; the ``untouched`` items have no interactions at all."""
    rng = np.random.default_rng(1)
    by_style: dict[str, list[str]] = {}
    for key in items:
        if key not in untouched:
            by_style.setdefault(key.rsplit("-", 1)[0], []).append(key)
    users, seen = [], []
    for u in range(80):
        style = sorted(by_style)[u % len(by_style)]
        for item in rng.choice(by_style[style], size=3, replace=False):
            users.append(f"u{u}")
            seen.append(item)
    catalog = {key: Item(key, item.properties) for key, item in items.items()}
    return TrainingData.from_columns(users, seen, ["view"] * len(users), range(len(users)), items=catalog)


def test_an_item_nobody_touched_gets_neighbours_from_its_text_and_categories():
    items = retail_slice()
    model = SimilarItems(neighbours=20).fit(shop(items, untouched={"backpack-6", "formal-6"}))
    for cold in ("backpack-6", "formal-6"):
        ranked = model.recommend(Query(item_id=cold, num_results=5))
        style = cold.rsplit("-", 1)[0]
        assert all(i.startswith(style) for i in ranked.item_ids), ranked
        assert not any(math.isnan(s) for s in ranked.scores)
        assert cold not in ranked.item_ids


def test_items_with_interactions_lean_on_what_is_bought_together():
    # Socks are a different category from boots, but everybody buys them together.
    items = {
        "boots": Item("boots", {"CATEGORY_L1": "shoes", "PRODUCT_DESCRIPTION": "leather hiking boots"}),
        "sneakers": Item("sneakers", {"CATEGORY_L1": "shoes", "PRODUCT_DESCRIPTION": "canvas running sneakers"}),
        "socks": Item("socks", {"CATEGORY_L1": "hosiery", "PRODUCT_DESCRIPTION": "wool hiking socks"}),
        "tights": Item("tights", {"CATEGORY_L1": "hosiery", "PRODUCT_DESCRIPTION": "nylon tights"}),
    }
    users, bought = [], []
    for u in range(20):
        users += [f"u{u}", f"u{u}"]
        bought += ["boots", "socks"] if u % 2 else ["sneakers", "tights"]
    data = TrainingData.from_columns(users, bought, ["purchase"] * len(users), range(len(users)), items=items)
    assert SimilarItems().fit(data).recommend(Query(item_id="boots", num_results=1)).item_ids == ("socks",)
    # With metadata alone, boots are most like the other shoes.
    metadata_only = SimilarItems(metadata_weight=1.0).fit(data)
    assert metadata_only.recommend(Query(item_id="boots", num_results=1)).item_ids == ("sneakers",)


def test_an_unknown_item_gets_popular_items_without_a_similarity_score():
    data = shop(retail_slice(), untouched=set())
    model = SimilarItems().fit(data)
    ranked = model.recommend(Query(item_id="not-in-the-catalogue", num_results=4))
    assert len(ranked) == 4 and all(math.isnan(s) for s in ranked.scores)
    counts = np.bincount(data.item_index, minlength=data.n_items)
    assert counts[model.item_index(ranked.item_ids[0])] == counts.max()


def test_registered_under_personalizes_name_and_arn():
    assert recipe_class("arn:aws:personalize:::recipe/aws-similar-items") is SimilarItems
    assert SimilarItems.recipe_type == "RELATED_ITEMS"
