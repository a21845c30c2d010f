"""Database engines: SQLite tuned for concurrent webhook writes, PostgreSQL as is."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from engine.errors import InvalidInput


def _tune_sqlite(dbapi_connection, _record) -> None:
    # WAL lets readers proceed while a webhook writes; the busy timeout makes concurrent writers
    # wait instead of failing with "database is locked" (see DESIGN.md, pitfalls).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(database_url: str) -> Engine:
    """Create an engine for ``database_url``, refusing URLs SQLAlchemy cannot parse."""
    try:
        url = make_url(database_url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise InvalidInput(f"not a database URL: {database_url!r}") from exc
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    if url.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise InvalidInput(f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql")


def in_memory(database_url: str) -> bool:
    """True for an in-memory SQLite database: another process, or another thread (SQLAlchemy gives
    each thread its own connection there), would see a different, empty database."""
    url = make_url(database_url)
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    )
