"""The platform API client: retries on rate limits and server errors, bounded, with injectable sleep."""

from __future__ import annotations

import logging
from email.utils import formatdate

import pytest
import requests
import responses

from adapters.http import PlatformApiError, RequestsClient, retry_after_seconds

BASE = "https://api.example.com/v1"


def client(**options: object) -> tuple[RequestsClient, list[float]]:
    sleeps: list[float] = []
    return RequestsClient(BASE, sleep=sleeps.append, **options), sleeps  # type: ignore[arg-type]


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("2.0") == 2.0
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds(formatdate(1_000_030, usegmt=True), now=1_000_000) == pytest.approx(30, abs=1)
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


@responses.activate
def test_429_then_success_waits_as_told() -> None:
    responses.get(f"{BASE}/things", status=429, headers={"Retry-After": "4"})
    responses.get(f"{BASE}/things", json={"ok": True}, headers={"X-Thing": "1"})
    api, sleeps = client()
    answer = api.get_response("things", {"page": 1})
    assert answer.data == {"ok": True} and answer.headers.get("x-thing") == "1"
    assert sleeps == [4.0] and api.requests_sent == 2


@responses.activate
def test_server_errors_back_off_exponentially_then_give_up() -> None:
    responses.get(f"{BASE}/things", status=503)
    api, sleeps = client(max_retries=3, backoff=0.5)
    with pytest.raises(PlatformApiError, match="503 after 3 retries"):
        api.get("things")
    assert sleeps == [0.5, 1.0, 2.0]


@responses.activate
def test_a_long_retry_after_is_capped() -> None:
    responses.get(f"{BASE}/things", status=429, headers={"Retry-After": "86400"})
    responses.get(f"{BASE}/things", json=[])
    api, sleeps = client(max_wait=60)
    api.get("things")
    assert sleeps == [60]


@responses.activate
def test_client_errors_are_not_retried_and_say_what_came_back() -> None:
    responses.get(f"{BASE}/things", status=401, json={"errors": "[API] Invalid API key"})
    api, sleeps = client()
    with pytest.raises(PlatformApiError, match=r"answered 401: .*Invalid API key"):
        api.get("things")
    assert sleeps == []


@responses.activate
def test_connection_errors_are_retried() -> None:
    responses.get(f"{BASE}/things", body=requests.ConnectionError("reset"))
    responses.get(f"{BASE}/things", json=[1])
    api, sleeps = client()
    assert api.get("things") == [1] and sleeps == [1.0]


@responses.activate
def test_an_answer_that_is_not_json_is_an_error() -> None:
    responses.get(f"{BASE}/things", body="<html>maintenance</html>")
    with pytest.raises(PlatformApiError, match="did not answer JSON"):
        client()[0].get("things")


@responses.activate
def test_absolute_urls_are_fetched_as_given_and_query_strings_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    url = "https://api.example.com/v1/things?page_info=abc&consumer_secret=cs_hidden"
    responses.get(url, status=429, headers={"Retry-After": "0"})
    responses.get(url, json=[])
    api, _ = client()
    with caplog.at_level(logging.INFO):
        assert api.get(url) == []
    assert responses.calls[-1].request.url == url
    assert "cs_hidden" not in caplog.text and "https://api.example.com/v1/things" in caplog.text


@responses.activate
def test_throttle_pauses_before_the_next_call_only() -> None:
    responses.get(f"{BASE}/things", json=[])
    api, sleeps = client(throttle=lambda headers: 1.5)
    api.get("things")
    assert sleeps == []
    api.get("things")
    assert sleeps == [1.5]


def test_base_url_must_be_http() -> None:
    with pytest.raises(PlatformApiError, match="must start with https://"):
        RequestsClient("ftp://example.com")
