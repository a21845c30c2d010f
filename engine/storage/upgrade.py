"""Bring an existing database up to the current tables: add what later releases added.

``metadata.create_all`` creates missing tables (with their indexes) but leaves a table that exists
alone, so a database created by an older release would silently miss a newer index (slow reads)
or column (failing writes). Shelfwise's schema changes are additive by rule (new tables, new
nullable or defaulted columns, new indexes); this upgrade applies exactly those on start-up,
idempotently, and refuses anything it cannot add safely rather than guessing.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import Column, Engine, MetaData, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex

from engine.errors import ShelfwiseError

log = logging.getLogger(__name__)
_ADD_COLUMN = re.compile(r"ALTER TABLE (\S+) ADD COLUMN (\S+) ")


class SchemaUpgradeError(ShelfwiseError):
    """The database holds a table whose shape cannot be brought forward by adding to it."""


def upgrade_schema(engine: Engine, metadata: MetaData) -> list[str]:
    """Create missing tables, then add missing columns and indexes to existing ones.

    Returns the DDL statements it ran (empty when the database was current), for the log and tests.
    """
    inspector = inspect(engine)
    existing = set(inspector.get_table_names())
    metadata.create_all(engine)
    statements: list[str] = []
    for table in metadata.sorted_tables:
        if table.name not in existing:
            continue
        have_columns = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have_columns:
                statements.append(_add_column(engine, table.name, column))
        have_indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in have_indexes:
                ddl = CreateIndex(index, if_not_exists=True)
                statements.append(str(ddl.compile(dialect=engine.dialect)).strip())
    for sql in statements:
        log.info("schema upgrade: %s", sql)
        try:
            with engine.begin() as conn:
                conn.execute(text(sql))
        except DBAPIError:
            # Another process (a second server worker) opening the same database added it first.
            if not _column_added_meanwhile(engine, sql):
                raise
    return statements


def _column_added_meanwhile(engine: Engine, sql: str) -> bool:
    if " ADD COLUMN " not in sql:
        return False
    table, column = _ADD_COLUMN.match(sql).groups()  # type: ignore[union-attr]
    return column.strip('"') in {c["name"] for c in inspect(engine).get_columns(table.strip('"'))}


def _add_column(engine: Engine, table: str, column: Column) -> str:
    """``ALTER TABLE ... ADD COLUMN`` for a column an older table lacks; only nullable columns or
    ones with a server default can be added to rows that already exist."""
    if not column.nullable and column.server_default is None:
        raise SchemaUpgradeError(
            f"table {table!r} lacks column {column.name!r}, which is NOT NULL without a server default: "
            "it cannot be added to existing rows; migrate this database by hand"
        )
    preparer = engine.dialect.identifier_preparer
    kind = column.type.compile(dialect=engine.dialect)
    sql = f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(column.name)} {kind}"
    if column.server_default is not None:
        default = column.server_default.arg
        sql += f" DEFAULT {default.text if hasattr(default, 'text') else repr(default)}"
    if not column.nullable:
        sql += " NOT NULL"
    return sql
