"""A real demo storefront on a loopback port, trained on a small synthetic shop, and a headless Chromium.

The shop is deterministic: 60 items in 4 categories, 40 shoppers who each favour one category, and a
demo shopper with a short history. Three recipes are trained and deployed under the campaign names
``shelfwise demo`` uses, and the public key is bound to the server's own origin.
"""

from __future__ import annotations

import random
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from engine.api import create_app
from engine.jobs.train import train
from engine.records import Interaction, Item
from engine.storage import Store

GROUP = "widget-shop"
SHOPPER = "shopper-42"
CAMPAIGNS = {
    "recommended_for_you": "recommended-for-you",
    "also_bought": "customers-also-bought",
    "best_sellers": "best-sellers",
}
CATEGORIES = {
    "Kitchen": (["Cast Iron", "Ceramic", "Copper", "Bamboo", "Steel"], ["Skillet", "Mug", "Kettle", "Board"], 12.0),
    "Outdoors": (["Trail", "Alpine", "Coastal", "Summit", "Forest"], ["Tent", "Lantern", "Backpack", "Bottle"], 25.0),
    "Audio": (["Studio", "Pocket", "Wireless", "Vintage", "Compact"], ["Headphones", "Speaker", "Turntable"], 40.0),
    "Books": (["Illustrated", "Pocket", "Collected", "Annotated", "Deluxe"], ["Atlas", "Cookbook", "Novel"], 9.0),
}
ITEMS_PER_CATEGORY = 15
START = 1_750_000_000.0


def chromium_path() -> str | None:
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shop_records() -> list:
    """Catalog and a few hundred interactions, the same every run."""
    rng = random.Random(20240611)
    records: list = []
    by_category: dict[str, list[str]] = {}
    for c, (category, (adjectives, nouns, base_price)) in enumerate(CATEGORIES.items()):
        ids = by_category[category] = []
        for n in range(ITEMS_PER_CATEGORY):
            item_id = f"p{c}{n:02d}"
            ids.append(item_id)
            title = f"{adjectives[n % len(adjectives)]} {nouns[n % len(nouns)]}"
            records.append(
                Item(
                    item_id,
                    {
                        "TITLE": title,
                        "PRODUCT_DESCRIPTION": f"A dependable {title.lower()} from our {category.lower()} range.",
                        "CATEGORY_L1": category,
                        "CATEGORY_L2": nouns[n % len(nouns)],
                        "PRICE": round(base_price + 3.5 * n + rng.random() * 2, 2),
                        "STOCK": rng.randrange(0, 40),
                    },
                )
            )
    categories = list(by_category)
    t = START
    for u in range(40):
        favourite = by_category[categories[u % len(categories)]]
        for k in range(9):
            t += 30
            pool = favourite if rng.random() < 0.85 else by_category[rng.choice(categories)]
            # The first few items of each category are the popular ones.
            item = pool[min(int(rng.expovariate(0.25)), len(pool) - 1)]
            event = "purchase" if k % 4 == 3 else "view"
            records.append(Interaction(f"u{u}", item, event, t, session_id=f"s{u}"))
    # The demo shopper likes audio, and has only looked at a few things.
    for k, item in enumerate(by_category["Audio"][:3]):
        records.append(Interaction(SHOPPER, item, "view", t + k, session_id="demo"))
    return records


@dataclass
class DemoShop:
    url: str  # http://127.0.0.1:<port>, the one origin the public key accepts
    port: int
    store: Store
    group: str
    shopper_id: str
    widget_js: Path
    public_key: str
    secret_key: str
    tracking_id: str

    def product_url(self, item_id: str) -> str:
        return f"{self.url}/demo/products/{item_id}"


@pytest.fixture(scope="module")
def demo_shop(tmp_path_factory) -> Iterator[DemoShop]:
    tmp = tmp_path_factory.mktemp("widget")
    database_url = f"sqlite:///{tmp}/shop.db"
    artifacts = tmp / "artifacts"
    store = Store(database_url)
    store.create_dataset_group(GROUP)
    store.ingest(GROUP, shop_records())
    for campaign, recipe, hyperparameters in [
        (CAMPAIGNS["recommended_for_you"], "user-personalization", {"factors": 16, "iterations": 5}),
        (CAMPAIGNS["also_bought"], "sims", None),
        (CAMPAIGNS["best_sellers"], "popularity-count", None),
    ]:
        version = train(
            store, artifacts, dataset_group=GROUP, recipe=recipe, solution=campaign, hyperparameters=hyperparameters
        )
        store.create_campaign(campaign, version.id)

    port = free_port()  # chosen first, so the public key can name the server's origin
    origin = f"http://127.0.0.1:{port}"
    public_key, _ = store.create_api_key(GROUP, "public", [origin])
    secret_key, _ = store.create_api_key(GROUP, "secret")
    demo = {
        "dataset_group": GROUP,
        "public_key": public_key,
        "tracking_id": store.create_event_tracker(GROUP, "storefront"),
        "shopper_id": SHOPPER,
        "currency": "USD",
        "campaigns": dict(CAMPAIGNS),
        # Pages served under another host name (localhost) still call the API here, as a store on
        # another domain would: that is how the origin check is exercised.
        "endpoint": origin,
    }
    app = create_app(database_url=database_url, artifact_dir=str(artifacts), extra={"demo": demo})
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="widget-demo-server", daemon=True)
    thread.start()
    try:
        yield DemoShop(
            origin,
            port,
            store,
            GROUP,
            SHOPPER,
            Path(app.root_path) / "static" / "widget.js",
            public_key,
            secret_key,
            demo["tracking_id"],
        )
    finally:
        server.shutdown()
        thread.join(5)
        store.close()


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium not found (looked for `chromium` on PATH and /usr/bin/chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser context per test (its own storage), failing fast rather than hanging."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def stored_events(store: Store, group: str, **where) -> list:
    """Interaction rows with everything stored (context and impression lists too), oldest first."""
    from sqlalchemy import select

    from engine.storage import tables as t

    group_id = store.get_dataset_group(group).id
    query = select(t.InteractionRow).where(t.InteractionRow.dataset_group_id == group_id)
    for column, value in where.items():
        query = query.where(getattr(t.InteractionRow, column) == value)
    with store.session() as s:
        rows = s.scalars(query.order_by(t.InteractionRow.id)).all()
        s.expunge_all()
    return rows
