"""Impressions, clicks, layouts, e-mail fragments and the dashboard, through a real headless Chromium."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

import pytest
import requests

from tests.widget.conftest import CAMPAIGNS, stored_events
from tests.widget.test_widget_browser import BEST_SELLERS, FOR_YOU, Problems, cards, recommendation_id, settle

pytestmark = pytest.mark.browser


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


def half_visible(page, widget: str) -> list[str]:
    """Cards at least half inside both the viewport and their scrolling list, by the browser's own geometry."""
    return page.eval_on_selector_all(
        f"{widget} li[data-item-id]",
        """items => items.filter(li => {
            const r = li.getBoundingClientRect(), list = li.parentElement.getBoundingClientRect();
            const left = Math.max(r.left, list.left, 0), right = Math.min(r.right, list.right, innerWidth);
            const top = Math.max(r.top, list.top, 0), bottom = Math.min(r.bottom, list.bottom, innerHeight);
            const seen = Math.max(0, right - left) * Math.max(0, bottom - top);
            return seen >= 0.5 * r.width * r.height;
        }).map(li => li.dataset.itemId)""",
    )


def get(url: str, headers: dict | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_impressions_are_the_cards_actually_seen(demo_shop, page):
    page.set_viewport_size({"width": 1000, "height": 420})  # the grid starts below the fold
    problems = Problems(page)
    posted = []
    page.on("request", lambda r: posted.append(json.loads(r.post_data)) if r.url.endswith("/v1/events") else None)
    page.goto(f"{demo_shop.url}/demo/")
    settle(page)
    store, group = demo_shop.store, demo_shop.group

    rid = recommendation_id(page, FOR_YOU)
    seen = half_visible(page, FOR_YOU)
    shown = [c["itemId"] for c in cards(page, FOR_YOU)]
    assert 0 < len(seen) < len(shown), "the carousel should be wider than the page"
    rows = wait_for(lambda: len(r := stored_events(store, group, recommendation_id=rid)) >= len(seen) and r)
    assert sorted(r.item_id for r in rows) == sorted(seen)  # exactly the cards seen, once each
    for row in rows:
        assert row.event_type == "impression"
        assert row.context == {
            "WIDGET": "home-for-you",
            "CAMPAIGN": CAMPAIGNS["recommended_for_you"],
            "PLACEMENT": "home",
        }
        assert sorted(row.impression) == sorted(seen)

    grid_rid = recommendation_id(page, BEST_SELLERS)
    time.sleep(0.5)
    assert stored_events(store, group, recommendation_id=grid_rid) == []  # not scrolled to yet
    page.eval_on_selector(BEST_SELLERS, "node => node.scrollIntoView()")
    grid_seen = wait_for(lambda: half_visible(page, BEST_SELLERS))
    grid_rows = wait_for(
        lambda: len(r := stored_events(store, group, recommendation_id=grid_rid)) >= len(grid_seen) and r
    )
    assert sorted(r.item_id for r in grid_rows) == sorted(grid_seen)
    assert {r.context["WIDGET"] for r in grid_rows} == {"home-best-sellers"}

    assert all(len(body["eventList"]) <= 10 for body in posted)
    assert all(len({e["recommendationId"] for e in body["eventList"]}) == 1 for body in posted)
    assert problems.errors == [] and problems.page_errors == []


def test_carousel_and_grid_layouts(demo_shop, page):
    page.goto(f"{demo_shop.url}/demo/")
    settle(page)
    geometry = """node => [...node.querySelectorAll('li[data-item-id]')].map(li => {
        const r = li.getBoundingClientRect(); return [Math.round(r.top), Math.round(r.left)]; })"""
    carousel = page.eval_on_selector(FOR_YOU, geometry)
    grid = page.eval_on_selector(BEST_SELLERS, geometry)
    assert len({top for top, _ in carousel}) == 1  # one row that scrolls sideways
    assert page.eval_on_selector(f"{FOR_YOU} ul", "ul => ul.scrollWidth > ul.clientWidth")
    assert page.eval_on_selector(f"{BEST_SELLERS} section", "s => s.className") == "shelfwise shelfwise--grid"
    assert len(grid) == 4 and len({left for _, left in grid}) > 1
    assert page.eval_on_selector(f"{BEST_SELLERS} ul", "ul => ul.scrollWidth <= ul.clientWidth")
    # Themable: the store's custom property reaches the cards.
    accent = page.eval_on_selector(f"{FOR_YOU} .shelfwise__price", "n => getComputedStyle(n).color")
    assert accent == "rgb(47, 91, 211)"


def test_cart_page_shows_bought_together_after_add_to_cart(demo_shop, page):
    problems = Problems(page)
    page.goto(demo_shop.product_url("p200"))
    settle(page)
    page.click("button:has-text('Add to cart')")
    page.wait_for_url("**/demo/cart")
    settle(page)
    together = '[data-widget-name="cart-bought-together"]'
    assert page.get_attribute(together, "data-item-id") == "p200"
    assert page.get_attribute(together, "data-shelfwise-state") == "ready"
    assert "p200" not in [c["itemId"] for c in cards(page, together)]
    assert page.get_attribute('[data-widget-name="cart-best-sellers"]', "data-shelfwise-state") == "ready"
    assert problems.errors == [] and problems.page_errors == []


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_fragment_for_email_and_pages_without_javascript(demo_shop, browser):
    template = "https://shop.example/p/{itemId}?utm=x"
    query = urllib.parse.urlencode(
        {
            "key": demo_shop.public_key,
            "userId": demo_shop.shopper_id,
            "numResults": 6,
            "columns": 3,
            "productUrl": template,
            "title": "Picked <for> you",
        }
    )
    url = f"{demo_shop.url}/v1/widgets/{CAMPAIGNS['recommended_for_you']}.html?{query}"
    status, headers, body = get(url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    parser = Tags()
    parser.feed(body)
    links = [a["href"] for tag, a in parser.tags if tag == "a"]
    # every card goes through the signed click redirect, which records the click, then to the product
    assert len(links) == 6 and all(h.startswith(f"{demo_shop.url}/v1/widgets/click?") for h in links)
    item = urllib.parse.parse_qs(urllib.parse.urlsplit(links[0]).query)["i"][0]
    landed = requests.get(links[0], allow_redirects=False, timeout=10)
    assert landed.status_code == 302 and landed.headers["Location"] == f"https://shop.example/p/{item}?utm=x"
    assert "<script" not in body and "<style" not in body and "class=" not in body
    assert all("style" in attrs for tag, attrs in parser.tags if tag in ("a", "td", "h2"))
    assert len([t for t, _ in parser.tags if t == "tr"]) == 2  # 6 cards in rows of 3
    assert "Picked &lt;for&gt; you" in body
    assert headers["X-Recommendation-Id"].startswith("RID-")

    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(url)
        assert page.locator("a").count() == 6 and page.locator("h2").text_content() == "Picked <for> you"
    finally:
        context.close()

    status, _, carousel = get(url.replace("columns=3", "layout=carousel"))
    assert status == 200 and "<table" not in carousel and "overflow-x:auto" in carousel
    assert carousel.count("display:inline-block") == 6

    refusals = [
        ({"key": demo_shop.secret_key}, {}, 403),
        ({"key": "pk_no.such"}, {}, 401),
        ({}, {}, 401),
        ({"key": demo_shop.public_key}, {"Origin": "https://elsewhere.example"}, 403),
        ({"key": demo_shop.public_key, "productUrl": "javascript:alert(1)//{itemId}"}, {}, 400),
        ({"key": demo_shop.public_key}, {}, 400),  # no productUrl and no URL in the catalog
    ]
    for params, headers, expected in refusals:
        status, answer_headers, answer = get(
            f"{demo_shop.url}/v1/widgets/{CAMPAIGNS['best_sellers']}.html?{urllib.parse.urlencode(params)}", headers
        )
        assert status == expected, (params, answer)
        assert "Access-Control-Allow-Origin" not in answer_headers


def test_dashboard_numbers_match_the_events_sent(demo_shop, page):
    t0 = 1_000_000_000.0  # 2001-09-09: a day no other test writes to
    events = [
        {
            "eventType": "impression",
            "itemId": item,
            "sentAt": t0 + 10,
            "recommendationId": "RID-dash-1",
            "properties": {"widget": "dash-widget", "campaign": "best-sellers"},
        }
        for item in ("p000", "p001", "p002", "p003")
    ] + [
        {
            "eventType": "click",
            "itemId": "p001",
            "sentAt": t0 + 20,
            "recommendationId": "RID-dash-1",
            "properties": {"widget": "dash-widget", "campaign": "best-sellers"},
        },
        {"eventType": "add-to-cart", "itemId": "p001", "sentAt": t0 + 30},
        {"eventType": "purchase", "itemId": "p001", "sentAt": t0 + 40, "eventValue": 123.45},
    ]
    body = {"trackingId": demo_shop.tracking_id, "userId": "dash-shopper", "sessionId": "dash", "eventList": events}
    request = urllib.request.Request(
        f"{demo_shop.url}/v1/events",
        json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {demo_shop.public_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == {"accepted": 7}

    status, _, answer = get(
        f"{demo_shop.url}/v1/metrics?from=2001-09-09&to=2001-09-10&groupBy=widget",
        {"Authorization": f"Bearer {demo_shop.secret_key}"},
    )
    assert status == 200
    expected = {
        "impressions": 4,
        "clicks": 1,
        "clickThroughRate": 0.25,
        "addToCarts": 1,
        "purchases": 1,
        "revenue": 123.45,
    }
    assert json.loads(answer)["groups"] == [{"name": "dash-widget", **expected}]

    problems = Problems(page)
    page.goto(f"{demo_shop.url}/dashboard")
    page.fill("#key", demo_shop.secret_key)
    page.fill("#from", "2001-09-09")
    page.fill("#to", "2001-09-09")
    page.select_option("#groupBy", "widget")
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-state=ready]", state="attached")
    row = page.eval_on_selector(
        "tr[data-name='dash-widget']",
        "tr => Object.fromEntries([...tr.querySelectorAll('td')].map(td => [td.dataset.field, td.textContent]))",
    )
    assert row == {
        "impressions": "4",
        "clicks": "1",
        "clickThroughRate": "25.0%",
        "addToCarts": "1",
        "purchases": "1",
        "revenue": "123.45",
    }
    assert page.text_content("#totals dd[data-field='revenue']") == "123.45"
    bars = page.eval_on_selector_all("svg[data-field='impressions'] rect", "rs => rs.map(r => r.dataset.value)")
    assert bars == ["4"]

    page.fill("#key", "sk_wrong.key")
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-state=error]", state="attached")
    assert "invalid API key" in page.text_content("[role=alert]")
    assert [e for e in problems.errors if "401" not in e] == [] and problems.page_errors == []


def test_the_embedding_example_works_as_written(demo_shop, page):
    """examples/embed.html, with this server's address, keys and catalog in place of the demo's."""
    from pathlib import Path

    html = (Path(__file__).parents[2] / "examples" / "embed.html").read_text()
    for placeholder, value in [
        ("http://127.0.0.1:8000", demo_shop.url),
        ("PUBLIC_KEY", demo_shop.public_key),
        ("TRACKING_ID", demo_shop.tracking_id),
        ("p0001", "p200"),
        ("u00005", demo_shop.shopper_id),
    ]:
        assert placeholder in html
        html = html.replace(placeholder, value)
    problems = Problems(page)
    page.route(f"{demo_shop.url}/example", lambda route: route.fulfill(body=html, content_type="text/html"))
    page.goto(f"{demo_shop.url}/example")  # a page on the key's origin, as the example tells you to serve it
    settle(page)
    for name, layout in [("example-also-bought", "carousel"), ("example-for-you", "grid")]:
        widget = f"[data-widget-name='{name}']"
        assert page.get_attribute(widget, "data-shelfwise-state") == "ready"
        assert page.eval_on_selector(f"{widget} section", "s => s.className") == f"shelfwise shelfwise--{layout}"
    price = page.eval_on_selector(".shelfwise__price", "n => getComputedStyle(n).color")
    assert price == "rgb(180, 35, 90)"  # the example's --shelfwise-accent
    assert problems.errors == [] and problems.page_errors == []
