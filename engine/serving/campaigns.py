"""Campaigns: loaded models answering requests, with the user's live events folded in.

Each request reads the user's latest events from the store, so an event written by any worker
shows in the next answer of every worker. Models are cached per process and reloaded when the
campaign points at a new solution version (a model swap drops no request: the old model answers
until the new one is loaded).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidInput
from engine.recipes import Query, Ranked, Recipe, recipe_class
from engine.storage import CampaignInfo, Store

MAX_RESULTS = 500


@dataclass(frozen=True)
class RecommendedItem:
    item_id: str
    score: float | None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Recommendations:
    items: tuple[RecommendedItem, ...]
    recommendation_id: str


def new_recommendation_id() -> str:
    return f"RID-{uuid.uuid4()}"


def camel_case(column: str) -> str:
    """CATEGORY_L1 → categoryL1, as Personalize names metadata columns in its answers."""
    head, *rest = column.lower().split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class CampaignService:
    def __init__(self, store: Store, *, live_history_limit: int = 500) -> None:
        self.store = store
        self.live_history_limit = live_history_limit
        self._models: dict[tuple[str, str], tuple[str, Recipe]] = {}
        self._lock = threading.Lock()

    def model(self, campaign: CampaignInfo) -> Recipe:
        key = (campaign.dataset_group, campaign.name)
        cached = self._models.get(key)
        if cached is not None and cached[0] == campaign.solution_version_id:
            return cached[1]
        with self._lock:
            cached = self._models.get(key)
            if cached is None or cached[0] != campaign.solution_version_id:
                model = recipe_class(campaign.recipe).load(campaign.artifact_path)
                self._models[key] = (campaign.solution_version_id, model)
            return self._models[key][1]

    def recommend(
        self,
        dataset_group: str,
        campaign_name: str,
        *,
        user_id: str | None = None,
        item_id: str | None = None,
        num_results: int = 25,
        candidates: Sequence[str] | None = None,
        context: Mapping[str, str] | None = None,
        metadata_columns: Sequence[str] = (),
    ) -> Recommendations:
        if not 0 <= num_results <= MAX_RESULTS:
            raise InvalidInput(f"numResults must be between 0 and {MAX_RESULTS}")
        campaign = self.store.get_campaign(dataset_group, campaign_name)
        model = self.model(campaign)
        if model.recipe_type == "USER_PERSONALIZATION" and not user_id and candidates is None:
            raise InvalidInput(f"campaign {campaign_name!r} ({campaign.recipe}) needs a userId")
        if model.recipe_type == "RELATED_ITEMS" and not item_id and not user_id:
            raise InvalidInput(f"campaign {campaign_name!r} ({campaign.recipe}) needs an itemId")

        history = tuple(self.store.latest_events(dataset_group, user_id, self.live_history_limit)) if user_id else ()
        exclude: set[str] = set()
        if campaign.config.get("excludeInteracted", True) and candidates is None:
            # By default shoppers are shown what they have not interacted with yet.
            exclude.update(e.item_id for e in history)
        if item_id:
            exclude.add(item_id)
        ranked: Ranked = model.recommend(
            Query(
                user_id=user_id,
                item_id=item_id,
                history=history,
                num_results=num_results,
                exclude=frozenset(exclude),
                candidates=tuple(candidates) if candidates is not None else None,
                context=dict(context or {}),
            )
        )
        metadata = self._metadata(dataset_group, ranked.item_ids, metadata_columns)
        items = tuple(
            RecommendedItem(
                item_id=i,
                score=None if s != s else round(float(s), 7),  # NaN: the model has no score for it
                metadata=metadata.get(i) if metadata_columns else None,
            )
            for i, s in zip(ranked.item_ids, ranked.scores, strict=True)
        )
        return Recommendations(items=items, recommendation_id=new_recommendation_id())

    def _metadata(
        self, dataset_group: str, item_ids: Sequence[str], columns: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        if not columns or not item_ids:
            return {}
        catalog = self.store.items(dataset_group, item_ids)
        out: dict[str, dict[str, Any]] = {}
        for item_id in item_ids:
            props = catalog[item_id].properties if item_id in catalog else {}
            upper = {k.upper(): v for k, v in props.items()}
            out[item_id] = {camel_case(c): upper[c.upper()] for c in columns if c.upper() in upper}
        return out
