from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests

from engine.api import create_app
from engine.jobs.train import train
from engine.records import Interaction, Item
from engine.storage import Store
from tests.conftest import LiveServer


@dataclass
class Shop:
    url: str
    store: Store
    public_key: str
    secret_key: str
    tracking_id: str

    def post(self, path: str, body, *, key: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return requests.post(self.url + path, json=body, headers=headers, timeout=10, **kwargs)


def catalog_events() -> list:
    """Shoes shoppers and kitchen shoppers, with a clear co-purchase pair (boots ↔ socks)."""
    records: list = [
        Item(f"shoe{i}", {"TITLE": f"Shoe {i}", "PRICE": 50.0 + i, "CATEGORY_L1": "shoes"}) for i in range(10)
    ]
    records += [Item(f"pan{i}", {"TITLE": f"Pan {i}", "PRICE": 20.0 + i, "CATEGORY_L1": "kitchen"}) for i in range(10)]
    t = 1_700_000_000
    for u in range(60):
        kind = "shoe" if u % 2 == 0 else "pan"
        for k in range(8):
            t += 60
            records.append(Interaction(f"u{u}", f"{kind}{(u + k * 3) % 10}", "view", t, session_id=f"s{u}"))
        records.append(Interaction(f"u{u}", f"{kind}0", "purchase", t + 1, session_id=f"s{u}"))
        records.append(Interaction(f"u{u}", f"{kind}1", "purchase", t + 2, session_id=f"s{u}"))
    return records


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    store = Store(f"sqlite:///{tmp}/api.db")
    store.create_dataset_group("shop")
    store.create_dataset_group("other-shop")
    store.ingest("shop", catalog_events())
    fast = {"factors": 8, "iterations": 10}
    for campaign, recipe, hp in [
        ("for-you", "user-personalization", fast),
        ("also-bought", "sims", {}),
        ("best-sellers", "popularity-count", {"event_types": ["purchase"]}),
    ]:
        version = train(
            store, tmp / "artifacts", dataset_group="shop", recipe=recipe, solution=campaign, hyperparameters=hp
        )
        store.create_campaign(campaign, version.id)
        if campaign == "for-you":
            store.create_campaign("for-you-unseen", version.id, {"excludeInteracted": True})
    public_key, _ = store.create_api_key("shop", "public", ["https://shop.example"])
    secret_key, _ = store.create_api_key("shop", "secret")
    tracking_id = store.create_event_tracker("shop", "site")
    app = create_app(store=store, database_url=store.database_url, artifact_dir=str(tmp / "artifacts"))
    with LiveServer(app) as server:
        yield Shop(server.url, store, public_key, secret_key, tracking_id)
    store.close()
