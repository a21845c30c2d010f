"""Exploration on simulated shoppers, through the real server.

New items get exposure in proportion to explorationWeight; those whose impressions draw no clicks
lose it, those that are clicked keep it. The shoppers' impressions and clicks go back as events,
as the widget sends them.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.api import create_app
from engine.jobs.train import train
from engine.records import Item
from engine.storage import Store
from tests.conftest import LiveServer
from tests.engine.api.conftest import Shop, catalog_events

GOOD = [f"new-good-{i}" for i in range(3)]
BAD = [f"new-bad-{i}" for i in range(3)]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explore")
    store = Store(f"sqlite:///{tmp}/explore.db")
    store.create_dataset_group("shop")
    now = time.time()
    new_items = [Item(i, {"CATEGORY_L1": "shoes"}, now) for i in GOOD + BAD]
    store.ingest("shop", [*catalog_events(), *new_items])
    version = train(
        store,
        tmp / "artifacts",
        dataset_group="shop",
        recipe="user-personalization",
        solution="up",
        hyperparameters={"factors": 8, "iterations": 10},
    )
    store.create_campaign("explore", version.id, {"explorationWeight": 0.6, "explorationItemAgeCutOff": 7})
    store.create_campaign("no-explore", version.id, {"explorationWeight": 0})
    key, _ = store.create_api_key("shop", "secret")
    tracking = store.create_event_tracker("shop", "site")
    app = create_app(
        store=store,
        database_url=store.database_url,
        artifact_dir=str(tmp / "artifacts"),
        exploration_refresh_seconds=0.0,
    )
    with LiveServer(app) as server:
        yield Shop(server.url, store, key, key, tracking)


def show(shop, campaign: str, user: str) -> list[dict]:
    r = shop.post("/v1/recommendations", {"campaign": campaign, "userId": user, "numResults": 10}, key=shop.secret_key)
    assert r.status_code == 200, r.text
    return r.json()["itemList"]


def test_without_exploration_new_items_are_not_shown(shop):
    shown = [i["itemId"] for k in range(30) for i in show(shop, "no-explore", f"u{k}")]
    assert not set(shown) & set(GOOD + BAD)


def test_exploration_exposure_follows_the_weight_and_the_clicks(shop):
    rng = np.random.default_rng(3)
    exposure = {"good": [], "bad": []}
    explored_per_list = []
    for round_ in range(120):
        user = f"u{rng.integers(0, 60)}"
        items = show(shop, "explore", user)
        ids = [i["itemId"] for i in items]
        explored_per_list.append(sum("Exploration" in i.get("reason", ()) for i in items))
        exposure["good"].append(sum(i in GOOD for i in ids))
        exposure["bad"].append(sum(i in BAD for i in ids))
        clicks = [i for i in ids if i in GOOD and rng.random() < 0.5]
        events = [{"eventType": "impression", "itemId": i, "sentAt": time.time()} for i in ids]
        events += [{"eventType": "click", "itemId": i, "sentAt": time.time()} for i in clicks]
        for start in range(0, len(events), 10):
            r = shop.post(
                "/v1/events",
                {
                    "trackingId": shop.tracking_id,
                    "userId": f"sim-{round_}",
                    "sessionId": f"sim-{round_}",
                    "eventList": events[start : start + 10],
                },
                key=shop.secret_key,
            )
            assert r.status_code == 200, r.text
    # explorationWeight 0.6 gives up to 30% of a 10-item list to exploration.
    assert 2.0 <= np.mean(explored_per_list) <= 4.0
    early_good, early_bad = sum(exposure["good"][:30]), sum(exposure["bad"][:30])
    late_good, late_bad = sum(exposure["good"][-40:]), sum(exposure["bad"][-40:])
    assert early_bad > 0 and early_good > 0  # every new item gets its chance
    assert late_bad * 3 <= late_good  # ignored items lose their exposure, clicked ones keep it


def test_a_bad_exploration_setting_is_refused(shop):
    version = shop.store.get_campaign("shop", "explore").solution_version_id
    shop.store.create_campaign("bad-explore", version, {"explorationWeight": 3})
    r = shop.post("/v1/recommendations", {"campaign": "bad-explore", "userId": "u1"}, key=shop.secret_key)
    assert r.status_code == 400 and "explorationWeight" in r.json()["error"]["message"]
