"""Attribution: impressions, clicks, carts, purchases and revenue credited to recommendation lists."""

from __future__ import annotations

import json

import pytest
import requests

from engine.cli import main
from engine.records import Interaction, Item
from engine.storage.attribution import attribution_report, parse_time

T0 = 1_780_000_000.0  # 2026-05-28
HOUR = 3600.0


def seen(user, item, rid, t, widget="home-for-you", campaign="for-you", kind="impression"):
    return Interaction(
        user, item, kind, t, recommendation_id=rid, session_id=user, context={"WIDGET": widget, "CAMPAIGN": campaign}
    )


def shop_events() -> list:
    return [
        Item("a", {"TITLE": "A", "PRICE": 10.0}),
        Item("b", {"TITLE": "B", "PRICE": 25.5}),
        Item("c", {"TITLE": "C", "PRICE": 4.0}),
        # list R1 (for-you on the home page): 3 seen, 1 clicked, bought within the hour (no rid: last click)
        seen("u1", "a", "R1", T0),
        seen("u1", "b", "R1", T0),
        seen("u1", "c", "R1", T0),
        seen("u1", "b", "R1", T0 + 5, kind="click"),
        Interaction("u1", "b", "add-to-cart", T0 + 60, session_id="u1"),
        Interaction("u1", "b", "purchase", T0 + 120, event_value=51.0, session_id="u1"),  # two of them
        # list R2 (best-sellers on the cart page): 2 seen, 1 click, a purchase carrying the rid
        seen("u2", "a", "R2", T0 + 10, widget="cart-best", campaign="best-sellers"),
        seen("u2", "c", "R2", T0 + 10, widget="cart-best", campaign="best-sellers"),
        Interaction("u2", "c", "click", T0 + 20, recommendation_id="R2", session_id="u2"),  # no properties
        Interaction("u2", "c", "purchase", T0 + 30, recommendation_id="R2", session_id="u2"),  # catalog price
        # not credited: a purchase of a clicked item after the 24 h window, and one never clicked
        Interaction("u1", "b", "purchase", T0 + 5 + 25 * HOUR, event_value=99.0, session_id="u1"),
        Interaction("u3", "a", "purchase", T0 + 40, event_value=10.0, session_id="u3"),
        # a plain view with context (device type): not a recommendation's event
        Interaction("u3", "a", "view", T0 + 50, session_id="u3", context={"DEVICE": "ios"}),
    ]


@pytest.fixture
def loaded(store):
    store.create_dataset_group("metrics-shop")
    store.ingest("metrics-shop", shop_events())
    return store


def figures(report) -> dict:
    return {g["name"]: g for g in report.as_dict()["groups"]}


def test_campaigns_get_their_impressions_clicks_and_last_click_revenue(loaded):
    report = attribution_report(loaded, "metrics-shop", start=T0 - HOUR, end=T0 + 48 * HOUR)
    groups = figures(report)
    assert set(groups) == {"for-you", "best-sellers"}
    assert groups["for-you"] | {} == {
        "name": "for-you",
        "impressions": 3,
        "clicks": 1,
        "clickThroughRate": 0.3333,
        "addToCarts": 1,
        "purchases": 1,
        "revenue": 51.0,
    }
    assert (groups["best-sellers"]["impressions"], groups["best-sellers"]["clicks"]) == (2, 1)
    assert (groups["best-sellers"]["purchases"], groups["best-sellers"]["revenue"]) == (1, 4.0)
    total = report.as_dict()["total"]
    assert (total["impressions"], total["clicks"], total["purchases"], total["revenue"]) == (5, 2, 2, 55.0)
    assert [d["day"] for d in report.as_dict()["series"]] == ["2026-05-28"]


def test_grouping_by_widget_and_a_narrow_window(loaded):
    by_widget = figures(attribution_report(loaded, "metrics-shop", start=T0 - HOUR, end=T0 + HOUR, group_by="widget"))
    assert set(by_widget) == {"home-for-you", "cart-best"}
    assert by_widget["cart-best"]["revenue"] == 4.0
    short = figures(attribution_report(loaded, "metrics-shop", start=T0 - HOUR, end=T0 + HOUR, window_seconds=30))
    assert short["for-you"]["purchases"] == 0  # bought 115 s after the click: outside a 30 s window
    later = attribution_report(loaded, "metrics-shop", start=T0 + HOUR, end=T0 + 48 * HOUR)
    assert later.as_dict()["groups"] == []


def test_bad_report_arguments_are_clear_errors(loaded):
    from engine.errors import InvalidInput, NotFound

    with pytest.raises(InvalidInput, match="groupBy"):
        attribution_report(loaded, "metrics-shop", start=T0, end=T0 + 1, group_by="colour")
    with pytest.raises(InvalidInput, match="empty"):
        attribution_report(loaded, "metrics-shop", start=T0, end=T0)
    with pytest.raises(NotFound):
        attribution_report(loaded, "nope", start=T0, end=T0 + 1)
    with pytest.raises(InvalidInput, match="not a time"):
        parse_time("yesterday", 0)
    assert parse_time("2026-05-28T00:00:00Z", 0) == parse_time("2026-05-28", 0) == 1779926400.0


def test_metrics_endpoint_matches_events_sent_through_the_api(shop):
    events = [
        {
            "eventType": "impression",
            "itemId": i,
            "sentAt": T0,
            "recommendationId": "RID-m1",
            "impression": ["shoe3", "shoe4"],
            "properties": {"widget": "pdp", "campaign": "for-you"},
        }
        for i in ("shoe3", "shoe4")
    ] + [
        {
            "eventType": "click",
            "itemId": "shoe4",
            "sentAt": T0 + 1,
            "recommendationId": "RID-m1",
            "properties": {"widget": "pdp", "campaign": "for-you"},
        },
        {"eventType": "purchase", "itemId": "shoe4", "sentAt": T0 + 2},
    ]
    body = {"trackingId": shop.tracking_id, "userId": "metrics-u", "sessionId": "metrics-s", "eventList": events}
    assert shop.post("/v1/events", body, key=shop.public_key).json() == {"accepted": 4}

    params = {"from": "2026-05-28T00:00:00Z", "to": "2026-05-29T00:00:00Z", "groupBy": "widget"}
    public = requests.get(
        shop.url + "/v1/metrics", params=params, timeout=10, headers={"Authorization": f"Bearer {shop.public_key}"}
    )
    assert public.status_code == 403  # revenue is for the merchant, not for the storefront's key
    answer = requests.get(
        shop.url + "/v1/metrics", params=params, timeout=10, headers={"Authorization": f"Bearer {shop.secret_key}"}
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["groups"] == [
        {
            "name": "pdp",
            "impressions": 2,
            "clicks": 1,
            "clickThroughRate": 0.5,
            "addToCarts": 0,
            "purchases": 1,
            "revenue": 54.0,
        }
    ]  # shoe4's catalog price
    bad = requests.get(
        shop.url + "/v1/metrics",
        params={"groupBy": "x"},
        timeout=10,
        headers={"Authorization": f"Bearer {shop.secret_key}"},
    )
    assert bad.status_code == 400 and "groupBy" in bad.json()["error"]["message"]


def test_report_command_prints_the_table_and_json(tmp_path, capsys):
    from engine.storage import Store

    url = f"sqlite:///{tmp_path}/r.db"
    store = Store(url)
    store.create_dataset_group("metrics-shop")
    store.ingest("metrics-shop", shop_events())
    store.close()
    args = ["report", "--db", url, "--dataset-group", "metrics-shop", "--since", "2026-05-27", "--until", "2026-05-30"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "for-you" in text and "33.3%" in text and "TOTAL" in text
    assert main([*args, "--json", "--group-by", "widget"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {g["name"] for g in data["groups"]} == {"home-for-you", "cart-best"}
    assert main(["report", "--db", url, "--dataset-group", "metrics-shop", "--since", "soon"]) == 1
    assert "shelfwise: error: not a time" in capsys.readouterr().err


def test_an_event_naming_its_widget_is_credited_without_a_recommendation_id(store):
    store.create_dataset_group("source-shop")
    store.ingest(
        "source-shop",
        [
            Item("a", {"PRICE": 7.0}),
            Interaction("u9", "a", "purchase", T0, session_id="u9", context={"WIDGET": "email-digest"}),
            Interaction("u9", "a", "purchase", T0 + 1, session_id="u9", context={"DEVICE": "ios"}),  # not credited
        ],
    )
    report = attribution_report(store, "source-shop", start=T0 - 1, end=T0 + 10, group_by="widget")
    assert [(g["name"], g["purchases"], g["revenue"]) for g in report.as_dict()["groups"]] == [("email-digest", 1, 7.0)]
    by_campaign = attribution_report(store, "source-shop", start=T0 - 1, end=T0 + 10)
    assert [g["name"] for g in by_campaign.as_dict()["groups"]] == ["(unknown)"]  # the same sale, no campaign named
