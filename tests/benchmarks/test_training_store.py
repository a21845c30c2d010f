"""The training benchmark's store: built in bulk, it is the store the ingest path would leave."""

import sqlite3

from benchmarks.synthetic import power_law_interactions
from benchmarks.training.__main__ import GROUP, add_new_users_and_items, build_store, shape
from engine.storage import Store


def test_bulk_built_store_has_every_row_and_the_stores_own_indexes(tmp_path):
    path = tmp_path / "bench.db"
    build_store(path, 3_000)
    generated = len(power_law_interactions(*shape(3_000), 3_000, seed=1)[0])  # "about" 3,000
    fresh = tmp_path / "fresh.db"
    Store(f"sqlite:///{fresh}").close()  # the schema as the Store creates it
    query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'interactions' ORDER BY name"
    with sqlite3.connect(fresh) as db:
        expected = db.execute(query).fetchall()
    with sqlite3.connect(path) as db:
        assert db.execute(query).fetchall() == expected  # dropped for the insert, built again after
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM interactions").fetchone() == (generated,)
    added = add_new_users_and_items(path, 3_000)[2]  # later rows go in through the indexes as they are
    store = Store(f"sqlite:///{path}")
    try:
        assert len(store.interaction_columns(GROUP)) == generated + added
    finally:
        store.close()
