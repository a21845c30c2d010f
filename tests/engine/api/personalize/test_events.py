"""boto3's personalize-events client against a real server: PutEvents, PutItems, PutUsers."""

from __future__ import annotations

import json
import time

import pytest


def test_put_events_shows_in_the_next_recommendation(aws):
    events = aws.client("personalize-events")
    runtime = aws.client("personalize-runtime")
    campaign = aws.arn("campaign/for-you")
    events.put_events(
        trackingId=aws.tracking_id,
        userId="boto-shopper",
        sessionId="s-1",
        eventList=[
            {
                "eventType": "view",
                "itemId": f"pan{i}",
                "sentAt": time.time(),
                "eventId": f"e{i}",
                "properties": json.dumps({"device": "mobile"}),
                "recommendationId": "RID-x",
                "metricAttribution": {"eventAttributionSource": "email"},
            }
            for i in range(2, 6)
        ],
    )
    stored = aws.store.latest_events("shop", "boto-shopper")
    assert [e.item_id for e in stored] == ["pan2", "pan3", "pan4", "pan5"]
    answer = runtime.get_recommendations(
        campaignArn=campaign, userId="boto-shopper", numResults=3, metadataColumns={"ITEMS": ["CATEGORY_L1"]}
    )
    assert all(i["metadata"]["categoryL1"] == "kitchen" for i in answer["itemList"])


def test_put_events_with_an_unknown_tracking_id(aws):
    events = aws.client("personalize-events")
    with pytest.raises(events.exceptions.InvalidInputException):
        events.put_events(
            trackingId="nope", sessionId="s", eventList=[{"eventType": "view", "itemId": "pan1", "sentAt": time.time()}]
        )


def test_put_items_checks_properties_against_the_schema(aws):
    events = aws.client("personalize-events")
    dataset = aws.arn("dataset/shop/ITEMS")
    events.put_items(
        datasetArn=dataset,
        items=[
            {
                "itemId": "new-boot",
                "properties": json.dumps(
                    {"title": "New Boot", "price": "120.5", "categoryL1": "shoes", "creationTimestamp": 1_760_000_000}
                ),
            },
        ],
    )
    item = aws.store.items("shop", ["new-boot"])["new-boot"]
    assert item.properties == {"TITLE": "New Boot", "PRICE": 120.5, "CATEGORY_L1": "shoes"}
    assert item.creation_timestamp == 1_760_000_000
    with pytest.raises(events.exceptions.InvalidInputException) as caught:
        events.put_items(datasetArn=dataset, items=[{"itemId": "x", "properties": json.dumps({"colour": "red"})}])
    assert "COLOUR is not a field" in caught.value.response["Error"]["Message"]
    with pytest.raises(events.exceptions.InvalidInputException) as caught:
        events.put_items(datasetArn=dataset, items=[{"itemId": "x", "properties": json.dumps({"price": "cheap"})}])
    assert "PRICE" in caught.value.response["Error"]["Message"]
    assert "x" not in aws.store.items("shop", ["x"])


def test_put_users_without_a_schema_keeps_the_properties(aws):
    events = aws.client("personalize-events")
    events.put_users(
        datasetArn=aws.arn("dataset/shop/USERS"),
        users=[{"userId": "u77", "properties": json.dumps({"membershipStatus": "gold"})}],
    )
    assert aws.store.users("shop", ["u77"])["u77"].properties == {"MEMBERSHIP_STATUS": "gold"}


def test_a_dataset_of_another_dataset_group_is_not_found(aws):
    events = aws.client("personalize-events")
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.put_users(datasetArn=aws.arn("dataset/other-shop/USERS"), users=[{"userId": "u1"}])
