"""Back-fills into a real store: page by page, state saved in the connection, resumed after a failure."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers

from engine.cli import main
from engine.errors import InvalidInput, NotFound
from engine.storage.store import Store
from tests.adapters import bodies
from webhooks import connections
from webhooks.backfill import run_backfill

SHOPIFY_API = "https://shop1.myshopify.com/admin/api/2024-07"
WOO_API = "https://example.com/wp-json/wc/v3"


def shopify_product(n: int, updated: str = "2024-05-02T11:00:00-04:00") -> dict[str, Any]:
    return dict(copy.deepcopy(bodies.SHOPIFY_PRODUCT), id=n, updated_at=updated)


def cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@responses.activate
def test_backfill_command_stores_each_page_and_resumes_after_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path}/bf.db"
    assert main(["dataset-group", "create", "shop1", "--db", db]) == 0
    assert (
        main(
            [
                "connect",
                "shopify",
                "--dataset-group",
                "shop1",
                "--secret",
                "s",
                "--shop",
                "shop1.myshopify.com",
                "--set",
                "access_token=shpat_1",
                "--db",
                db,
            ]
        )
        == 0
    )
    capsys.readouterr()

    page2 = f"{SHOPIFY_API}/products.json?limit=250&page_info=p2"
    responses.get(
        f"{SHOPIFY_API}/products.json",
        json={"products": [shopify_product(1), shopify_product(2)]},
        headers={"Link": f'<{page2}>; rel="next"'},
        match=[matchers.query_param_matcher({"limit": "250"})],
    )
    # Rate-limited past every retry (Retry-After 0 keeps the test fast).
    responses.get(page2, status=429, headers={"Retry-After": "0"})
    code, _, err = cli("backfill", "shopify", "--dataset-group", "shop1", "--db", db, capsys=capsys)
    assert code == 1
    assert err.strip().endswith(
        "shelfwise: error: GET https://shop1.myshopify.com/admin/api/2024-07/products.json "
        "still answered 429 after 5 retries"
    )
    store = Store(db)
    assert sorted(store.items("shop1")) == ["1", "2"]  # page 1 is stored
    _, config = store.connection("shop1", "shopify")
    assert config[connections.BACKFILL]["products"]["cursor"] == page2
    assert config["access_token"] == "shpat_1"  # the rest of the settings untouched

    responses.reset()
    responses.get(page2, json={"products": [shopify_product(3, "2024-06-01T00:00:00Z")]})
    responses.get(
        f"{SHOPIFY_API}/orders.json", json={"orders": [json.loads(bodies.shared("shopify_orders_create.json"))]}
    )
    code, out, _ = cli("backfill", "shopify", "--dataset-group", "shop1", "--db", db, "--json", capsys=capsys)
    assert code == 0
    report = json.loads(out)
    assert report["pages"] == 2 and report["ingested"]["items"] == 1 and report["ingested"]["interactions"] == 3
    assert sorted(store.items("shop1")) == ["1", "2", "3"] and store.count_interactions("shop1") == 3

    responses.reset()
    responses.get(
        f"{SHOPIFY_API}/products.json",
        json={"products": []},
        match=[matchers.query_param_matcher({"limit": "250", "updated_at_min": "2024-06-01T00:00:00Z"})],
    )
    responses.get(
        f"{SHOPIFY_API}/orders.json",
        json={"orders": []},
        match=[
            matchers.query_param_matcher(
                {"limit": "250", "status": "any", "updated_at_min": "2008-01-10T11:00:00-05:00"}
            )
        ],
    )
    code, out, _ = cli("backfill", "shopify", "--dataset-group", "shop1", "--db", db, capsys=capsys)
    assert code == 0 and out.strip() == "back-filled shop1 from shopify: nothing new (2 pages)"

    responses.reset()
    responses.get(
        f"{SHOPIFY_API}/products.json",
        json={"products": []},
        match=[matchers.query_param_matcher({"limit": "250", "updated_at_min": "2024-01-01T00:00:00+00:00"})],
    )
    responses.get(f"{SHOPIFY_API}/orders.json", json={"orders": []})
    assert main(["backfill", "shopify", "--dataset-group", "shop1", "--since", "2024-01-01", "--db", db]) == 0
    store.close()


@responses.activate
def test_woocommerce_catch_up_into_each_backend(store: Store) -> None:
    store.create_dataset_group("woo")
    store.connect(
        "woo",
        "woocommerce",
        "wc-secret",
        {"store_url": "https://example.com", "consumer_key": "ck", "consumer_secret": "cs"},
    )
    product = dict(bodies.WOO_PRODUCT, date_modified_gmt="2024-05-01T10:00:00")
    order = dict(bodies.shared_json("woocommerce_order_created.json"), date_modified_gmt="2024-05-02T10:00:00")
    responses.get(f"{WOO_API}/products", status=429, headers={"Retry-After": "5"})
    responses.get(f"{WOO_API}/products", json=[product], headers={"X-WP-TotalPages": "1"})
    responses.get(f"{WOO_API}/orders", json=[order], headers={"X-WP-TotalPages": "1"})
    sleeps: list[float] = []
    report = run_backfill(store, "woo", "woocommerce", client_options={"sleep": sleeps.append})
    assert sleeps == [5.0]
    assert report.counts == {"interactions": 2, "items": 1, "users": 0, "erasures": 0, "aliases": 0}
    assert store.items("woo")["794"].properties["TITLE"] == "Premium Quality"
    _, config = store.connection("woo", "woocommerce")
    assert config["backfill"]["orders"]["next_since"] == "2024-05-02T10:00:00"


def test_backfill_of_a_store_not_connected_or_uninstalled_is_refused(store: Store) -> None:
    store.create_dataset_group("gone")
    with pytest.raises(NotFound, match="shelfwise connect shopify"):
        run_backfill(store, "gone", "shopify")
    store.connect("gone", "shopify", "s", {"shop_domain": "x.myshopify.com", "access_token": "t"})
    connections.disable(store, "gone", "shopify")
    with pytest.raises(InvalidInput, match="disabled"):
        run_backfill(store, "gone", "shopify")
    with pytest.raises(InvalidInput, match="unknown platform"):
        run_backfill(store, "gone", "myspace")
