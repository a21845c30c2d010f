"""Reads on every request's path through the database driver's own cursor: a few fixed statements
compiled once, and (PostgreSQL) a connection per thread that needs no round trips around the read."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine

#: (statement id, dialect) → the driver's SQL text, its positional parameter names (None: named)
#: and the values compiled into it; for the request path's few fixed statements only.
_SQL: dict[tuple[int, str], tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}


def driver_sql(
    statement: Any, dialect: Any, values: dict[str, Any]
) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
    key = (id(statement), dialect.name)
    found = _SQL.get(key)
    if found is None:
        # Expanded with a first request's values (an IN list becomes one parameter per value);
        # every request passes its own values for the named ones.
        compiled = statement.compile(dialect=dialect)
        state = compiled.construct_expanded_state(values)
        names = tuple(state.positiontup or ()) if compiled.positional else None
        found = _SQL[key] = (state.statement, names, dict(state.parameters))
    return found


class Readers:
    """PostgreSQL: one autocommit connection per thread for the request path's reads of a shopper's
    events. A pooled connection costs three more round trips per read (the pool's ping, BEGIN, and
    the ROLLBACK that returns it), more than the indexed read itself. A connection that fails is
    replaced once; a finished thread's connection is closed when the next thread opens one (servers
    that start a thread per request), and :meth:`close` closes them all."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()
        self._lock = threading.Lock()
        self._by_thread: dict[threading.Thread, Any] = {}

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            dialect = self.engine.dialect
            cargs, cparams = dialect.create_connect_args(self.engine.url)
            connection = dialect.loaded_dbapi.connect(*cargs, **cparams)
            connection.autocommit = True
            self._local.connection = connection
            with self._lock:
                finished = [t for t in self._by_thread if not t.is_alive()]
                for thread in finished:
                    self._by_thread.pop(thread).close()
                self._by_thread[threading.current_thread()] = connection
        return connection

    def rows(self, sql: str, params: Any) -> list[tuple]:
        for attempt in (0, 1):
            connection = self._connection()
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    return cursor.fetchall()
            except self.engine.dialect.loaded_dbapi.OperationalError:
                connection.close()  # the server went away or restarted: a new connection, once
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            opened, self._by_thread = list(self._by_thread.values()), {}
        for connection in opened:
            connection.close()
