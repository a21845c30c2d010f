"""The demo storefront's server-rendered pages, without a browser: markup, escaping, the widget contract."""

from __future__ import annotations

import re

import pytest

from engine.api import create_app
from engine.records import Item
from engine.storage import Store

DEMO = {
    "dataset_group": "pages",
    "public_key": "pk_demo.secretish",
    "tracking_id": "tracker-1",
    "shopper_id": "shopper-7",
    "currency": "USD",
    "campaigns": {
        "recommended_for_you": "recommended-for-you",
        "also_bought": "customers-also-bought",
        "best_sellers": "best-sellers",
    },
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pages")
    store = Store(f"sqlite:///{tmp}/pages.db")
    store.create_dataset_group("pages")
    store.ingest(
        "pages",
        [
            Item(
                "lamp",
                {
                    "TITLE": "Desk Lamp",
                    "CATEGORY_L1": "Home",
                    "CATEGORY_L2": "Lighting",
                    "PRICE": 1234.5,
                    "STOCK": 3,
                    "PRODUCT_DESCRIPTION": "Warm light.",
                },
            ),
            Item("evil", {"TITLE": '<script>alert("x")</script>', "CATEGORY_L1": "Home", "PRICE": 5, "STOCK": 0}),
            Item("bare", {}),
        ],
    )
    app = create_app(store=store, database_url=store.database_url, extra={"demo": DEMO})
    yield app.test_client()
    store.close()


def widgets(html: str) -> list[dict[str, str]]:
    tags = re.findall(r"<div data-shelfwise-widget[^>]*>", html)
    return [dict(re.findall(r'(data-[\w-]+)="([^"]*)"', tag)) for tag in tags]


def test_home_lists_products_and_places_two_widgets(client):
    response = client.get("/demo/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Shelfwise" in html and "Demo Store" in html
    assert "You are shopping as <strong>shopper-7</strong>" in html
    assert 'href="/demo/products/lamp"' in html and "$1,234.50" in html
    assert [w["data-recommender"] for w in widgets(html)] == ["recommended-for-you", "best-sellers"]
    assert all(w["data-product-url"] == "/demo/products/{itemId}" for w in widgets(html))
    assert [w["data-layout"] for w in widgets(html)] == ["carousel", "grid"]


def test_product_page_places_both_carousels_and_the_script_tag(client):
    html = client.get("/demo/products/lamp").get_data(as_text=True)
    assert "<h1>Desk Lamp</h1>" in html and "In stock: 3" in html and "Warm light." in html
    found = widgets(html)
    assert [w["data-recommender"] for w in found] == ["recommended-for-you", "customers-also-bought"]
    assert "data-item-id" not in found[0]
    assert found[1]["data-item-id"] == "lamp"
    assert [w["data-layout"] for w in found] == ["carousel", "grid"]
    assert [w["data-widget-name"] for w in found] == ["product-for-you", "product-also-bought"]
    script = re.search(r"<script src=\"/widget.js\"[^>]*>", html)
    assert script, "without an endpoint in the config the widget comes from this server"
    tag = script.group(0)
    assert 'data-shelfwise-key="pk_demo.secretish"' in tag
    assert 'data-shelfwise-tracking-id="tracker-1"' in tag
    assert 'data-shelfwise-user-id="shopper-7"' in tag
    assert "data-shelfwise-endpoint" not in tag


def test_catalog_text_is_escaped(client):
    for path in ("/demo/", "/demo/products/evil"):
        html = client.get(path).get_data(as_text=True)
        assert '<script>alert("x")</script>' not in html
        assert "&lt;script&gt;alert(" in html
    assert "Out of stock" in client.get("/demo/products/evil").get_data(as_text=True)


def test_a_product_without_properties_still_renders(client):
    response = client.get("/demo/products/bare")
    assert response.status_code == 200
    assert "<h1>bare</h1>" in response.get_data(as_text=True)


def test_unknown_product_is_404(client):
    assert client.get("/demo/products/nope").status_code == 404


def test_cart_records_add_to_cart_and_purchase_and_shows_bought_together(client):
    store = client.application.extensions["shelfwise.store"]
    empty = client.get("/demo/cart").get_data(as_text=True)
    assert "Your cart is empty." in empty
    assert [w["data-recommender"] for w in widgets(empty)] == ["best-sellers"]

    response = client.post(
        "/demo/cart", data={"item_id": "lamp", "csrf_token": form_token(client, "/demo/products/lamp")}
    )
    assert response.status_code == 303 and response.headers["Location"].endswith("/demo/cart")
    html = client.get("/demo/cart").get_data(as_text=True)
    assert "Desk Lamp" in html and "Cart (1)" in html
    found = widgets(html)
    assert [(w["data-recommender"], w.get("data-item-id"), w["data-placement"]) for w in found] == [
        ("customers-also-bought", "lamp", "cart"),
        ("best-sellers", None, "cart"),
    ]

    assert client.post("/demo/checkout", data={"csrf_token": form_token(client, "/demo/cart")}).status_code == 303
    assert "Your cart is empty." in client.get("/demo/cart").get_data(as_text=True)
    events = [(e.item_id, e.event_type) for e in store.latest_events("pages", "shopper-7")]
    assert events[-2:] == [("lamp", "add-to-cart"), ("lamp", "purchase")]
    assert client.post("/demo/cart", data={"item_id": "nope", "csrf_token": form_token(client)}).status_code == 404


def form_token(client, path: str = "/demo/products/lamp") -> str:
    """The CSRF token a page's forms carry (the page also sets the browser's cookie)."""
    html = client.get(path).get_data(as_text=True)
    tokens = set(re.findall(r'<input type="hidden" name="csrf_token" value="([^"]+)">', html))
    assert len(tokens) == 1, tokens
    return tokens.pop()


def test_pages_issue_an_http_only_same_site_cookie_once(client):
    browser = client.application.test_client()
    first = browser.get("/demo/products/lamp")
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith("shelfwise_csrf=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    again = browser.get("/demo/cart")
    assert "Set-Cookie" not in again.headers  # the browser keeps its value; pages sign the same one
    assert form_token(browser, "/demo/products/lamp") == form_token(browser, "/demo/products/bare")
    assert form_token(browser) != form_token(client.application.test_client())  # each browser its own


def test_forms_without_a_matching_csrf_token_change_nothing(client):
    store = client.application.extensions["shelfwise.store"]
    victim = client.application.test_client()
    attacker = client.application.test_client()
    good = form_token(victim)
    foreign = form_token(attacker)  # a valid token, but for another browser's cookie
    before = len(store.latest_events("pages", "shopper-7"))
    refused = [
        (victim.post("/demo/cart", data={"item_id": "lamp"}), 400),
        (victim.post("/demo/checkout"), 400),
        (victim.post("/demo/cart", data={"item_id": "lamp", "csrf_token": foreign}), 403),
        (victim.post("/demo/cart", data={"item_id": "lamp", "csrf_token": good[:-2] + "xx"}), 403),
        (victim.post("/demo/checkout", data={"csrf_token": "x" * 43}), 403),
        # the token without the cookie it was made from (cookies off, or a cross-site form that copied it)
        (client.application.test_client().post("/demo/cart", data={"item_id": "lamp", "csrf_token": good}), 400),
    ]
    for n, (response, status) in enumerate(refused):
        assert response.status_code == status, n
        assert "CSRF token" in response.get_json()["error"]["message"], n
        assert "Set-Cookie" not in response.headers or "shelfwise_demo_cart" not in response.headers["Set-Cookie"], n
    assert len(store.latest_events("pages", "shopper-7")) == before
    assert victim.post("/demo/cart", data={"item_id": "lamp", "csrf_token": good}).status_code == 303


def test_pages_link_the_dashboard_and_the_email_fragment(client):
    html = client.get("/demo/").get_data(as_text=True)
    assert 'href="/dashboard"' in html
    assert re.search(r'href="/v1/widgets/recommended-for-you\.html\?key=pk_demo\.secretish&amp;userId=shopper-7', html)
