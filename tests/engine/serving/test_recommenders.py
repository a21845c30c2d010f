"""Domain recommenders: one command per use case, with the filters the use case implies."""

from __future__ import annotations

import pytest

from engine.errors import AlreadyExists, InvalidInput, NotFound
from engine.records import Interaction
from engine.serving.campaigns import CampaignService
from engine.serving.recommenders import USE_CASES, create_recommender, list_recommenders, use_case
from tests.engine.api.conftest import catalog_events


@pytest.fixture
def shop(sqlite_store):
    sqlite_store.create_dataset_group("shop", "ECOMMERCE")
    sqlite_store.ingest("shop", catalog_events())
    return sqlite_store


def test_recommended_for_you_never_shows_what_the_shopper_bought(shop, tmp_path):
    create_recommender(shop, tmp_path, "shop", "for-you", "aws-ecomm-recommended-for-you")
    service = CampaignService(shop)
    # u0 bought shoe0 long ago, then browsed past it 600 times: still never recommended.
    shop.ingest("shop", [Interaction("u0", f"pan{i % 10}", "view", 1_800_000_000 + i) for i in range(600)])
    answer = service.recommend("shop", "for-you", recommender=True, user_id="u0", num_results=20)
    ids = [i.item_id for i in answer.items]
    assert ids and "shoe0" not in ids and "shoe1" not in ids


def test_frequently_bought_together_answers_for_an_item(shop, tmp_path):
    info = create_recommender(
        shop, tmp_path, "shop", "fbt", "arn:aws:personalize:::recipe/aws-ecomm-frequently-bought-together"
    )
    assert info.use_case == "aws-ecomm-frequently-bought-together" and info.solution_version_id
    answer = CampaignService(shop).recommend("shop", "fbt", recommender=True, item_id="shoe0", num_results=1)
    assert [i.item_id for i in answer.items] == ["shoe1"]


def test_popular_items_by_purchases_include_what_the_shopper_has(shop, tmp_path):
    create_recommender(shop, tmp_path, "shop", "popular", "aws-ecomm-popular-items-by-purchases")
    answer = CampaignService(shop).recommend("shop", "popular", recommender=True, user_id="u0", num_results=4)
    assert {i.item_id for i in answer.items} == {"shoe0", "shoe1", "pan0", "pan1"}


def test_mistakes_are_refused(shop, tmp_path):
    with pytest.raises(InvalidInput, match="unknown recommender recipe"):
        create_recommender(shop, tmp_path, "shop", "x", "aws-ecomm-magic")
    with pytest.raises(InvalidInput, match="VIDEO_ON_DEMAND use case"):
        create_recommender(shop, tmp_path, "shop", "x", "aws-vod-top-picks")
    create_recommender(shop, tmp_path, "shop", "x", "aws-ecomm-popular-items-by-views")
    with pytest.raises(AlreadyExists):
        create_recommender(shop, tmp_path, "shop", "x", "aws-ecomm-popular-items-by-views")
    with pytest.raises(NotFound):
        CampaignService(shop).recommend("shop", "nope", recommender=True, user_id="u0")
    assert [r.name for r in list_recommenders(shop, "shop")] == ["x"]


def test_every_use_case_names_a_registered_recipe():
    from engine.recipes import RECIPES

    for name, case in USE_CASES.items():
        assert case.recipe in RECIPES, name
        assert use_case(name)[1] is case
