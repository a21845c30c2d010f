"""A database made by an older release gets the tables, columns and indexes added since, on open."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, create_engine, inspect, text

from engine.storage import Store
from engine.storage import tables as t
from engine.storage.upgrade import SchemaUpgradeError, upgrade_schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/old.db"
    return request.getfixturevalue("postgres_url")


def _reset(url: str) -> None:
    engine = create_engine(url)
    t.Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS upgrade_probe"))
    engine.dispose()


def test_an_older_database_gets_the_missing_index_and_keeps_its_rows(database_url):
    _reset(database_url)
    store = Store(database_url)
    store.create_dataset_group("shop")
    store.close()
    engine = create_engine(database_url)
    with engine.begin() as conn:  # what a release before the index looked like
        conn.execute(text("DROP INDEX ix_interactions_time"))
    assert "ix_interactions_time" not in {i["name"] for i in inspect(engine).get_indexes("interactions")}
    engine.dispose()

    store = Store(database_url)  # opening it upgrades it
    try:
        indexes = {i["name"] for i in inspect(store.engine).get_indexes("interactions")}
        assert "ix_interactions_time" in indexes
        assert [g.name for g in store.list_dataset_groups()] == ["shop"]
        assert upgrade_schema(store.engine, t.Base.metadata) == []  # idempotent: nothing left to add
    finally:
        for group in store.list_dataset_groups():
            store.delete_dataset_group(group.name)
        store.close()
        _reset(database_url)


def test_missing_nullable_and_defaulted_columns_are_added(database_url):
    _reset(database_url)
    engine = create_engine(database_url)
    old = MetaData()
    Table("upgrade_probe", old, Column("id", Integer, primary_key=True))
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO upgrade_probe (id) VALUES (1)"))

    new = MetaData()
    Table(
        "upgrade_probe",
        new,
        Column("id", Integer, primary_key=True),
        Column("note", String(40)),
        Column("weight", Float, nullable=False, server_default=text("1.5")),
    )
    ran = upgrade_schema(engine, new)
    assert len(ran) == 2
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, note, weight FROM upgrade_probe")).one() == (1, None, 1.5)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE upgrade_probe"))
    engine.dispose()


def test_a_required_column_without_a_default_is_refused_with_a_reason(database_url):
    _reset(database_url)
    engine = create_engine(database_url)
    old = MetaData()
    Table("upgrade_probe", old, Column("id", Integer, primary_key=True))
    old.create_all(engine)
    new = MetaData()
    Table("upgrade_probe", new, Column("id", Integer, primary_key=True), Column("kind", String(8), nullable=False))
    with pytest.raises(SchemaUpgradeError, match=r"'kind'.*NOT NULL"):
        upgrade_schema(engine, new)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE upgrade_probe"))
    engine.dispose()
