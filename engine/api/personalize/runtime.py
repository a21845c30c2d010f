"""personalize-runtime (rest-json): GetRecommendations and GetPersonalizedRanking."""

from __future__ import annotations

from flask import Blueprint, g

from engine.api.app import get_campaigns
from engine.api.recommendations import item_list
from engine.errors import InvalidInput
from engine.serving.promotions import Promotion

from .schemas import GetPersonalizedRanking, GetRecommendations
from .wire import install_error_handlers, json_body, name_from_arn, signed

bp = Blueprint("personalize_runtime", __name__)

#: Built once: a schema is reusable, and building one per request cost as much as loading.
_GET_RECOMMENDATIONS = GetRecommendations()
_GET_PERSONALIZED_RANKING = GetPersonalizedRanking()
install_error_handlers(bp)


def _metadata_columns(req: dict) -> list[str]:
    return list((req.get("metadataColumns") or {}).get("ITEMS", ()))


def _filter(req: dict) -> str | None:
    return name_from_arn(req["filterArn"], "filter") if req.get("filterArn") else None


def _promotions(req: dict) -> list[Promotion]:
    promotions = []
    for p in req.get("promotions") or ():
        if not p.get("name") or not p.get("percentPromotedItems") or not p.get("filterArn"):
            raise InvalidInput("A promotion needs a name, percentPromotedItems and a filterArn")
        promotions.append(
            Promotion(p["name"], p["percentPromotedItems"], _filter(p), dict(p.get("filterValues") or {}))
        )
    return promotions


@bp.post("/recommendations")
@signed
def get_recommendations():
    req = _GET_RECOMMENDATIONS.load(json_body())
    if bool(req.get("campaignArn")) == bool(req.get("recommenderArn")):
        raise InvalidInput("Provide exactly one of campaignArn and recommenderArn")
    recommender = bool(req.get("recommenderArn"))
    name = name_from_arn(req["recommenderArn"], "recommender") if recommender else None
    columns = _metadata_columns(req)
    if columns and req["numResults"] > 50:
        raise InvalidInput("numResults can be at most 50 when metadataColumns are requested")
    recs = get_campaigns().recommend(
        g.dataset_group,
        name or name_from_arn(req["campaignArn"], "campaign"),
        recommender=recommender,
        user_id=req.get("userId"),
        item_id=req.get("itemId"),
        num_results=req["numResults"],
        context=req.get("context"),
        metadata_columns=columns,
        filter_name=_filter(req),
        filter_values=req.get("filterValues"),
        promotions=_promotions(req),
    )
    return {"itemList": item_list(recs), "recommendationId": recs.recommendation_id}


@bp.post("/personalize-ranking")
@signed
def get_personalized_ranking():
    req = _GET_PERSONALIZED_RANKING.load(json_body())
    columns = _metadata_columns(req)
    if columns and len(req["inputList"]) > 50:
        raise InvalidInput("inputList can hold at most 50 items when metadataColumns are requested")
    recs = get_campaigns().recommend(
        g.dataset_group,
        name_from_arn(req["campaignArn"], "campaign"),
        user_id=req["userId"],
        num_results=len(req["inputList"]),
        candidates=req["inputList"],
        context=req.get("context"),
        metadata_columns=columns,
        filter_name=_filter(req),
        filter_values=req.get("filterValues"),
    )
    return {"personalizedRanking": item_list(recs), "recommendationId": recs.recommendation_id}
