"""Links in server-rendered fragments go through the signed click redirect: the click is recorded and
credited, the shopper lands on the product, and a changed link redirects nowhere."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from engine.cli import main

TEMPLATE = "https://shop.example/p/{itemId}?utm_source=mail"


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])


def fragment_links(shop, **params) -> tuple[str, list[str]]:
    query = {"key": shop.public_key, "numResults": 3, "productUrl": TEMPLATE, **params}
    answer = requests.get(f"{shop.url}/v1/widgets/best-sellers.html", params=query, timeout=10)
    assert answer.status_code == 200, answer.text
    parser = Links()
    parser.feed(answer.text)
    return answer.headers["X-Recommendation-Id"], parser.hrefs


def follow(link: str) -> requests.Response:
    return requests.get(link, allow_redirects=False, timeout=10)


def with_param(link: str, **changes: str) -> str:
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    query = {k: v for k, v in query.items() if v is not None}
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def metrics(shop, since: float, group_by: str = "widget") -> dict:
    answer = requests.get(
        shop.url + "/v1/metrics",
        params={"groupBy": group_by, "from": since, "to": time.time() + 1},
        headers={"Authorization": f"Bearer {shop.secret_key}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return {g["name"]: g for g in answer.json()["groups"]}


def test_a_click_is_recorded_with_its_list_and_credited_then_redirected(shop, capsys):
    since = time.time()
    rid, links = fragment_links(shop, userId="mail-shopper-1", widget="newsletter-june")
    assert len(links) == 3 and all(link.startswith(f"{shop.url}/v1/widgets/click?") for link in links)
    item = parse_qs(urlsplit(links[1]).query)["i"][0]

    answer = follow(links[1])
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"https://shop.example/p/{item}?utm_source=mail"
    assert answer.headers["Cache-Control"] == "no-store"

    (event,) = [e for e in shop.store.latest_events("shop", "mail-shopper-1") if e.event_type == "click"]
    assert (event.item_id, event.recommendation_id) == (item, rid)

    figures = metrics(shop, since)["newsletter-june"]  # the widget named in the fragment's URL
    assert figures["clicks"] == 1 and figures["impressions"] == 0
    assert metrics(shop, since, "campaign")["best-sellers"]["clicks"] == 1

    args = ["report", "--db", shop.store.database_url, "--dataset-group", "shop", "--json", "--group-by", "widget"]
    assert main([*args, "--since", str(since), "--until", str(time.time() + 1)]) == 0
    report = {g["name"]: g for g in json.loads(capsys.readouterr().out)["groups"]}
    assert report["newsletter-june"]["clicks"] == 1


def test_without_a_user_the_list_is_one_anonymous_shopper(shop):
    rid, links = fragment_links(shop, widget="newsletter-anonymous")
    probe = requests.head(links[0], allow_redirects=False, timeout=10)  # a mail scanner's link check
    assert probe.status_code == 302 and probe.headers["Location"].startswith("https://shop.example/p/")
    assert not shop.store.latest_events("shop", f"anon-{rid}")
    assert follow(links[0]).status_code == 302
    clicks = [e for e in shop.store.latest_events("shop", f"anon-{rid}") if e.event_type == "click"]
    assert [e.recommendation_id for e in clicks] == [rid]


def test_a_changed_or_unsigned_link_redirects_nowhere_and_records_nothing(shop):
    since = time.time()
    _, links = fragment_links(shop, userId="mail-shopper-2", widget="newsletter-tampered")
    link = links[0]
    item = parse_qs(urlsplit(link).query)["i"][0]
    other = parse_qs(urlsplit(links[1]).query)["i"][0]
    refused = {
        "another target": (with_param(link, to="https://evil.example/phish"), 403),
        "another item": (with_param(link, i=other), 403),
        "another shopper": (with_param(link, u="someone-else"), 403),
        "another dataset group": (with_param(link, g="other-shop"), 403),
        "forged signature": (with_param(link, s="A" * 43), 403),
        "no signature": (with_param(link, s=None), 400),
        "no target": (with_param(link, to=None), 400),
        "made up": (f"{shop.url}/v1/widgets/click?{urlencode({'to': 'https://evil.example'})}", 400),
    }
    for why, (url, status) in refused.items():
        answer = follow(url)
        assert answer.status_code == status, why
        assert "Location" not in answer.headers, why
        assert answer.json()["error"]["message"], why
    assert not [e for e in shop.store.latest_events("shop", "mail-shopper-2") if e.event_type == "click"]
    assert "newsletter-tampered" not in metrics(shop, since)
    assert follow(link).headers["Location"] == f"https://shop.example/p/{item}?utm_source=mail"  # the real one works
