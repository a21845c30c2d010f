import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import yaml

from engine.recipes import Query, TrainingData, recipe_class
from engine.recipes.cooccurrence import shrunk_cosine
from engine.recipes.implicit_backend import fit_cosine
from engine.recipes.similar_items import EVIDENCE_CHOICES, SimilarItems
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


def test_a_pair_many_shoppers_share_outranks_a_one_off_pair():
    # All 10 shoppers of the "tent" also touched the "lamp" (a bestseller: 200 shoppers); one of
    # them also touched the rare "compass". Plain cosine ranks the one-off pair first
    # (1/sqrt(10 * 1) against 10/sqrt(10 * 200)); the shrunk cosine ranks the lamp first.
    users, items = [], []
    for u in range(200):
        users.append(f"u{u}")
        items.append("lamp")
        if u < 10:
            users.append(f"u{u}")
            items.append("tent")
    users.append("u0")
    items.append("compass")
    data = TrainingData.from_columns(users, items, ["view"] * len(users), range(len(users)))
    matrix = sp.csr_matrix((np.ones(len(data)), (data.user_index, data.item_index)))
    tent, lamp, compass = (int(np.searchsorted(data.item_ids, i)) for i in ("tent", "lamp", "compass"))
    plain = fit_cosine(matrix, neighbours=5)
    assert plain[tent, compass] > plain[tent, lamp]
    shrunk = shrunk_cosine(matrix, shrink=5.0, neighbours=5)
    assert shrunk[tent, lamp] > shrunk[tent, compass] > 0
    assert shrunk[tent, compass] == pytest.approx(1 / (np.sqrt(10) + 5.0))
    model = SimilarItems(cold_item_interactions=5).fit(data)
    assert model.recommend(Query(item_id="tent", num_results=2)).item_ids == ("lamp", "compass")


def test_metadata_prefers_the_items_people_want_among_equally_alike_ones():
    # Three identical-looking mugs; only "mug-popular" is bought. A new mug's nearest is that one.
    mug = {"CATEGORY_L1": "kitchen", "PRODUCT_DESCRIPTION": "glazed stoneware coffee mug"}
    items = {f"mug-{k}": Item(f"mug-{k}", dict(mug)) for k in ("quiet", "popular", "new", "other")}
    items["pan"] = Item("pan", {"CATEGORY_L1": "kitchen", "PRODUCT_DESCRIPTION": "cast iron frying pan"})
    users = [f"u{u}" for u in range(12)] + ["v0", "v1"]
    bought = ["mug-popular"] * 10 + ["pan", "pan", "mug-quiet", "mug-other"]
    data = TrainingData.from_columns(users, bought, ["purchase"] * len(users), range(len(users)), items=items)
    ranked = SimilarItems().fit(data).recommend(Query(item_id="mug-new", num_results=3))
    assert ranked.item_ids[0] == "mug-popular" and "pan" not in ranked.item_ids


def test_how_much_metadata_counts_is_chosen_on_held_out_shoppers_and_saved(tmp_path):
    data = shop(retail_slice(), untouched={"backpack-6"})
    model = SimilarItems().fit(data)
    assert model.evidence in EVIDENCE_CHOICES
    assert SimilarItems(cold_item_interactions=7).fit(data).evidence == 7
    loaded = SimilarItems.load(model.save(tmp_path / "similar.npz"))
    assert loaded.evidence == model.evidence
    query = Query(item_id="backpack-6", num_results=5)
    assert loaded.recommend(query) == model.recommend(query)


def test_co_occurrence_computed_in_blocks_or_for_some_rows_is_the_same(monkeypatch):
    touched = sp.random(300, 120, density=0.05, random_state=1, format="csr")
    whole = shrunk_cosine(touched, shrink=3.0, neighbours=7)
    assert whole.nnz > 0 and np.diff(whole.indptr).max() == 7
    monkeypatch.setattr("engine.recipes.cooccurrence.MAX_BLOCK_PAIRS", 50)
    assert abs(shrunk_cosine(touched, shrink=3.0, neighbours=7) - whole).max() == 0
    some = shrunk_cosine(touched, shrink=3.0, neighbours=7, rows=np.array([5, 3]))
    assert abs(some[[3, 5]] - whole[[3, 5]]).max() == 0 and some.nnz == whole[[3, 5]].nnz
