"""GetRecommendations / GetPersonalizedRanking through the real HTTP server."""

from __future__ import annotations

import math


def test_recommendations_carry_scores_metadata_and_a_recommendation_id(shop):
    r = shop.post(
        "/v1/recommendations",
        {
            "campaign": "for-you",
            "userId": "u0",
            "numResults": 5,
            "metadataColumns": {"ITEMS": ["TITLE", "PRICE", "CATEGORY_L1"]},
        },
        key=shop.secret_key,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["recommendationId"].startswith("RID-")
    assert len(body["itemList"]) == 5
    first = body["itemList"][0]
    assert set(first) == {"itemId", "score", "metadata"}
    assert set(first["metadata"]) == {"title", "price", "categoryL1"}
    # u0 is a shoes shopper: shoes lead the list.
    assert all(i["metadata"]["categoryL1"] == "shoes" for i in body["itemList"][:3])


def test_a_campaign_can_leave_out_everything_the_user_interacted_with(shop):
    seen = {e.item_id for e in shop.store.latest_events("shop", "u0")}
    body = shop.post(
        "/v1/recommendations", {"campaign": "for-you-unseen", "userId": "u0", "numResults": 20}, key=shop.secret_key
    ).json()
    assert body["itemList"] and not seen & {i["itemId"] for i in body["itemList"]}
    # u0 has seen every shoe but shoe4 and shoe7: those lead the list.
    assert {i["itemId"] for i in body["itemList"][:2]} == {"shoe4", "shoe7"}


def test_related_items_for_an_item(shop):
    body = shop.post(
        "/v1/recommendations", {"campaign": "also-bought", "itemId": "shoe0", "numResults": 3}, key=shop.public_key
    ).json()
    assert body["itemList"][0]["itemId"] == "shoe1"
    assert "shoe0" not in [i["itemId"] for i in body["itemList"]]


def test_personalized_ranking_puts_unknown_items_last_without_a_score(shop):
    r = shop.post(
        "/v1/personalize-ranking",
        {
            "campaign": "for-you",
            "userId": "u1",
            "inputList": ["shoe5", "nope", "pan5"],
        },
        key=shop.public_key,
    )
    assert r.status_code == 200, r.text
    ranking = r.json()["personalizedRanking"]
    assert [i["itemId"] for i in ranking] == ["pan5", "shoe5", "nope"]  # u1 shops for pans
    assert "score" not in ranking[-1]


def test_events_show_in_the_very_next_answer(shop):
    before = shop.post(
        "/v1/recommendations",
        {
            "campaign": "for-you",
            "userId": "fresh-shopper",
            "numResults": 5,
            "metadataColumns": {"ITEMS": ["CATEGORY_L1"]},
        },
        key=shop.public_key,
    ).json()
    events = [{"eventType": "view", "itemId": f"pan{i}", "sentAt": 1_800_000_000 + i} for i in range(2, 6)]
    r = shop.post(
        "/v1/events",
        {"trackingId": shop.tracking_id, "userId": "fresh-shopper", "sessionId": "s-new", "eventList": events},
        key=shop.public_key,
    )
    assert r.status_code == 200 and r.json() == {"accepted": 4}
    after = shop.post(
        "/v1/recommendations",
        {
            "campaign": "for-you",
            "userId": "fresh-shopper",
            "numResults": 5,
            "metadataColumns": {"ITEMS": ["CATEGORY_L1"]},
        },
        key=shop.public_key,
    ).json()
    assert [i["itemId"] for i in before["itemList"]] != [i["itemId"] for i in after["itemList"]]
    assert all(i["metadata"]["categoryL1"] == "kitchen" for i in after["itemList"])


def test_anonymous_events_are_kept_under_the_session_id(shop):
    r = shop.post(
        "/v1/events",
        {
            "trackingId": shop.tracking_id,
            "sessionId": "anon-1",
            "eventList": [
                {
                    "eventType": "click",
                    "itemId": "shoe3",
                    "sentAt": 1_800_000_000,
                    "recommendationId": "RID-abc",
                    "properties": '{"device": "mobile"}',
                }
            ],
        },
        key=shop.public_key,
    )
    assert r.status_code == 200, r.text
    [event] = shop.store.latest_events("shop", "anon-1")
    assert event.recommendation_id == "RID-abc" and event.session_id == "anon-1"


def test_popular_items_need_no_user(shop):
    body = shop.post("/v1/recommendations", {"campaign": "best-sellers", "numResults": 2}, key=shop.public_key).json()
    assert {i["itemId"] for i in body["itemList"]} <= {"shoe0", "shoe1", "pan0", "pan1"}
    assert all(not math.isnan(i["score"]) for i in body["itemList"])


def test_an_anonymous_session_joins_the_user_once_the_user_is_known(shop):
    def send(body):
        r = shop.post("/v1/events", {"trackingId": shop.tracking_id, **body}, key=shop.public_key)
        assert r.status_code == 200, r.text

    send({"sessionId": "visit-9", "eventList": [{"eventType": "view", "itemId": "pan7", "sentAt": 1_800_000_000}]})
    send(
        {
            "sessionId": "visit-9",
            "userId": "signed-in-9",
            "eventList": [{"eventType": "view", "itemId": "pan8", "sentAt": 1_800_000_100}],
        }
    )
    assert [e.item_id for e in shop.store.latest_events("shop", "signed-in-9")] == ["pan7", "pan8"]
    assert shop.store.latest_events("shop", "visit-9") == []


def test_a_campaign_may_opt_in_to_the_approximate_candidate_index(shop):
    version = shop.store.get_campaign("shop", "for-you").solution_version_id
    quiet = {"explorationWeight": 0}  # exploration draws at random; compare the model's own lists
    shop.store.create_campaign("for-you-exact", version, quiet)
    every_cluster = {"clusters": 4, "probe": 4}
    shop.store.create_campaign("for-you-ivf", version, {**quiet, "approximateCandidates": every_cluster})
    shop.store.create_campaign("for-you-ivf-some", version, {**quiet, "approximateCandidates": {"clusters": 4}})

    def items(campaign: str, user: str) -> list[str]:
        body = {"campaign": campaign, "userId": user, "numResults": 5}
        r = shop.post("/v1/recommendations", body, key=shop.secret_key)
        assert r.status_code == 200, r.text
        return [i["itemId"] for i in r.json()["itemList"]]

    for user in ("u0", "u1", "u7"):
        exact = items("for-you-exact", user)
        assert items("for-you-ivf", user) == exact  # every cluster probed: the exact answer
        assert len(items("for-you-ivf-some", user)) == len(exact)
