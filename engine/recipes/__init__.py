"""Recipes (the algorithms) and their one registry."""

from __future__ import annotations

from engine.errors import InvalidInput
from engine.recipes.base import Query, Ranked, Recipe, TrainingData
from engine.recipes.item_affinity import ItemAffinity
from engine.recipes.item_attribute_affinity import ItemAttributeAffinity
from engine.recipes.personalized_ranking import PersonalizedRanking
from engine.recipes.popularity import PopularityCount
from engine.recipes.similar_items import SimilarItems
from engine.recipes.sims import Sims
from engine.recipes.trending_now import TrendingNow
from engine.recipes.user_personalization import UserPersonalization

#: The registry: Personalize's recipe names. Adding a recipe = one module + one line + its test.
RECIPES: dict[str, type[Recipe]] = {
    cls.name: cls
    for cls in (
        PopularityCount,
        UserPersonalization,
        Sims,
        PersonalizedRanking,
        SimilarItems,
        TrendingNow,
        ItemAffinity,
        ItemAttributeAffinity,
    )
}

_ARN_PREFIX = "arn:aws:personalize:::recipe/aws-"


def recipe_class(name: str) -> type[Recipe]:
    """Look a recipe up by its name or its Personalize ARN (``arn:aws:personalize:::recipe/aws-sims``)."""
    key = name.removeprefix(_ARN_PREFIX)
    try:
        return RECIPES[key]
    except KeyError:
        raise InvalidInput(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}") from None


__all__ = ["RECIPES", "Query", "Ranked", "Recipe", "TrainingData", "recipe_class"]
