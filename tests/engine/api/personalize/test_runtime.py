"""boto3's personalize-runtime client, unchanged but for endpoint_url, against a real server."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ParamValidationError


def test_get_recommendations_answers_like_personalize(aws):
    runtime = aws.client("personalize-runtime")
    answer = runtime.get_recommendations(
        campaignArn=aws.arn("campaign/for-you"),
        userId="u1",
        numResults=5,
        metadataColumns={"ITEMS": ["TITLE", "CATEGORY_L1"]},
    )
    assert answer["recommendationId"].startswith("RID-")
    items = answer["itemList"]
    assert len(items) == 5
    assert all(set(i) == {"itemId", "score", "metadata"} for i in items)
    assert items[0]["metadata"]["categoryL1"] == "kitchen"  # u1 shops for pans


def test_related_items(aws):
    runtime = aws.client("personalize-runtime")
    answer = runtime.get_recommendations(campaignArn=aws.arn("campaign/also-bought"), itemId="shoe0", numResults=2)
    assert answer["itemList"][0]["itemId"] == "shoe1"


def test_get_personalized_ranking(aws):
    runtime = aws.client("personalize-runtime")
    answer = runtime.get_personalized_ranking(
        campaignArn=aws.arn("campaign/for-you"), userId="u0", inputList=["pan3", "never-seen", "shoe3"]
    )
    ranking = answer["personalizedRanking"]
    assert [i["itemId"] for i in ranking] == ["shoe3", "pan3", "never-seen"]
    assert "score" not in ranking[-1]


def test_personalized_ranking_returns_the_requested_item_fields(aws):
    runtime = aws.client("personalize-runtime")
    answer = runtime.get_personalized_ranking(
        campaignArn=aws.arn("campaign/for-you"),
        userId="u0",
        inputList=["pan3", "never-seen", "shoe3"],
        metadataColumns={"ITEMS": ["TITLE", "PRICE", "CATEGORY_L1"]},
    )
    by_id = {i["itemId"]: i.get("metadata") for i in answer["personalizedRanking"]}
    assert by_id["shoe3"] == {"title": "Shoe 3", "price": 53.0, "categoryL1": "shoes"}
    assert by_id["pan3"] == {"title": "Pan 3", "price": 23.0, "categoryL1": "kitchen"}
    assert not by_id["never-seen"]  # not in the catalog: nothing to return
    plain = runtime.get_personalized_ranking(
        campaignArn=aws.arn("campaign/for-you"), userId="u0", inputList=["pan3", "shoe3"]
    )
    assert all("metadata" not in i for i in plain["personalizedRanking"])


def test_an_unknown_metadata_column_is_invalid_input(aws):
    runtime = aws.client("personalize-runtime")
    calls = [
        lambda columns: runtime.get_recommendations(
            campaignArn=aws.arn("campaign/for-you"), userId="u1", numResults=5, metadataColumns=columns
        ),
        lambda columns: runtime.get_personalized_ranking(
            campaignArn=aws.arn("campaign/for-you"), userId="u1", inputList=["pan1"], metadataColumns=columns
        ),
    ]
    for call in calls:
        with pytest.raises(runtime.exceptions.InvalidInputException) as caught:
            call({"ITEMS": ["TITLE", "COLOUR"]})
        message = caught.value.response["Error"]["Message"]
        assert "Items schema has no column 'COLOUR'" in message and "TITLE, PRICE, CATEGORY_L1" in message
        with pytest.raises(runtime.exceptions.InvalidInputException) as caught:
            call({"USERS": ["AGE"]})
        assert "metadataColumns" in caught.value.response["Error"]["Message"]
    # Column names match the schema's whatever their case, and come back camelCased.
    answer = calls[0]({"ITEMS": ["category_l1"]})
    assert all(set(i["metadata"]) == {"categoryL1"} for i in answer["itemList"])


def test_a_missing_campaign_raises_resource_not_found(aws):
    runtime = aws.client("personalize-runtime")
    with pytest.raises(runtime.exceptions.ResourceNotFoundException) as caught:
        runtime.get_recommendations(campaignArn=aws.arn("campaign/nope"), userId="u1")
    assert "campaign 'nope'" in caught.value.response["Error"]["Message"]


def test_an_arn_of_another_account_is_not_found(aws):
    runtime = aws.client("personalize-runtime")
    with pytest.raises(runtime.exceptions.ResourceNotFoundException):
        runtime.get_recommendations(
            campaignArn="arn:aws:personalize:eu-west-1:999999999999:campaign/for-you", userId="u1"
        )


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"userId": "u1"}, "exactly one of campaignArn and recommenderArn"),
        ({"campaignArn": "arn:aws:personalize:eu-west-1:123456789012:filter/x", "userId": "u1"}, "campaign ARN"),
        ({"campaignArn": "CAMPAIGN", "userId": "u1", "numResults": 501}, "numResults"),
        (
            {"campaignArn": "CAMPAIGN", "userId": "u1", "numResults": 60, "metadataColumns": {"ITEMS": ["TITLE"]}},
            "at most 50",
        ),
        ({"campaignArn": "CAMPAIGN"}, "needs a userId"),
    ],
)
def test_bad_input_raises_invalid_input(aws, kwargs, says):
    runtime = aws.client("personalize-runtime")
    kwargs = {k: (aws.arn("campaign/for-you") if v == "CAMPAIGN" else v) for k, v in kwargs.items()}
    with pytest.raises(runtime.exceptions.InvalidInputException) as caught:
        runtime.get_recommendations(**kwargs)
    assert says in caught.value.response["Error"]["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_limits_botocore_leaves_to_the_server_are_enforced(aws):
    runtime = aws.client("personalize-runtime")
    with pytest.raises(runtime.exceptions.InvalidInputException) as caught:
        runtime.get_personalized_ranking(campaignArn=aws.arn("campaign/for-you"), userId="u1", inputList=[])
    assert "inputList" in caught.value.response["Error"]["Message"]
    with pytest.raises(runtime.exceptions.InvalidInputException):
        runtime.get_personalized_ranking(
            campaignArn=aws.arn("campaign/for-you"), userId="u1", inputList=[f"i{n}" for n in range(501)]
        )


def test_botocore_refuses_what_its_model_forbids_before_sending(aws):
    runtime = aws.client("personalize-runtime")
    with pytest.raises(ParamValidationError):
        runtime.get_recommendations(campaignArn=aws.arn("campaign/for-you"), userId="u1", numResults="many")


def test_a_wrong_secret_is_refused_in_the_aws_shape(aws):
    runtime = aws.client("personalize-runtime", secret="not-the-secret")
    with pytest.raises(ClientError) as caught:
        runtime.get_recommendations(campaignArn=aws.arn("campaign/for-you"), userId="u1")
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_unknown_access_key_is_refused(aws):
    runtime = aws.client("personalize-runtime", key="SWNOSUCHKEY000000000")
    with pytest.raises(ClientError) as caught:
        runtime.get_recommendations(campaignArn=aws.arn("campaign/for-you"), userId="u1")
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_filters_and_promotions_by_arn(aws):
    from engine.serving.filters import create_filter

    create_filter(aws.store, "shop", "only-category", "INCLUDE ItemID WHERE Items.CATEGORY_L1 IN ($CATEGORY)")
    runtime = aws.client("personalize-runtime")
    answer = runtime.get_recommendations(
        campaignArn=aws.arn("campaign/for-you"),
        userId="u1",
        numResults=6,
        filterArn=aws.arn("filter/only-category"),
        filterValues={"CATEGORY": '"shoes"'},
        metadataColumns={"ITEMS": ["CATEGORY_L1"]},
    )
    assert {i["metadata"]["categoryL1"] for i in answer["itemList"]} == {"shoes"}
    promoted = runtime.get_recommendations(
        campaignArn=aws.arn("campaign/for-you"),
        userId="u1",
        numResults=10,
        promotions=[
            {
                "name": "shoe-week",
                "percentPromotedItems": 20,
                "filterArn": aws.arn("filter/only-category"),
                "filterValues": {"CATEGORY": '"shoes"'},
            }
        ],
    )
    marked = [i for i in promoted["itemList"] if i.get("promotionName") == "shoe-week"]
    assert len(marked) == 2 and all(i["itemId"].startswith("shoe") for i in marked)
    with pytest.raises(runtime.exceptions.ResourceNotFoundException):
        runtime.get_recommendations(
            campaignArn=aws.arn("campaign/for-you"), userId="u1", filterArn=aws.arn("filter/missing")
        )


def test_a_domain_recommender_by_its_arn(aws, tmp_path):
    from engine.serving.recommenders import create_recommender

    create_recommender(aws.store, tmp_path, "shop", "top-sellers", "aws-ecomm-popular-items-by-purchases")
    runtime = aws.client("personalize-runtime")
    answer = runtime.get_recommendations(recommenderArn=aws.arn("recommender/top-sellers"), userId="u1", numResults=4)
    assert {i["itemId"] for i in answer["itemList"]} == {"shoe0", "shoe1", "pan0", "pan1"}
    with pytest.raises(runtime.exceptions.ResourceNotFoundException):
        runtime.get_recommendations(recommenderArn=aws.arn("recommender/nope"), userId="u1")
