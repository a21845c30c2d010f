"""Filters and promotions through the real HTTP server, on campaigns trained for real."""

from __future__ import annotations

import pytest

from engine.serving.filters import create_filter

ARN = "arn:aws:personalize:us-east-1:000000000000:filter/"


@pytest.fixture(scope="module")
def filtered_shop(shop):
    """The shop of conftest plus filters, and a campaign that shows shoppers what they already
    interacted with (so only a filter can hide those)."""
    version = shop.store.latest_solution_version("shop", "for-you")
    shop.store.create_campaign("for-you-all", version.id, {"excludeInteracted": False})
    for name, expression in {
        "no-purchased": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")',
        "category": "INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ($CATEGORY)",
        "cheaper-than": "INCLUDE ItemID WHERE Items.PRICE <= $PRICE",
        "same-category": "INCLUDE ItemID WHERE Items.CATEGORY_L1 IN CurrentItem.CATEGORY_L1",
        "shoes": 'INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("shoes")',
        "dearest-pan": 'INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("kitchen") AND Items.PRICE >= 29',
    }.items():
        create_filter(shop.store, "shop", name, expression)
    return shop


def recommend(shop, body: dict, *, status: int = 200, path: str = "/v1/recommendations") -> dict:
    r = shop.post(path, body, key=shop.public_key)
    assert r.status_code == status, r.text
    return r.json()


def ids(body: dict, key: str = "itemList") -> list[str]:
    return [i["itemId"] for i in body[key]]


def test_an_exclude_purchased_filter_hides_an_item_the_moment_it_is_bought(filtered_shop):
    shop = filtered_shop
    views = [{"eventType": "view", "itemId": f"shoe{i}", "sentAt": 1_800_000_000 + i} for i in (2, 3, 4)]
    body = {"trackingId": shop.tracking_id, "userId": "buyer-1", "sessionId": "s-b1", "eventList": views}
    assert shop.post("/v1/events", body, key=shop.public_key).status_code == 200
    request = {"campaign": "for-you-all", "userId": "buyer-1", "numResults": 20, "filter": "no-purchased"}
    before = ids(recommend(shop, request))
    bought = before[0]
    purchase = [{"eventType": "Purchase", "itemId": bought, "sentAt": 1_800_000_100}]
    body = {**body, "eventList": purchase}
    assert shop.post("/v1/events", body, key=shop.public_key).status_code == 200

    after = ids(recommend(shop, request))
    assert bought not in after
    assert len(after) == len(before) - 1
    unfiltered = ids(recommend(shop, {k: v for k, v in request.items() if k != "filter"}))
    assert bought in unfiltered  # the filter hid it, not the campaign
    by_arn = {k: v for k, v in request.items() if k != "filter"} | {"filterArn": ARN + "no-purchased"}
    assert bought not in ids(recommend(shop, by_arn))


def test_an_include_filter_on_a_category_takes_its_value_per_request(filtered_shop):
    request = {
        "campaign": "for-you",
        "userId": "u0",  # a shoes shopper
        "numResults": 5,
        "metadataColumns": {"ITEMS": ["CATEGORY_L1", "PRICE"]},
        "filterArn": ARN + "category",
    }
    kitchen = recommend(filtered_shop, {**request, "filterValues": {"CATEGORY": '"kitchen"'}})["itemList"]
    assert len(kitchen) == 5 and {i["metadata"]["categoryL1"] for i in kitchen} == {"kitchen"}
    both = recommend(filtered_shop, {**request, "filterValues": {"CATEGORY": '"kitchen","shoes"'}})["itemList"]
    assert {i["metadata"]["categoryL1"] for i in both} >= {"shoes"}
    cheap = recommend(filtered_shop, {**request, "filterArn": ARN + "cheaper-than", "filterValues": {"PRICE": "22.5"}})[
        "itemList"
    ]
    assert {i["itemId"] for i in cheap} <= {"pan0", "pan1", "pan2"} and all(
        i["metadata"]["price"] <= 22.5 for i in cheap
    )


def test_related_items_filtered_by_the_current_item(filtered_shop):
    body = recommend(
        filtered_shop,
        {"campaign": "also-bought", "itemId": "pan3", "numResults": 15, "filter": "same-category"},
    )
    assert ids(body) and all(i.startswith("pan") for i in ids(body)) and "pan3" not in ids(body)
    error = recommend(filtered_shop, {"campaign": "for-you", "userId": "u0", "filter": "same-category"}, status=400)[
        "error"
    ]
    assert "CurrentItem.CATEGORY_L1" in error["message"] and "itemId" in error["message"]


def test_personalized_ranking_drops_what_the_filter_excludes(filtered_shop):
    body = recommend(
        filtered_shop,
        {"campaign": "for-you", "userId": "u1", "inputList": ["shoe5", "pan5", "nope", "shoe6"], "filter": "shoes"},
        path="/v1/personalize-ranking",
    )
    assert sorted(ids(body, "personalizedRanking")) == ["shoe5", "shoe6"]


@pytest.mark.parametrize(
    ("extra", "status", "message"),
    [
        ({"filter": "category"}, 400, "needs filterValues for $CATEGORY"),
        ({"filter": "category", "filterValues": {"CATEGORY": "kitchen"}}, 400, "at position 1: values must be quoted"),
        ({"filter": "category", "filterValues": {"category": '"kitchen"'}}, 400, "names are case-sensitive"),
        ({"filter": "category", "filterValues": {"bad-key": '"x"'}}, 400, "filterValues"),
        ({"filter": "category", "filterValues": {f"K{i}": '"x"' for i in range(26)}}, 400, "at most 25 entries"),
        ({"filter": "category", "filterValues": {"CATEGORY": "x" * 1001}}, 400, "filterValues"),
        ({"filter": "category", "filterValues": {"CATEGORY": 5}}, 400, "filterValues"),
        ({"filter": "cheaper-than", "filterValues": {"PRICE": '"cheap"'}}, 400, "compares numbers"),
        ({"filterValues": {"CATEGORY": '"x"'}}, 400, "without a filter"),
        ({"filter": "shoes", "filterArn": ARN + "category"}, 400, "name different filters"),
        ({"filterArn": "arn:aws:personalize:us-east-1:1:campaign/x"}, 400, "not a filter ARN"),
        ({"filter": "nope"}, 404, "filter 'nope' does not exist"),
    ],
)
def test_bad_filter_requests_get_a_clear_error(filtered_shop, extra, status, message):
    request = {"campaign": "for-you", "userId": "u0", **extra}
    error = recommend(filtered_shop, request, status=status)["error"]
    assert message in error["message"]
    assert error["code"] == ("InvalidInputException" if status == 400 else "ResourceNotFoundException")


def promotion(**overrides) -> dict:
    return {
        "name": "kitchen-push",
        "percentPromotedItems": 30,
        "filter": "category",
        "filterValues": {"CATEGORY": '"kitchen"'},
        **overrides,
    }


def test_a_promotion_takes_its_share_from_its_own_filter_and_is_marked(filtered_shop):
    request = {
        "campaign": "for-you-all",
        "userId": "u0",
        "numResults": 10,
        "filter": "shoes",
        "metadataColumns": {"ITEMS": ["CATEGORY_L1"]},
        "promotions": [promotion()],
    }
    layouts = set()
    for _ in range(6):
        items = recommend(filtered_shop, request)["itemList"]
        assert len(items) == 10
        promoted = [i for i in items if "promotionName" in i]
        regular = [i for i in items if "promotionName" not in i]
        assert len(promoted) == 3 and {i["promotionName"] for i in promoted} == {"kitchen-push"}
        # the promotion's filter applies to promoted items, the request's filter to the others
        assert {i["metadata"]["categoryL1"] for i in promoted} == {"kitchen"}
        assert {i["metadata"]["categoryL1"] for i in regular} == {"shoes"}
        for group in (promoted, regular):  # each in score order among themselves
            scores = [i["score"] for i in group]
            assert scores == sorted(scores, reverse=True)
        layouts.add(tuple(n for n, i in enumerate(items) if "promotionName" in i))
    assert len(layouts) > 1  # positioned randomly among the other items


def test_a_promotion_with_too_few_items_gives_as_many_as_it_has(filtered_shop):
    only_one = {"name": "pan9-push", "percentPromotedItems": 50, "filterArn": ARN + "dearest-pan"}
    request = {"campaign": "for-you-all", "userId": "u1", "numResults": 4, "promotions": [only_one]}
    items = recommend(filtered_shop, request)["itemList"]
    assert len(items) == 4
    assert [i["itemId"] for i in items if "promotionName" in i] == ["pan9"]
    assert [i["itemId"] for i in items].count("pan9") == 1


@pytest.mark.parametrize(
    ("promotions", "message"),
    [
        ([promotion(percentPromotedItems=0)], "percentPromotedItems"),
        ([promotion(percentPromotedItems=101)], "percentPromotedItems"),
        ([promotion(), promotion(name="second")], "at most 1 promotion"),
        ([{"name": "no-filter", "percentPromotedItems": 10}], "needs a filter"),
        ([promotion(name="bad name")], "name"),
        ([promotion(filterValues={})], "needs filterValues for $CATEGORY"),
    ],
)
def test_bad_promotions_get_a_clear_error(filtered_shop, promotions, message):
    request = {"campaign": "for-you", "userId": "u0", "promotions": promotions}
    error = recommend(filtered_shop, request, status=400)["error"]
    assert message in error["message"]
