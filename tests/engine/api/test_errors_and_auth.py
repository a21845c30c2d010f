"""Bad input gets a 4xx with a message in the one error shape; keys are enforced."""

from __future__ import annotations

import pytest
import requests


def error_of(response):
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ({"campaign": "nope", "userId": "u0"}, 404, "ResourceNotFoundException", "campaign 'nope'"),
        ({"userId": "u0"}, 400, "InvalidInputException", "campaign"),
        ({"campaign": "for-you", "userId": "u0", "numResults": 501}, 400, "InvalidInputException", "numResults"),
        ({"campaign": "for-you"}, 400, "InvalidInputException", "needs a userId"),
        ({"campaign": "also-bought"}, 400, "InvalidInputException", "needs an itemId"),
        ({"campaign": "for-you", "userId": "x" * 257}, 400, "InvalidInputException", "userId"),
        (
            {"campaign": "for-you", "userId": "u0", "numResults": 60, "metadataColumns": {"ITEMS": ["TITLE"]}},
            400,
            "InvalidInputException",
            "at most 50",
        ),
    ],
)
def test_bad_recommendation_requests(shop, body, status, code, says):
    r = shop.post("/v1/recommendations", body, key=shop.secret_key)
    assert r.status_code == status
    error = error_of(r)
    assert error["code"] == code and says in error["message"]
    assert r.headers["x-amzn-ErrorType"] == code


def test_a_body_that_is_not_json(shop):
    r = requests.post(
        shop.url + "/v1/recommendations",
        data="{nope",
        timeout=5,
        headers={"Authorization": f"Bearer {shop.secret_key}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "JSON object" in error_of(r)["message"]


@pytest.mark.parametrize(
    ("events", "says"),
    [
        ([], "eventList"),
        ([{"eventType": "view", "itemId": "shoe1"}], "sentAt"),
        ([{"eventType": "view", "sentAt": 1_700_000_000}], "itemId is required"),
        ([{"eventType": "view", "itemId": "shoe1", "sentAt": 1_700_000_000_000}], "epoch seconds"),
        ([{"eventType": "view", "itemId": "shoe1", "sentAt": 1, "properties": "{bad"}], "properties"),
        ([{"eventType": "view", "itemId": "shoe1", "sentAt": 1, "properties": '{"userId": "x"}'}], "userId"),
        ([{"eventType": "view", "itemId": "s", "sentAt": 1}] * 11, "eventList"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_stored(shop, events, says):
    r = shop.post(
        "/v1/events",
        {"trackingId": shop.tracking_id, "userId": "bad-events", "sessionId": "s", "eventList": events},
        key=shop.public_key,
    )
    assert r.status_code == 400
    assert says in error_of(r)["message"]
    assert shop.store.latest_events("shop", "bad-events") == []


def test_an_unknown_tracking_id_is_refused(shop):
    r = shop.post(
        "/v1/events",
        {"trackingId": "nope", "sessionId": "s", "eventList": [{"eventType": "view", "itemId": "shoe1", "sentAt": 1}]},
        key=shop.public_key,
    )
    assert r.status_code == 400 and "trackingId" in error_of(r)["message"]


def test_a_key_is_required_and_must_be_valid(shop):
    body = {"campaign": "for-you", "userId": "u0"}
    assert shop.post("/v1/recommendations", body).status_code == 401
    r = shop.post("/v1/recommendations", body, key="sk_0000.nope")
    assert r.status_code == 401 and error_of(r)["code"] == "UnauthorizedException"


def test_a_key_of_another_store_sees_nothing_of_this_one(shop):
    other_key, _ = shop.store.create_api_key("other-shop", "secret")
    r = shop.post("/v1/recommendations", {"campaign": "for-you", "userId": "u0"}, key=other_key)
    assert r.status_code == 404


def test_the_public_key_answers_only_its_stores_origins(shop):
    body = {"campaign": "best-sellers", "numResults": 2}
    ok = shop.post("/v1/recommendations", body, key=shop.public_key, headers={"Origin": "https://shop.example"})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    refused = shop.post("/v1/recommendations", body, key=shop.public_key, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_a_preflight_is_answered(shop):
    r = requests.options(
        shop.url + "/v1/recommendations",
        timeout=5,
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert r.status_code == 204
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]


def test_unknown_routes_answer_in_the_error_shape(shop):
    r = requests.get(shop.url + "/v1/nothing-here", timeout=5)
    assert r.status_code == 404 and error_of(r)["code"] == "NotFound"


def test_a_page_can_read_why_its_key_was_refused(shop):
    r = shop.post(
        "/v1/recommendations",
        {"campaign": "best-sellers"},
        key="pk_0000.nope",
        headers={"Origin": "https://anywhere.example"},
    )
    assert r.status_code == 401
    assert r.headers["Access-Control-Allow-Origin"] == "https://anywhere.example"
