"""/v1/recommendations and /v1/personalize-ranking: the native JSON read API."""

from __future__ import annotations

from flask import Blueprint, request

from engine.api.app import get_campaigns
from engine.api.auth import current_key, require_key
from engine.api.cors import enable_cors
from engine.api.schemas import RankingRequest, RecommendationsRequest
from engine.errors import InvalidInput
from engine.serving.campaigns import Recommendations
from engine.serving.promotions import Promotion

bp = Blueprint("recommendations", __name__, url_prefix="/v1")

#: Built once: a schema is reusable, and building one per request cost as much as loading.
_RECOMMENDATIONS_REQUEST = RecommendationsRequest()
_RANKING_REQUEST = RankingRequest()
enable_cors(bp)


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def item_list(recs: Recommendations) -> list[dict]:
    out = []
    for item in recs.items:
        entry: dict = {"itemId": item.item_id}
        if item.score is not None:
            entry["score"] = item.score
        if item.metadata is not None:
            entry["metadata"] = item.metadata
        if item.promotion_name is not None:
            entry["promotionName"] = item.promotion_name
        if item.reason:
            entry["reason"] = list(item.reason)
        out.append(entry)
    return out


@bp.route("/recommendations", methods=["OPTIONS"])
@bp.route("/personalize-ranking", methods=["OPTIONS"])
@bp.route("/events", methods=["OPTIONS"])
def preflight():
    return "", 204


@bp.post("/recommendations")
@require_key("recommend")
def get_recommendations():
    req = _RECOMMENDATIONS_REQUEST.load(json_body())
    recs = get_campaigns().recommend(
        current_key().dataset_group,
        req.get("campaign") or req["recommender"],
        recommender="recommender" in req,
        user_id=req.get("userId"),
        item_id=req.get("itemId"),
        num_results=req["numResults"],
        context=req["context"],
        metadata_columns=req["metadataColumns"].get("ITEMS", ()),
        filter_name=req["filterName"],
        filter_values=req["filterValues"],
        promotions=[
            Promotion(p["name"], p["percentPromotedItems"], p["filterName"], p["filterValues"])
            for p in req["promotions"]
        ],
    )
    return {"itemList": item_list(recs), "recommendationId": recs.recommendation_id}


@bp.post("/personalize-ranking")
@require_key("recommend")
def get_personalized_ranking():
    req = _RANKING_REQUEST.load(json_body())
    recs = get_campaigns().recommend(
        current_key().dataset_group,
        req["campaign"],
        user_id=req["userId"],
        num_results=len(req["inputList"]),
        candidates=req["inputList"],
        context=req["context"],
        metadata_columns=req["metadataColumns"].get("ITEMS", ()),
        filter_name=req["filterName"],
        filter_values=req["filterValues"],
    )
    return {"personalizedRanking": item_list(recs), "recommendationId": recs.recommendation_id}
