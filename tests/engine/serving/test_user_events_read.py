"""The request path reads a shopper's events with the driver's own cursor (Store._event_rows):
the same events, values and order as SQLAlchemy's Core read of the same statements, on both backends."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from engine.records import Interaction
from engine.storage import Store
from engine.storage import store as store_module


def core_read(store, statement, values):
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(statement, values).all()]


def test_driver_read_matches_the_core_read(store):
    store.create_dataset_group("g")
    events = [
        Interaction("u1", f"p{i % 7}", ("view", "purchase", "impression")[i % 3], float(i // 2), None, None)
        for i in range(40)
    ]
    events += [
        Interaction("u1", "p9", "click", 50.0, 2.5, "s-1", recommendation_id="RID-1"),
        Interaction("u1", "p8", "view", 50.0, 0.0, "s-1"),  # a timestamp tie: the id decides
        Interaction("u2", "p1", "view", 1.0),
    ]
    store.ingest("g", events)
    group = store.get_dataset_group("g")
    for statement, values in [
        (store_module._USER_EVENTS, {"group": group.id, "user": "u1"}),
        (store_module._LATEST_EVENTS, {"group": group.id, "user": "u1", "limit": 500}),
        (store_module._LATEST_EVENTS, {"group": group.id, "user": "u1", "limit": 5}),
        (store_module._USER_EVENTS, {"group": group.id, "user": "nobody"}),
    ]:
        assert [tuple(r) for r in store._event_rows(statement, values)] == core_read(store, statement, values)

    every = store.user_events("g", "u1")
    assert len(every) == 42 and every[-1].item_id == "p8" and every[-2].recommendation_id == "RID-1"
    assert every[-2].event_value == 2.5 and every[-2].session_id == "s-1" and every[0].event_value is None
    latest = store.latest_events("g", "u1", limit=3)
    assert [e.item_id for e in latest] == [e.item_id for e in every if e.event_type != "impression"][-3:]
    assert all(isinstance(e.timestamp, float) for e in every)


@pytest.mark.postgres
def test_a_lost_postgres_read_connection_is_replaced(postgres_url):
    store = Store(postgres_url)
    try:
        store.create_dataset_group("lost")
        store.ingest("lost", [Interaction("u1", "p1", "view", 1.0)])
        assert len(store.user_events("lost", "u1")) == 1
        pid = store._readers._local.connection.info.backend_pid
        with store.engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()
        assert [e.item_id for e in store.latest_events("lost", "u1")] == ["p1"]  # on a new connection
        assert store._readers._local.connection.info.backend_pid != pid

        # A thread per request (werkzeug's server): a finished thread's connection is closed when
        # the next thread opens one, so they do not pile up.
        def read() -> None:
            assert len(store.user_events("lost", "u1")) == 1

        for _ in range(3):
            thread = threading.Thread(target=read)
            thread.start()
            thread.join()
        assert len(store._readers._by_thread) == 2  # this thread's and the last one's
        store.delete_dataset_group("lost")
    finally:
        store.close()
    assert store._readers._by_thread == {}
