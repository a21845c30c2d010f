"""personalized-ranking: re-rank a list the caller supplies (search results, a category page) for
one shopper, with the same model as user-personalization.

It is user-personalization with a different question: the shopper's events are folded in the
same way and the given items scored with the same factors; items the model never saw go last,
unscored, as Personalize's GetPersonalizedRanking does. Asked without a list it refuses, as
Personalize does for a ranking campaign asked for recommendations.
"""

from __future__ import annotations

from dataclasses import replace

from engine.errors import InvalidInput
from engine.recipes.base import Query, Ranked
from engine.recipes.user_personalization import UserPersonalization


class PersonalizedRanking(UserPersonalization):
    name = "personalized-ranking"
    recipe_type = "PERSONALIZED_RANKING"

    def recommend(self, query: Query) -> Ranked:
        if query.candidates is None:
            raise InvalidInput(f"{self.name} re-ranks a given list: the request needs the items to rank (inputList)")
        # Filters and exclusions remove items from the list; a repeated item is ranked once.
        kept = tuple(c for c in dict.fromkeys(query.candidates) if c not in query.exclude)
        ranked = super().recommend(replace(query, candidates=kept, exclude=frozenset()))
        n = max(0, query.num_results)
        return Ranked(ranked.item_ids[:n], ranked.scores[:n])
