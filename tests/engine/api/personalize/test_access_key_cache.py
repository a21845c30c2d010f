"""Each worker keeps an access key it has read for a second (``Store.KEY_CACHE_SECONDS``), as it does
API keys: signed requests within that second read and decrypt it once, and a revoked key stops
working once the second is over. The cache's clock is driven by the test, not by sleeping."""

from __future__ import annotations

import time

from sqlalchemy import update

from engine import expiring
from engine.api.personalize import wire
from engine.storage import Store
from engine.storage import tables as t
from tests.engine.api.personalize.test_sigv4 import body, signed_request


class Clock:
    """``time.monotonic`` as the caches see it: stands still until moved on."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now


def set_revoked(store: Store, access_key_id: str, revoked: bool) -> None:
    with store.session() as s, s.begin():
        s.execute(update(t.AccessKey).where(t.AccessKey.access_key_id == access_key_id).values(revoked=revoked))


def test_a_key_is_read_once_a_second_and_a_revoked_key_stops_working_after_it(aws, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(expiring, "time", clock)
    lookups = []
    real_lookup = wire.lookup_access_key

    def counting_lookup(store, access_key_id, cipher):
        lookups.append(access_key_id)
        return real_lookup(store, access_key_id, cipher)

    monkeypatch.setattr(wire, "lookup_access_key", counting_lookup)
    clock.now += Store.KEY_CACHE_SECONDS + 1  # whatever earlier tests cached has expired
    try:
        for _ in range(3):
            assert signed_request(aws, body(aws)).status_code == 200
        assert lookups == [aws.access_key_id]

        set_revoked(aws.store, aws.access_key_id, True)
        assert signed_request(aws, body(aws)).status_code == 200  # still within the cached second
        assert len(lookups) == 1

        clock.now += Store.KEY_CACHE_SECONDS + 0.01
        for _ in range(2):  # refused, and a refusal is not cached: each request reads the key again
            r = signed_request(aws, body(aws))
            assert r.status_code == 403, r.text
            assert r.headers["x-amzn-ErrorType"].startswith("UnrecognizedClientException")
        assert len(lookups) == 3
    finally:
        set_revoked(aws.store, aws.access_key_id, False)
        clock.now += Store.KEY_CACHE_SECONDS + 1
    assert signed_request(aws, body(aws)).status_code == 200
