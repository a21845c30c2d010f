"""Campaigns: loaded models answering requests, with the user's live events folded in, filters
applied and promotions placed.

Each request reads the user's latest events from the store, so an event written by any worker
shows in the next answer of every worker. Models are cached per process and reloaded when the
campaign points at a new solution version (a model swap drops no request: the old model answers
until the new one is loaded).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from engine.errors import InvalidInput
from engine.expiring import Expiring
from engine.recipes import Query, Ranked, Recipe, recipe_class
from engine.records import Interaction
from engine.serving.exploration import ExplorationConfig, ExplorationService
from engine.serving.filters import FilterService
from engine.serving.filters_eval import FilterDecision
from engine.serving.promotions import Promotion, check_promotions, place_promoted, promoted_count
from engine.serving.trends import ActivityService
from engine.serving.user_events import UserEvents
from engine.storage import CampaignInfo, Store

MAX_RESULTS = 500
#: Campaign config key switching a campaign to the approximate candidate index.
APPROXIMATE_SETTING = "approximateCandidates"


@dataclass(frozen=True)
class RecommendedItem:
    item_id: str
    score: float | None
    metadata: dict[str, Any] | None = None
    #: Set on items a promotion placed in the list.
    promotion_name: str | None = None
    #: Why an item is there when it is not the model's own pick ("Exploration"), as Personalize's
    #: ``reason`` field says.
    reason: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recommendations:
    items: tuple[RecommendedItem, ...]
    recommendation_id: str


def new_recommendation_id() -> str:
    return f"RID-{uuid.uuid4()}"


def check_metadata_columns(schema: Mapping[str, Any] | None, columns: Sequence[str]) -> None:
    """metadataColumns must name fields of the Items schema, as Personalize requires; a typo is an
    error rather than a silently missing key. Without an Items schema (items sent with no schema)
    there is nothing to check against, and items simply carry the columns they have."""
    if not schema:
        return
    known = [str(f["name"]) for f in schema.get("fields", []) if isinstance(f, dict) and f.get("name")]
    upper = {k.upper() for k in known}
    unknown = [c for c in columns if c.upper() not in upper]
    if unknown:
        raise InvalidInput(
            f"metadataColumns: the Items schema has no column {', '.join(map(repr, unknown))} "
            f"(its columns: {', '.join(known)})"
        )


def camel_case(column: str) -> str:
    """CATEGORY_L1 → categoryL1, as Personalize names metadata columns in its answers."""
    head, *rest = column.lower().split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class CampaignService:
    def __init__(
        self,
        store: Store,
        *,
        live_history_limit: int = 500,
        filters: FilterService | None = None,
        exploration_refresh_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.live_history_limit = live_history_limit
        self.filters = filters or FilterService(store)
        self.exploration = ExplorationService(store, ttl_s=exploration_refresh_seconds)
        #: Recent catalogue-wide counts for recipes that ask (trending-now), cached a minute.
        self.activity = ActivityService(store)
        self._models: dict[tuple[str, str], tuple[str, Recipe]] = {}
        self._campaigns: Expiring[tuple[str, str], CampaignInfo] = Expiring(self.CAMPAIGN_CACHE_SECONDS)
        self._schemas: Expiring[str, Mapping[str, Any] | None] = Expiring(self.CAMPAIGN_CACHE_SECONDS)
        self._lock = threading.Lock()

    #: How long a campaign's deployment (which solution version it serves) is trusted before it is
    #: read again: a model swap reaches every worker within this time, without a query per request.
    CAMPAIGN_CACHE_SECONDS = 1.0

    def campaign(self, dataset_group: str, name: str, *, recommender: bool = False) -> CampaignInfo:
        """The deployment answering for a campaign, or for a recommender (``recommender=True``)."""
        if recommender:
            from engine.serving.recommenders import recommender_deployment

            return self._campaigns.get(
                (dataset_group, f"recommender/{name}"), lambda: recommender_deployment(self.store, dataset_group, name)
            )
        return self._campaigns.get((dataset_group, name), lambda: self.store.get_campaign(dataset_group, name))

    def _items_schema(self, dataset_group: str) -> Mapping[str, Any] | None:
        """The Items schema, read at most once a second (widgets ask for metadata on every request)."""
        return self._schemas.get(dataset_group, lambda: self.store.get_schema(dataset_group, "ITEMS"))

    def model(self, campaign: CampaignInfo) -> Recipe:
        key = (campaign.dataset_group, campaign.name)
        # A campaign's approximateCandidates setting is part of what its loaded model is.
        version = (campaign.solution_version_id, repr(campaign.config.get(APPROXIMATE_SETTING)))
        cached = self._models.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        with self._lock:
            cached = self._models.get(key)
            if cached is None or cached[0] != version:
                model = recipe_class(campaign.recipe).load(campaign.artifact_path)
                model.warm()
                self._approximate(campaign, model)
                self._models[key] = (version, model)
            return self._models[key][1]

    @staticmethod
    def _approximate(campaign: CampaignInfo, model: Recipe) -> None:
        """Campaign config ``approximateCandidates`` (off by default): a user-personalization model
        of the ALS family scores only the best clusters' items (engine/recipes/up_candidates.py).
        The index is built here, with the model, before it answers any request."""
        value = campaign.config.get(APPROXIMATE_SETTING)
        if value is None or value is False:
            return
        choice = getattr(model, "choice", None)
        factors = getattr(model, "item_factors", None)
        if choice is None or choice.family != "als" or factors is None or factors.ndim != 2:
            return  # nothing catalog-sized to approximate (EASE, other recipes): exact as always
        from engine.recipes.up_candidates import CandidateSettings, use_candidate_index

        use_candidate_index(model, CandidateSettings.from_config(value, len(factors)))

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
        filter_name: str | None = None,
        filter_values: Mapping[str, str] | None = None,
        promotions: Sequence[Promotion] = (),
        recommender: bool = False,
    ) -> Recommendations:
        """Recommend (or, with ``candidates``, re-rank) for one request.

        Stages, in order: the shopper's latest events are read and folded in by the recipe; the
        campaign's own exclusions and the request's filter become the recipe's ``Query.exclude``;
        a promotion takes its share of the list from its own filter (the request's filter does not
        apply to promoted items, nor the promotion's to the others, as in Personalize).
        """
        if not 0 <= num_results <= MAX_RESULTS:
            raise InvalidInput(f"numResults must be between 0 and {MAX_RESULTS}")
        check_promotions(promotions)
        campaign = self.campaign(dataset_group, campaign_name, recommender=recommender)
        model = self.model(campaign)
        if metadata_columns:
            check_metadata_columns(self._items_schema(dataset_group), metadata_columns)
        if model.recipe_type == "USER_PERSONALIZATION" and not user_id and candidates is None:
            raise InvalidInput(f"campaign {campaign_name!r} ({campaign.recipe}) needs a userId")
        if model.recipe_type == "RELATED_ITEMS" and not item_id and not user_id:
            raise InvalidInput(f"campaign {campaign_name!r} ({campaign.recipe}) needs an itemId")
        if promotions and candidates is not None:
            raise InvalidInput("promotions apply to recommendations, not to re-ranking a given list")

        # Decide every filter before ranking anything, so bad filterValues fail the request whole.
        events = UserEvents(self.store, dataset_group, user_id, self.live_history_limit)
        decide = partial(
            self.filters.decide, dataset_group, user_id=user_id, item_id=item_id, history_pairs=events.item_event_types
        )
        decision = decide(filter_name, filter_values)
        promotion_decisions = [
            (p, decide(p.filter_name, p.filter_values, where=f"promotions[{n}].filterValues"))
            for n, p in enumerate(promotions)
        ]

        excluded_items: set[str] = set()
        if campaign.config.get("excludeEventTypes") and user_id:
            # A use case's rule ("never what the shopper bought") holds over the whole history.
            excluded_types = {e.lower() for e in campaign.config["excludeEventTypes"]}
            excluded_items = {i for i, event_type in events.item_event_types() if event_type.lower() in excluded_types}
        history = events.latest()
        exclude = self._campaign_exclusions(campaign, model, history, item_id, candidates) | excluded_items
        query = Query(
            user_id=user_id,
            item_id=item_id,
            history=history,
            num_results=num_results,
            context=dict(context or {}),
        )
        query = self.activity.attach(dataset_group, model, query)
        recommendation_id = new_recommendation_id()
        exploring: set[str] = set()
        if candidates is not None:
            kept = tuple(c for c in candidates if decision.allows(c))
            ranked = model.recommend(replace(query, candidates=kept, num_results=len(kept)))
            entries = [(i, s, None) for i, s in zip(ranked.item_ids, ranked.scores, strict=True)]
        else:
            promoted: list[tuple[str, float, str | None]] = []
            for promotion, promotion_decision in promotion_decisions:
                count = promoted_count(num_results, promotion.percent_promoted_items)
                ranked = self._ranked(model, query, exclude, promotion_decision, count)
                promoted += [(i, s, promotion.name) for i, s in zip(ranked.item_ids, ranked.scores, strict=True)]
            taken = exclude | {i for i, _, _ in promoted}
            ranked = self._ranked(model, query, taken, decision, num_results - len(promoted))
            regular = [(i, s, None) for i, s in zip(ranked.item_ids, ranked.scores, strict=True)]
            explored = self._explore(campaign, model, query, taken, decision, regular, recommendation_id)
            if explored:
                exploring.update(i for i, _, _ in explored)
                regular = place_promoted(regular[: len(regular) - len(explored)], explored, recommendation_id + "/x")
            entries = place_promoted(regular, promoted, recommendation_id) if promoted else regular

        item_ids = [i for i, _, _ in entries]
        metadata = self._metadata(dataset_group, item_ids, metadata_columns)
        items = tuple(
            RecommendedItem(
                item_id=i,
                score=None if s != s else round(float(s), 7),  # NaN: the model has no score for it
                metadata=metadata.get(i) if metadata_columns else None,
                promotion_name=promotion,
                reason=("Exploration",) if i in exploring else (),
            )
            for i, s, promotion in entries
        )
        return Recommendations(items=items, recommendation_id=recommendation_id)

    @staticmethod
    def _campaign_exclusions(
        campaign: CampaignInfo,
        model: Recipe,
        history: Sequence[Interaction],
        item_id: str | None,
        candidates: Sequence[str] | None,
    ) -> frozenset[str]:
        """What the campaign itself leaves out, before any filter: the item asked about, and the
        shopper's past items as the recipe decides (user-personalization learns whether people come
        back to items). Campaign config ``excludeInteracted`` overrides: true leaves out everything
        the shopper interacted with, false nothing."""
        exclude: set[str] = set()
        if candidates is None:
            setting = campaign.config.get("excludeInteracted")
            if setting is None:
                exclude |= model.default_exclusions(history)
            elif setting:
                exclude.update(e.item_id for e in history)
        if item_id:
            exclude.add(item_id)
        return frozenset(exclude)

    def _explore(
        self,
        campaign: CampaignInfo,
        model: Recipe,
        query: Query,
        taken: frozenset[str],
        decision: FilterDecision,
        regular: list[tuple[str, float, str | None]],
        recommendation_id: str,
    ) -> list[tuple[str, float, None]]:
        """Exploration picks for a user-personalization list (engine/serving/exploration.py)."""
        if model.recipe_type != "USER_PERSONALIZATION" or not regular:
            return []
        config = ExplorationConfig.from_campaign(campaign.config)
        if config.weight == 0:
            return []  # no slots at all (and no statistics to read)
        pool = self.exploration.candidates(campaign.dataset_group, config, model.item_ids)
        if not pool.ids:
            return []  # nothing to explore: no need for this list's random draws
        rng = np.random.default_rng(list(recommendation_id.encode()))
        slots = config.slots(len(regular), rng)
        if slots == 0:
            return []
        ruled_out = taken.union(i for i, _, _ in regular)
        chosen = self.exploration.choose(pool, ruled_out, decision, slots, rng)
        if not chosen:
            return []
        scored = model.recommend(replace(query, candidates=tuple(chosen), num_results=len(chosen)))
        score = dict(zip(scored.item_ids, scored.scores, strict=True))
        return [(c, score.get(c, float("nan")), None) for c in chosen]

    @staticmethod
    def _ranked(model: Recipe, query: Query, exclude: frozenset[str], decision: FilterDecision, n: int) -> Ranked:
        """The recipe's top ``n`` among what ``decision`` allows and ``exclude`` does not hold."""
        if n <= 0:
            return Ranked((), ())
        if not decision.restricts:
            ruled_out = exclude
        elif decision.names_all_it_rules_out:
            # Ids the model does not know may be among them: recipes skip unknown ids in exclude.
            ruled_out = exclude.union(decision.exclude.tolist())
        else:
            ruled_out = exclude.union(decision.excluded_from(model.item_ids))
        ranked = model.recommend(replace(query, exclude=frozenset(ruled_out), num_results=n))
        # A recipe only ranks what it knows, and every id it knows was ruled on above; this guards
        # recipes that add items from elsewhere (exploration of new items).
        kept = [
            (i, s)
            for i, s in zip(ranked.item_ids, ranked.scores, strict=True)
            if i not in ruled_out and decision.allows(i)
        ][:n]
        return Ranked(tuple(i for i, _ in kept), tuple(s for _, s in kept))

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
