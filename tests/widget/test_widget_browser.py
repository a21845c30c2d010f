"""widget.js and the demo storefront, driven through a real headless Chromium against a live server."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request

import pytest

from tests.widget.conftest import CAMPAIGNS, stored_events

pytestmark = pytest.mark.browser

FOR_YOU = f'[data-shelfwise-widget][data-recommender="{CAMPAIGNS["recommended_for_you"]}"]'
ALSO_BOUGHT = f'[data-shelfwise-widget][data-recommender="{CAMPAIGNS["also_bought"]}"]'
BEST_SELLERS = f'[data-shelfwise-widget][data-recommender="{CAMPAIGNS["best_sellers"]}"]'
PRODUCT = "p200"  # an audio product: the demo shopper's favourite category


class Problems:
    """Console errors and uncaught exceptions seen by a page, and the widget's own warnings."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        self.page_errors: list[str] = []
        self.warnings: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(message.text)
        elif message.type == "warning":
            self.warnings.append(message.text)

    def widget_errors(self) -> list[str]:
        """Errors the page itself is responsible for; the browser's own network-failure lines
        ("Failed to load resource", CORS refusals) are expected where a test breaks the network."""
        browser_lines = ("Failed to load resource", "Access to fetch at")
        return [e for e in self.errors if not e.startswith(browser_lines)] + self.page_errors


def settle(page) -> None:
    """Wait until every widget on the page has finished its request (rendered, empty or failed)."""
    page.wait_for_function(
        """() => {
            const nodes = [...document.querySelectorAll('[data-shelfwise-widget]')];
            return nodes.length > 0 && nodes.every(n => ['ready', 'empty', 'error'].includes(n.dataset.shelfwiseState));
        }"""
    )


def cards(page, widget: str) -> list[dict]:
    return page.eval_on_selector_all(
        f"{widget} li[data-item-id]",
        """items => items.map(li => {
            const a = li.querySelector('a');
            return {
                itemId: li.dataset.itemId,
                href: a.getAttribute('href'),
                name: a.querySelector('.shelfwise__name').textContent,
                price: (a.querySelector('.shelfwise__price') || {}).textContent || '',
            };
        })""",
    )


def post_json(url: str, body: dict, headers: dict[str, str]):
    request = urllib.request.Request(
        url, json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return response
    except urllib.error.HTTPError as error:
        return error


def recommendation_id(page, widget: str) -> str:
    return page.get_attribute(f"{widget} ul[data-recommendation-id]", "data-recommendation-id")


def test_widget_js_is_cacheable_and_small(demo_shop):
    with urllib.request.urlopen(f"{demo_shop.url}/widget.js", timeout=10) as response:
        body = response.read()
        cache_control = response.headers["Cache-Control"] or ""
        content_type = response.headers["Content-Type"] or ""
    assert "javascript" in content_type
    assert "max-age=" in cache_control
    assert int(cache_control.split("max-age=")[1].split(",")[0]) > 0
    assert len(gzip.compress(body)) < 10 * 1024
    assert body == demo_shop.widget_js.read_bytes()


def test_product_page_renders_both_carousels(demo_shop, page):
    problems = Problems(page)
    page.goto(demo_shop.product_url(PRODUCT))
    settle(page)

    for widget, title in [(FOR_YOU, "Recommended for you"), (ALSO_BOUGHT, "Customers also bought")]:
        assert page.get_attribute(widget, "data-shelfwise-state") == "ready"
        assert page.is_visible(f"{widget} section[aria-label='{title}'] h2")
        assert page.text_content(f"{widget} h2") == title
        assert page.get_attribute(f"{widget} ul", "role") == "list"
        assert recommendation_id(page, widget).startswith("RID-")
        shown = cards(page, widget)
        assert 0 < len(shown) <= 8
        for card in shown:
            assert card["name"].strip()
            assert card["price"].startswith("$"), card
            assert card["href"] == f"/demo/products/{card['itemId']}"
    also_bought = [c["itemId"] for c in cards(page, ALSO_BOUGHT)]
    assert PRODUCT not in also_bought  # never "customers also bought" the product itself
    assert problems.errors == [] and problems.page_errors == []


def test_home_page_has_widgets_and_no_console_errors(demo_shop, page):
    problems = Problems(page)
    page.goto(f"{demo_shop.url}/demo/")
    settle(page)

    assert "You are shopping as" in page.text_content("header")
    assert demo_shop.shopper_id in page.text_content("header")
    for widget in (FOR_YOU, BEST_SELLERS):
        assert page.get_attribute(widget, "data-shelfwise-state") == "ready"
        assert cards(page, widget)
    catalog = page.eval_on_selector_all(".products a", "links => links.map(a => a.getAttribute('href'))")
    assert catalog and all(href.startswith("/demo/products/") for href in catalog)
    assert problems.errors == [] and problems.page_errors == []


def test_cards_are_reachable_with_the_keyboard(demo_shop, page):
    page.goto(demo_shop.product_url(PRODUCT))
    settle(page)
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('.shelfwise__card')"):
            break
    else:
        pytest.fail("Tab never reached a recommendation card")
    focused = page.evaluate(
        """() => {
            const a = document.activeElement, style = getComputedStyle(a);
            return {tag: a.tagName, item: a.closest('li').dataset.itemId,
                    outline: style.outlineStyle, width: parseFloat(style.outlineWidth)};
        }"""
    )
    assert focused["tag"] == "A" and focused["item"]
    assert focused["outline"] != "none" and focused["width"] > 0  # a visible focus ring


def test_click_is_recorded_and_the_next_page_reflects_it(demo_shop, page):
    store, group, shopper = demo_shop.store, demo_shop.group, demo_shop.shopper_id
    page.goto(demo_shop.product_url(PRODUCT))
    settle(page)
    rid = recommendation_id(page, FOR_YOU)
    clicked = cards(page, FOR_YOU)[0]
    before = {e.timestamp for e in store.latest_events(group, shopper)}

    page.click(f"{FOR_YOU} li[data-item-id='{clicked['itemId']}'] a")
    page.wait_for_url(f"**/demo/products/{clicked['itemId']}")
    assert page.text_content("h1") == clicked["name"]

    def new_clicks():
        return [e for e in store.latest_events(group, shopper) if e.event_type == "click" and e.timestamp not in before]

    deadline = time.monotonic() + 10
    while not (clicks := new_clicks()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(clicks) == 1, "the click event never reached the store"
    event = clicks[0]
    assert (event.event_type, event.item_id, event.recommendation_id) == ("click", clicked["itemId"], rid)
    assert event.session_id
    (row,) = [r for r in stored_events(store, group, recommendation_id=rid) if r.event_type == "click"]
    assert row.context == {
        "WIDGET": "product-for-you",
        "CAMPAIGN": CAMPAIGNS["recommended_for_you"],
        "PLACEMENT": "product",
    }

    # The event is stored, so this load folds it in: the clicked product is no longer suggested.
    page.reload()
    settle(page)
    assert page.get_attribute(FOR_YOU, "data-shelfwise-state") == "ready"
    assert clicked["itemId"] not in [c["itemId"] for c in cards(page, FOR_YOU)]
    assert recommendation_id(page, FOR_YOU) != rid


def test_unreachable_api_leaves_the_widget_hidden(demo_shop, page):
    problems = Problems(page)
    page.goto(f"{demo_shop.url}/health")  # any page of a real origin
    page.set_content(
        f"""<!doctype html><html lang="en"><body>
        <p>Before</p>
        <div data-shelfwise-widget data-recommender="{CAMPAIGNS["best_sellers"]}" data-title="Best"></div>
        <p>After</p>
        <script src="{demo_shop.url}/widget.js" data-shelfwise-key="pk_nope.nope"
                data-shelfwise-endpoint="http://127.0.0.1:9"></script>
        </body></html>"""
    )
    settle(page)
    widget = "[data-shelfwise-widget]"
    assert page.get_attribute(widget, "data-shelfwise-state") == "error"
    assert page.is_hidden(widget)
    assert page.inner_html(widget) == ""
    assert page.evaluate("typeof window.Shelfwise.refresh") == "function"
    assert problems.widget_errors() == []
    assert any(w.startswith("[shelfwise]") for w in problems.warnings)


def test_unknown_campaign_leaves_the_widget_hidden(demo_shop, page):
    problems = Problems(page)
    page.goto(demo_shop.product_url(PRODUCT))
    settle(page)
    page.evaluate(
        """() => {
            const node = document.createElement('div');
            node.id = 'extra';
            node.setAttribute('data-shelfwise-widget', '');
            node.dataset.recommender = 'no-such-campaign';
            document.querySelector('main').append(node);
            window.Shelfwise.refresh();
        }"""
    )
    settle(page)
    assert page.get_attribute("#extra", "data-shelfwise-state") == "error"
    assert page.is_hidden("#extra") and page.inner_html("#extra") == ""
    assert page.get_attribute(FOR_YOU, "data-shelfwise-state") == "ready"  # the others re-rendered
    assert problems.widget_errors() == []


def test_a_page_on_another_origin_gets_no_cards(demo_shop, page):
    """The demo served as http://localhost:<port> calls the API at 127.0.0.1, whose public key only
    accepts the 127.0.0.1 origin: the server refuses, and the browser's CORS check blocks the answer."""
    problems = Problems(page)
    blocked = []
    page.on("requestfailed", lambda r: blocked.append(r.url) if r.method == "POST" else None)
    other_origin = f"http://localhost:{demo_shop.port}"
    page.goto(f"{other_origin}/demo/products/{PRODUCT}")
    settle(page)
    for widget in (FOR_YOU, ALSO_BOUGHT):
        assert page.get_attribute(widget, "data-shelfwise-state") == "error"
        assert page.is_hidden(widget)
    assert page.query_selector_all("li[data-item-id]") == []
    assert blocked == [f"{demo_shop.url}/v1/recommendations"] * 2
    assert problems.page_errors == [] and problems.widget_errors() == []

    # What the browser was refused: a 403 without Access-Control-Allow-Origin, for that origin only.
    key = page.get_attribute("script[data-shelfwise-key]", "data-shelfwise-key")
    for origin, status in [(other_origin, 403), (demo_shop.url, 200)]:
        response = post_json(
            f"{demo_shop.url}/v1/recommendations",
            {"campaign": CAMPAIGNS["best_sellers"]},
            {"Authorization": f"Bearer {key}", "Origin": origin},
        )
        assert response.status == status
        assert response.headers.get("Access-Control-Allow-Origin") == (origin if status == 200 else None)
