"""trending-now at request time: the serving layer counts recent events for the recipe."""

from __future__ import annotations

import time

from engine.jobs.train import train
from engine.recipes.activity import ActivityRequest
from engine.records import Interaction
from engine.serving.campaigns import CampaignService
from engine.serving.trends import count_recent

HOUR = 3600.0
NOW = 1_700_000_000.0


def views(item: str, n: int, at: float, event_type: str = "view") -> list[Interaction]:
    return [Interaction(f"{item}-fan{k}", item, event_type, at - k) for k in range(n)]


def test_recent_counts_per_item_and_window(store):
    store.create_dataset_group("g")
    store.ingest(
        "g",
        views("a", 3, NOW - 10)  # latest hour
        + views("a", 1, NOW - HOUR - 10)  # the hour before
        + views("b", 2, NOW - 2 * HOUR - 10, event_type="Purchase")
        + views("b", 5, NOW - 3 * HOUR - 10)  # too old for three windows
        + views("c", 4, NOW - 10, event_type="impression")  # not an interaction
        + views("d", 1, NOW + 60),  # after "now"
    )
    found = count_recent(store, "g", ActivityRequest(HOUR, 3), now=NOW)
    assert found.item_ids.tolist() == ["a", "b"]
    assert found.counts.tolist() == [[3, 1, 0], [0, 0, 2]]
    purchases = count_recent(store, "g", ActivityRequest(HOUR, 3, ("purchase",)), now=NOW)
    assert purchases.item_ids.tolist() == ["b"] and purchases.counts.tolist() == [[0, 0, 2]]
    nothing = count_recent(store, "g", ActivityRequest(HOUR, 3), now=NOW + 30 * 24 * HOUR)
    assert len(nothing.item_ids) == 0 and nothing.counts.shape == (0, 3)


def test_a_trending_campaign_follows_new_events_without_retraining(sqlite_store, tmp_path):
    store = sqlite_store
    store.create_dataset_group("shop")
    now = time.time()
    trained_at = now - 2 * 24 * HOUR  # the last training saw "old-hit" rising two days ago
    store.ingest("shop", views("old-hit", 20, trained_at) + views("old-hit", 2, trained_at - 4 * HOUR))
    store.ingest("shop", views("steady", 5, trained_at) + views("steady", 5, trained_at - 4 * HOUR))
    version = train(store, tmp_path, dataset_group="shop", recipe="trending-now", solution="trending")
    store.create_campaign("trending", version.id)
    before = CampaignService(store)

    # Nothing in the live windows yet: the trend as of the training data.
    assert [i.item_id for i in before.recommend("shop", "trending", num_results=2).items] == ["old-hit", "steady"]

    # A product that did not exist at training time takes off now.
    store.ingest("shop", views("new-hit", 12, now - 60))
    after = CampaignService(store).recommend("shop", "trending", num_results=2).items
    assert after[0].item_id == "new-hit" and after[0].score == 12.0
    # Counts are shared for a minute: the first service still answers from its cached count.
    assert before.recommend("shop", "trending", num_results=1).items[0].item_id == "old-hit"
