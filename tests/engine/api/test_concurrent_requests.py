"""Concurrent GetRecommendations through the real HTTP server: requests of one process share
passes over the item factors (engine/recipes/up_request.py, SharedProducts) and answer exactly as
they do one by one."""

from __future__ import annotations

import threading
import time

import requests
from threadpoolctl import threadpool_limits

from engine.api import create_app
from engine.recipes import up_request
from tests.conftest import LiveServer


def test_concurrent_requests_answer_as_they_do_one_by_one(shop, tmp_path, monkeypatch):
    version = shop.store.get_campaign("shop", "for-you").solution_version_id
    if "for-you-steady" not in {c.name for c in shop.store.list_campaigns("shop")}:
        # No exploration: its picks are drawn per recommendation id, so lists would differ by design.
        shop.store.create_campaign("for-you-steady", version, {"explorationWeight": "0"})
    monkeypatch.setattr(up_request, "SHARED_BLOCK", 4)  # several blocks even in this small catalog
    users = [f"u{k}" for k in range(24)]
    with threadpool_limits(1, "blas"):  # as the server runs BLAS; passes are shared only then
        app = create_app(store=shop.store, database_url=shop.store.database_url, artifact_dir=str(tmp_path))
        with LiveServer(app) as server:

            def ask(user: str) -> list[tuple[str, float]]:
                r = requests.post(
                    server.url + "/v1/recommendations",
                    json={"campaign": "for-you-steady", "userId": user, "numResults": 10},
                    headers={"Authorization": f"Bearer {shop.secret_key}"},
                    timeout=30,
                )
                assert r.status_code == 200, r.text
                return [(i["itemId"], i["score"]) for i in r.json()["itemList"]]

            one_by_one = {user: ask(user) for user in users}
            # A pass over this catalog takes microseconds; held a little, requests arrive during it.
            compute = up_request.SharedProducts._compute

            def held(self, batch) -> None:
                time.sleep(0.01)
                compute(self, batch)

            monkeypatch.setattr(up_request.SharedProducts, "_compute", held)
            together: dict[str, list[tuple[str, float]]] = {}
            barrier = threading.Barrier(len(users))

            def run(user: str) -> None:
                barrier.wait()
                together[user] = ask(user)

            threads = [threading.Thread(target=run, args=(u,)) for u in users]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            campaigns = app.extensions["shelfwise.campaigns"]
            model = campaigns.model(campaigns.campaign("shop", "for-you-steady"))
            products = up_request.request_index(model).products
    assert together == one_by_one
    assert all(len(answer) == 10 for answer in one_by_one.values())
    # Every request's product went through the shared passes.
    assert products is not None and products.products == 2 * len(users)
    # ... and requests that arrived together shared passes.
    assert products.passes < products.products
